"""All SQL for the intake schema. Never commits: the API edge owns the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

IDEMPOTENCY_WINDOW = "24 hours"

_CLAIM = text(
    "INSERT INTO intake.idempotency (source, key, lead_id) VALUES (:source, :key, :lead_id) "
    "ON CONFLICT (source, key) DO UPDATE SET lead_id = excluded.lead_id, created_at = now() "
    f"WHERE intake.idempotency.created_at < now() - interval '{IDEMPOTENCY_WINDOW}' "
    "RETURNING lead_id"
)
_EXISTING = text("SELECT lead_id FROM intake.idempotency WHERE source = :source AND key = :key")
_INSERT_LEAD = text(
    "INSERT INTO intake.leads (lead_id, source, channel, received_at, lead) "
    "VALUES (:lead_id, :source, :channel, :received_at, CAST(:lead AS jsonb))"
)


async def claim_idempotency_key(
    session: AsyncSession, *, source: str, key: str, lead_id: str
) -> str | None:
    """None when the key is new (or expired) and now ours; else the lead id first accepted for it.

    A concurrent retry blocks on the primary key until the first transaction ends, so two
    copies of one webhook can never both create a lead.
    """
    claimed = await session.scalar(_CLAIM, {"source": source, "key": key, "lead_id": lead_id})
    if claimed is not None:
        return None
    existing = await session.scalar(_EXISTING, {"source": source, "key": key})
    return str(existing)


async def insert_lead(
    session: AsyncSession,
    *,
    lead_id: str,
    source: str,
    channel: str,
    received_at: datetime,
    lead: dict[str, Any],
) -> None:
    await session.execute(
        _INSERT_LEAD,
        {
            "lead_id": lead_id,
            "source": source,
            "channel": channel,
            "received_at": received_at,
            "lead": orjson.dumps(lead).decode(),
        },
    )
