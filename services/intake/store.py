"""All SQL for the intake schema. Never commits: the API edge owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

IDEMPOTENCY_WINDOW = "24 hours"

_EXISTING = text(
    "SELECT lead_id::text FROM intake.idempotency WHERE source = :source AND key = :key"
)

# One round trip per webhook: claim the idempotency key (when there is one), insert the lead
# and its outbox event, all or nothing. A key already held (and not expired) makes `ok` empty,
# so neither the lead nor the event is written; `existing` is then the first lead's id, read
# from the statement's snapshot (NULL when that lead committed after the snapshot was taken:
# the caller then reads it with _EXISTING). A concurrent retry blocks on the primary key until
# the first transaction ends, so two copies of one webhook can never both create a lead.
_RECORD_ONE = text(
    f"""
    WITH claim AS (
        INSERT INTO intake.idempotency (source, key, lead_id)
        SELECT CAST(:source AS text), CAST(:key AS text), CAST(:lead_id AS uuid)
        WHERE CAST(:key AS text) IS NOT NULL
        ON CONFLICT (source, key) DO UPDATE SET lead_id = excluded.lead_id, created_at = now()
        WHERE intake.idempotency.created_at < now() - interval '{IDEMPOTENCY_WINDOW}'
        RETURNING 1
    ), ok AS (
        SELECT 1 WHERE CAST(:key AS text) IS NULL OR EXISTS (SELECT 1 FROM claim)
    ), lead AS (
        INSERT INTO intake.leads (lead_id, source, channel, received_at, lead)
        SELECT CAST(:lead_id AS uuid), CAST(:source AS text), CAST(:channel AS text),
               CAST(:received_at AS timestamptz), CAST(:lead AS jsonb)
        FROM ok
        RETURNING 1
    ), event AS (
        INSERT INTO intake.outbox (event_id, topic, key, payload)
        SELECT CAST(:lead_id AS text), CAST(:topic AS text), CAST(:lead_id AS text),
               CAST(:payload AS bytea)
        FROM lead
        ON CONFLICT (event_id) DO NOTHING
    )
    SELECT (SELECT count(*) FROM lead) AS inserted,
           (SELECT lead_id::text FROM intake.idempotency
            WHERE source = CAST(:source AS text) AND key = CAST(:key AS text)) AS existing
    """
)

# Group commit, in the batcher's single transaction: claim every (deduplicated) key at once,
# read the holders of the keys we did not get, then insert all new leads and their events.
_CLAIM_MANY = text(
    f"""
    INSERT INTO intake.idempotency (source, key, lead_id)
    SELECT source, key, lead_id
    FROM unnest(CAST(:sources AS text[]), CAST(:keys AS text[]), CAST(:lead_ids AS uuid[]))
         AS t(source, key, lead_id)
    ORDER BY source, key
    ON CONFLICT (source, key) DO UPDATE SET lead_id = excluded.lead_id, created_at = now()
    WHERE intake.idempotency.created_at < now() - interval '{IDEMPOTENCY_WINDOW}'
    RETURNING lead_id::text
    """
)
_EXISTING_MANY = text(
    """
    SELECT i.source, i.key, i.lead_id::text
    FROM intake.idempotency i
    JOIN unnest(CAST(:sources AS text[]), CAST(:keys AS text[])) AS t(source, key)
      ON i.source = t.source AND i.key = t.key
    """
)
_INSERT_MANY = text(
    """
    WITH lead AS (
        INSERT INTO intake.leads (lead_id, source, channel, received_at, lead)
        SELECT lead_id, source, channel, received_at, CAST(doc AS jsonb)
        FROM unnest(CAST(:lead_ids AS uuid[]), CAST(:sources AS text[]),
                    CAST(:channels AS text[]), CAST(:received_ats AS timestamptz[]),
                    CAST(:docs AS text[])) AS t(lead_id, source, channel, received_at, doc)
    )
    INSERT INTO intake.outbox (event_id, topic, key, payload)
    SELECT event_id, topic, event_id, payload
    FROM unnest(CAST(:event_ids AS text[]), CAST(:topics AS text[]), CAST(:payloads AS bytea[]))
         AS t(event_id, topic, payload)
    ON CONFLICT (event_id) DO NOTHING
    """
)


@dataclass(frozen=True, slots=True)
class NewLead:
    """Everything one accepted webhook writes: the lead row and its `lead.received` event."""

    source: str
    channel: str
    key: str | None  # the sender's idempotency key, when it has one
    lead_id: str
    received_at: datetime
    lead: bytes  # JSON document
    topic: str
    payload: bytes  # the CloudEvent (its id and subject are lead_id)


async def record_lead(session: AsyncSession, item: NewLead) -> str | None:
    """Write one lead + event in one statement. None when written; else the earlier lead id."""
    row = (
        await session.execute(
            _RECORD_ONE,
            {
                "source": item.source,
                "key": item.key,
                "lead_id": item.lead_id,
                "channel": item.channel,
                "received_at": item.received_at,
                "lead": item.lead.decode(),
                "topic": item.topic,
                "payload": item.payload,
            },
        )
    ).one()
    if row.inserted:
        return None
    if row.existing is not None:
        return str(row.existing)
    existing = await session.scalar(_EXISTING, {"source": item.source, "key": item.key})
    return str(existing)


async def record_leads(session: AsyncSession, items: list[NewLead]) -> list[str | None]:
    """Group commit: for each item, None when written, else the lead id first accepted for its
    key (an earlier transaction's, or an earlier item's in this very batch)."""
    first: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items):
        if item.key is not None:
            first.setdefault((item.source, item.key), i)
    earlier: dict[tuple[str, str], str] = {}
    if first:
        keyed = [items[i] for i in first.values()]
        claimed = set(
            (
                await session.scalars(
                    _CLAIM_MANY,
                    {
                        "sources": [it.source for it in keyed],
                        "keys": [it.key for it in keyed],
                        "lead_ids": [it.lead_id for it in keyed],
                    },
                )
            ).all()
        )
        lost = [it for it in keyed if it.lead_id not in claimed]
        if lost:
            rows = await session.execute(
                _EXISTING_MANY,
                {"sources": [it.source for it in lost], "keys": [it.key for it in lost]},
            )
            earlier = {(r[0], r[1]): str(r[2]) for r in rows}
    out: list[str | None] = []
    new: list[NewLead] = []
    for i, item in enumerate(items):
        if item.key is None:
            out.append(None)
            new.append(item)
            continue
        k = (item.source, item.key)
        if k in earlier:
            out.append(earlier[k])
        elif first[k] != i:
            out.append(items[first[k]].lead_id)
        else:
            out.append(None)
            new.append(item)
    if new:
        await session.execute(
            _INSERT_MANY,
            {
                "lead_ids": [it.lead_id for it in new],
                "sources": [it.source for it in new],
                "channels": [it.channel for it in new],
                "received_ats": [it.received_at for it in new],
                "docs": [it.lead.decode() for it in new],
                "event_ids": [it.lead_id for it in new],
                "topics": [it.topic for it in new],
                "payloads": [it.payload for it in new],
            },
        )
    return out


# --- erasure and retention -----------------------------------------------------------------


async def lead_documents(session: AsyncSession, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
    """These leads' documents if they still hold personal data, locked."""
    rows = await session.execute(
        text(
            "SELECT lead_id::text, lead FROM intake.leads WHERE erased_at IS NULL "
            "AND lead_id = ANY(CAST(:ids AS uuid[])) FOR UPDATE"
        ),
        {"ids": lead_ids},
    )
    return {r[0]: r[1] for r in rows}


async def expired_lead_documents(
    session: AsyncSession, *, before: datetime, limit: int
) -> dict[str, dict[str, Any]]:
    """Leads received before `before` still holding personal data, oldest first, locked."""
    rows = await session.execute(
        text(
            "SELECT lead_id::text, lead FROM intake.leads WHERE erased_at IS NULL "
            "AND received_at < :before ORDER BY received_at LIMIT :limit FOR UPDATE SKIP LOCKED"
        ),
        {"before": before, "limit": limit},
    )
    return {r[0]: r[1] for r in rows}


async def erase_lead(
    session: AsyncSession, *, lead_id: str, lead: dict[str, Any], at: datetime
) -> None:
    await session.execute(
        text(
            "UPDATE intake.leads SET lead = CAST(:lead AS jsonb), erased_at = :at "
            "WHERE lead_id = :id"
        ),
        {"id": lead_id, "lead": orjson.dumps(lead).decode(), "at": at},
    )
