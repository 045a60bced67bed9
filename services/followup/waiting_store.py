"""SQL for what waits on a date rather than on a rep: re-engagements and parked leads' waiting
clocks. Never commits: the consumer/ticker edge owns the transaction.

Starting a lead's SLA clock (`store.start_clocks`) cancels its pending re-engagement and closes
its waiting clock in the same statement, so those two live beside the clock's SQL, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# --- re-engagements (not_ready, nurture by policy) --------------------------------------------


async def cancel_reengagement(session: AsyncSession, lead_id: str) -> None:
    await session.execute(
        text(
            "UPDATE followup.reengagements SET status = 'cancelled' "
            "WHERE lead_id = :lead_id AND status = 'pending'"
        ),
        {"lead_id": lead_id},
    )


async def upsert_reengagement(
    session: AsyncSession,
    *,
    lead_id: str,
    owner: dict[str, Any] | None,
    reengage_at: datetime,
    note: str | None,
    event_id: str | None = None,
) -> bool:
    """Schedule (or move) the lead's re-engagement; returns False when `event_id` already
    scheduled it (a redelivered lead.nurtured never re-arms one already sent or cancelled)."""
    result = await session.execute(
        text(
            "INSERT INTO followup.reengagements (lead_id, owner, reengage_at, note, status, "
            "event_id) VALUES (:lead_id, CAST(:owner AS jsonb), :at, :note, 'pending', :event_id) "
            "ON CONFLICT (lead_id) DO UPDATE SET owner = excluded.owner, "
            "reengage_at = excluded.reengage_at, note = excluded.note, status = 'pending', "
            "event_id = excluded.event_id "
            "WHERE excluded.event_id IS NULL "
            "OR followup.reengagements.event_id IS DISTINCT FROM excluded.event_id "
            "RETURNING 1"
        ),
        {
            "lead_id": lead_id,
            "owner": None if owner is None else orjson.dumps(owner).decode(),
            "at": reengage_at,
            "note": note,
            "event_id": event_id,
        },
    )
    return result.scalar() is not None


async def claim_due_reengagements(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[tuple[str, dict[str, Any] | None, datetime, str | None]]:
    rows = await session.execute(
        text(
            "SELECT lead_id::text, owner, reengage_at, note FROM followup.reengagements "
            "WHERE status = 'pending' AND reengage_at <= :now ORDER BY reengage_at "
            "LIMIT :limit FOR UPDATE SKIP LOCKED"
        ),
        {"now": now, "limit": limit},
    )
    return [tuple(r) for r in rows]


async def mark_reengaged(session: AsyncSession, lead_ids: list[str]) -> None:
    await session.execute(
        text(
            "UPDATE followup.reengagements SET status = 'sent' "
            "WHERE lead_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": lead_ids},
    )


# --- waiting clocks (parked: nobody eligible) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaitingRow:
    lead_id: str
    event_id: str
    team_id: str
    manager: dict[str, Any] | None
    wait_seconds: int
    clock: str
    parked_at: datetime
    due_at: datetime


_WAITING_COLS = "lead_id::text, event_id, team_id, manager, wait_seconds, clock, parked_at, due_at"


async def start_waiting(session: AsyncSession, row: WaitingRow) -> bool:
    """Open the lead's waiting clock; returns False when one is already open (the lead has
    waited since its first park) or this park event already started one (a redelivery)."""
    result = await session.execute(
        text(
            "INSERT INTO followup.waiting (lead_id, event_id, team_id, manager, wait_seconds, "
            "clock, parked_at, due_at, status) VALUES (:lead_id, :event_id, :team_id, "
            "CAST(:manager AS jsonb), :wait_seconds, :clock, :parked_at, :due_at, 'open') "
            "ON CONFLICT (lead_id) DO UPDATE SET event_id = excluded.event_id, "
            "team_id = excluded.team_id, manager = excluded.manager, "
            "wait_seconds = excluded.wait_seconds, clock = excluded.clock, "
            "parked_at = excluded.parked_at, due_at = excluded.due_at, status = 'open', "
            "escalated_at = NULL, closed_at = NULL "
            "WHERE followup.waiting.status <> 'open' "
            "AND followup.waiting.event_id <> excluded.event_id RETURNING 1"
        ),
        {
            "lead_id": row.lead_id,
            "event_id": row.event_id,
            "team_id": row.team_id,
            "manager": None if row.manager is None else orjson.dumps(row.manager).decode(),
            "wait_seconds": row.wait_seconds,
            "clock": row.clock,
            "parked_at": row.parked_at,
            "due_at": row.due_at,
        },
    )
    return result.scalar() is not None


async def close_waiting(session: AsyncSession, lead_id: str) -> bool:
    """The lead was assigned, disqualified or merged: stop waiting (True if one was open)."""
    result = await session.execute(
        text(
            "UPDATE followup.waiting SET status = 'closed', closed_at = now() "
            "WHERE lead_id = :lead_id AND status = 'open' RETURNING 1"
        ),
        {"lead_id": lead_id},
    )
    return result.scalar() is not None


async def claim_due_waiting(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[WaitingRow]:
    """Lapsed waiting clocks, locked; other followup instances skip them (partial index)."""
    rows = await session.execute(
        text(
            f"SELECT {_WAITING_COLS} FROM followup.waiting WHERE status = 'open' "
            "AND due_at <= :now ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED"
        ),
        {"now": now, "limit": limit},
    )
    return [WaitingRow(*r) for r in rows]


async def mark_waiting_escalated(session: AsyncSession, lead_ids: list[str], at: datetime) -> None:
    await session.execute(
        text(
            "UPDATE followup.waiting SET status = 'escalated', escalated_at = :at "
            "WHERE lead_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": lead_ids, "at": at},
    )


async def waiting_for(session: AsyncSession, lead_id: str) -> dict[str, Any] | None:
    """The lead's waiting clock for the SLA view (None when it was never parked)."""
    row = (
        await session.execute(
            text(
                "SELECT team_id, wait_seconds, clock, parked_at, due_at, status, escalated_at, "
                "closed_at FROM followup.waiting WHERE lead_id = :lead_id"
            ),
            {"lead_id": lead_id},
        )
    ).first()
    return dict(row._mapping) if row else None
