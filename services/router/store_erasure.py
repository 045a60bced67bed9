"""The router's erasure SQL: finding a contact's or an expired lead's rows, erasing them, and
the digests that keep an erased contact's in-flight touches from coming back. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def contact_lead_ids(
    session: AsyncSession, *, email: str | None, phone: str | None
) -> list[str]:
    """Every lead of the contact (same normalised e-mail or E.164 phone), locked."""
    rows = await session.execute(
        text(
            "SELECT lead_id::text FROM router.leads WHERE ((:email)::text IS NOT NULL "
            "AND email = :email OR (:phone)::text IS NOT NULL AND phone = :phone) "
            "ORDER BY received_at FOR UPDATE"
        ),
        {"email": email, "phone": phone},
    )
    return [r[0] for r in rows]


async def expired_lead_ids(session: AsyncSession, *, before: datetime, limit: int) -> list[str]:
    """Leads received before `before` that still hold personal data, oldest first, locked."""
    rows = await session.execute(
        text(
            "SELECT lead_id::text FROM router.leads WHERE erased_at IS NULL "
            "AND received_at < :before ORDER BY received_at LIMIT :limit "
            "FOR UPDATE SKIP LOCKED"
        ),
        {"before": before, "limit": limit},
    )
    return [r[0] for r in rows]


async def lead_documents(session: AsyncSession, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT lead_id::text, lead FROM router.leads WHERE lead_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": lead_ids},
    )
    return {r[0]: r[1] for r in rows}


async def erase_lead(
    session: AsyncSession, *, lead_id: str, lead: dict[str, Any], at: datetime
) -> None:
    """Drop the contact columns and store the erased lead document (`erased_at` marks it)."""
    await session.execute(
        text(
            "UPDATE router.leads SET email = NULL, phone = NULL, lead = CAST(:lead AS jsonb), "
            "received_lead = NULL, "
            "erased_at = coalesce(erased_at, :at), updated_at = now() WHERE lead_id = :id"
        ),
        {"id": lead_id, "lead": orjson.dumps(lead).decode(), "at": at},
    )


async def decision_traces(
    session: AsyncSession, lead_ids: list[str]
) -> list[tuple[int, dict[str, Any]]]:
    rows = await session.execute(
        text(
            "SELECT id, trace FROM router.decisions WHERE lead_id = ANY(CAST(:ids AS uuid[])) "
            "ORDER BY id"
        ),
        {"ids": lead_ids},
    )
    return [(r[0], r[1]) for r in rows]


async def replace_trace(session: AsyncSession, *, decision_id: int, trace: dict[str, Any]) -> None:
    await session.execute(
        text("UPDATE router.decisions SET trace = CAST(:t AS jsonb) WHERE id = :id"),
        {"id": decision_id, "t": orjson.dumps(trace, default=str).decode()},
    )


async def record_erasure(
    session: AsyncSession, *, erasure_id: str, reason: str, lead_ids: list[str], at: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO router.erasures (erasure_id, reason, lead_ids, erased_at) "
            "VALUES (:id, :reason, CAST(:ids AS uuid[]), :at) ON CONFLICT DO NOTHING"
        ),
        {"id": erasure_id, "reason": reason, "ids": lead_ids, "at": at},
    )


async def remember_erased_contact(
    session: AsyncSession, *, digests: list[str], erasure_id: str, at: datetime
) -> None:
    """Record an erased contact's digests (a later erasure of the same contact moves `at` on)."""
    await session.execute(
        text(
            "INSERT INTO router.erased_contacts (digest, erasure_id, erased_at) "
            "SELECT d, CAST(:id AS uuid), :at FROM unnest(CAST(:digests AS text[])) AS d "
            "ON CONFLICT (digest) DO UPDATE SET erasure_id = excluded.erasure_id, "
            "erased_at = excluded.erased_at "
            "WHERE router.erased_contacts.erased_at < excluded.erased_at"
        ),
        {"id": erasure_id, "at": at, "digests": digests},
    )


async def erased_contacts(session: AsyncSession, digests: list[str]) -> dict[str, datetime]:
    """When each of these contact digests was last erased (only those that were)."""
    if not digests:
        return {}
    rows = await session.execute(
        text(
            "SELECT digest, erased_at FROM router.erased_contacts "
            "WHERE digest = ANY(CAST(:digests AS text[]))"
        ),
        {"digests": digests},
    )
    return {str(r[0]): r[1] for r in rows}


async def forget_erased_contacts(session: AsyncSession, *, before: datetime) -> int:
    """Drop digests of erasures older than `before` (no event from before them is left)."""
    result = await session.execute(
        text("DELETE FROM router.erased_contacts WHERE erased_at < :before"), {"before": before}
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def get_erasure(session: AsyncSession, erasure_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                "SELECT erasure_id::text, reason, "
                "array(SELECT x::text FROM unnest(lead_ids) x) AS lead_ids, erased_at "
                "FROM router.erasures WHERE erasure_id = :id"
            ),
            {"id": erasure_id},
        )
    ).first()
    return dict(row._mapping) if row else None
