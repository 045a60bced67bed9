"""SQL for leads that must not fall silent and loads that must stay true: pending
reassignments, leads parked after an assignment, out-of-office starts and the load reconcile.

Kept apart from `store.py` (the hot path) so each stays readable; same rule: never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# A lead parked after an assignment (its owner rejected it or left): no owner, its assignment
# history kept, retried from `pending_reassignments` (a lead parked on arrival is `unassigned`).
PARKED = "parked"


@dataclass(frozen=True, slots=True)
class Pending:
    lead_id: str
    seq: int  # the assignment the failed reassignment was for
    exclude_rep: str | None  # who must not get it back (the rep who rejected or let it lapse)
    reason: str


async def add_pending(
    session: AsyncSession,
    *,
    lead_id: str,
    seq: int,
    exclude_rep: str | None,
    reason: str,
    now: datetime,
) -> None:
    """Remember a reassignment to retry (a second failure for the same lead keeps the first)."""
    await session.execute(
        text(
            "INSERT INTO router.pending_reassignments (lead_id, seq, exclude_rep, reason, "
            "created_at) VALUES (:l, :s, :x, :r, :now) ON CONFLICT (lead_id) DO NOTHING"
        ),
        {"l": lead_id, "s": seq, "x": exclude_rep, "r": reason, "now": now},
    )


async def pending(session: AsyncSession, *, limit: int) -> list[Pending]:
    """Reassignments to retry, oldest first; locked so two routers never retry the same one."""
    rows = await session.execute(
        text(
            "SELECT lead_id::text, seq, exclude_rep, reason FROM router.pending_reassignments "
            "ORDER BY created_at, lead_id LIMIT :limit FOR UPDATE SKIP LOCKED"
        ),
        {"limit": limit},
    )
    return [Pending(*r) for r in rows]


async def drop_pending(session: AsyncSession, lead_id: str) -> None:
    await session.execute(
        text("DELETE FROM router.pending_reassignments WHERE lead_id = :l"), {"l": lead_id}
    )


async def count_pending(session: AsyncSession) -> tuple[int, int]:
    """(pending reassignments, of which parked leads)."""
    row = (
        await session.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE l.status = :parked) "
                "FROM router.pending_reassignments p JOIN router.leads l USING (lead_id)"
            ),
            {"parked": PARKED},
        )
    ).one()
    return int(row[0]), int(row[1])


async def park_lead(session: AsyncSession, lead_id: str) -> None:
    """The lead has no owner until the retry finds one (team and history stay)."""
    await session.execute(
        text(
            "UPDATE router.leads SET status = :parked, owner_id = NULL, updated_at = now() "
            "WHERE lead_id = :l"
        ),
        {"l": lead_id, "parked": PARKED},
    )


# --- out of office -------------------------------------------------------------------------


async def mark_contacted(session: AsyncSession, *, lead_id: str, at: datetime) -> None:
    """The first `contacted` the router saw for the lead (an out-of-office start leaves it)."""
    await session.execute(
        text(
            "UPDATE router.leads SET contacted_at = :at WHERE lead_id = :l AND contacted_at IS NULL"
        ),
        {"l": lead_id, "at": at},
    )


async def unworked_leads(session: AsyncSession, rep_id: str) -> list[tuple[str, int]]:
    """The rep's open leads nobody has contacted yet, oldest first: (lead id, assignment)."""
    rows = await session.execute(
        text(
            "SELECT lead_id::text, assignment_seq FROM router.leads WHERE owner_id = :r "
            "AND status = 'assigned' AND closed_at IS NULL AND contacted_at IS NULL "
            "ORDER BY received_at, lead_id"
        ),
        {"r": rep_id},
    )
    return [(r[0], r[1]) for r in rows]


async def ooo_handled(session: AsyncSession, *, rep_id: str, starts_at: datetime) -> bool:
    found = await session.scalar(
        text("SELECT 1 FROM router.ooo_handled WHERE rep_id = :r AND starts_at = :s"),
        {"r": rep_id, "s": starts_at},
    )
    return found is not None


async def mark_ooo_handled(
    session: AsyncSession, *, rep_id: str, starts_at: datetime, at: datetime, leads: int
) -> None:
    await session.execute(
        text(
            "INSERT INTO router.ooo_handled (rep_id, starts_at, handled_at, leads) "
            "VALUES (:r, :s, :at, :n) ON CONFLICT DO NOTHING"
        ),
        {"r": rep_id, "s": starts_at, "at": at, "n": leads},
    )


# --- the open-lead load reconcile ----------------------------------------------------------

# The load a rep really carries: the leads `close` would still give back (assigned, not
# closed), counted from the rows.
_LOAD_DIFFERENCES = text(
    "WITH truth AS (SELECT owner_id AS rep_id, count(*)::int AS n FROM router.leads "
    "WHERE status = 'assigned' AND closed_at IS NULL AND owner_id IS NOT NULL "
    "GROUP BY owner_id) "
    "SELECT coalesce(t.rep_id, s.rep_id) AS rep_id, coalesce(s.open_leads, 0) AS stored, "
    "coalesce(t.n, 0) AS counted "
    "FROM truth t FULL JOIN router.rep_state s ON s.rep_id = t.rep_id "
    "WHERE coalesce(s.open_leads, 0) <> coalesce(t.n, 0) "
    "AND (s.rep_id IS NULL OR s.rep_id = ANY(CAST(:locked AS text[]))) ORDER BY 1"
)


async def lock_loads(session: AsyncSession) -> list[str]:
    """Lock the rep_state rows no other transaction holds; returns their rep ids. A row held
    by a transaction in flight (a close that has not committed) is corrected next time, so
    the reconcile never waits on, or deadlocks with, a consumer's batch."""
    rows = await session.execute(
        text("SELECT rep_id FROM router.rep_state ORDER BY rep_id FOR UPDATE SKIP LOCKED")
    )
    return [r[0] for r in rows]


async def load_differences(session: AsyncSession, locked: list[str]) -> list[tuple[str, int, int]]:
    """(rep id, stored open leads, counted open leads) where they differ (run it after
    `lock_loads`: a new statement, so it sees every close that committed before the locks)."""
    rows = await session.execute(_LOAD_DIFFERENCES, {"locked": locked})
    return [(r[0], r[1], r[2]) for r in rows]


async def set_loads(session: AsyncSession, loads: list[tuple[str, int]]) -> None:
    if not loads:
        return
    await session.execute(
        text(
            "INSERT INTO router.rep_state (rep_id, open_leads) SELECT * FROM "
            "unnest(CAST(:reps AS text[]), CAST(:ns AS int[])) ON CONFLICT (rep_id) DO UPDATE "
            "SET open_leads = excluded.open_leads, updated_at = now()"
        ),
        {"reps": [r for r, _ in loads], "ns": [n for _, n in loads]},
    )
