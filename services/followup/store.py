"""All SQL for the followup schema. Never commits: the consumer/request edge owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class ClockRow:
    lead_id: str
    assignment_seq: int
    owner: dict[str, Any]
    manager: dict[str, Any] | None
    team_id: str
    tier: str
    window_seconds: int
    started_at: datetime
    due_at: datetime
    status: str
    next_level: int | None
    next_fire_at: datetime | None
    chain: list[dict[str, Any]]
    contacted_at: datetime | None
    stage: str | None = None  # the qualification stage at handoff (conversions by stage)


_COLS = (
    "lead_id::text, assignment_seq, owner, manager, team_id, tier, window_seconds, started_at, "
    "due_at, status, next_level, next_fire_at, chain, contacted_at, stage"
)


def _row(r: Any) -> ClockRow:
    return ClockRow(*r)


async def get_clock(session: AsyncSession, lead_id: str, *, lock: bool = False) -> ClockRow | None:
    sql = f"SELECT {_COLS} FROM followup.clocks WHERE lead_id = :lead_id"
    if lock:
        sql += " FOR UPDATE"
    r = (await session.execute(text(sql), {"lead_id": lead_id})).first()
    return _row(r) if r else None


_CLOCK_TYPES = (
    ("lead_id", "uuid"),
    ("assignment_seq", "int"),
    ("owner", "jsonb"),
    ("manager", "jsonb"),
    ("team_id", "text"),
    ("tier", "text"),
    ("window_seconds", "int"),
    ("started_at", "timestamptz"),
    ("due_at", "timestamptz"),
    ("status", "text"),
    ("next_level", "int"),
    ("next_fire_at", "timestamptz"),
    ("chain", "jsonb"),
    ("contacted_at", "timestamptz"),
    ("stage", "text"),
)
_START_CLOCKS = text(
    "WITH c AS (INSERT INTO followup.clocks "
    f"({', '.join(c for c, _ in _CLOCK_TYPES)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in _CLOCK_TYPES)
    + ") ON CONFLICT (lead_id) DO UPDATE SET assignment_seq = excluded.assignment_seq, "
    "owner = excluded.owner, manager = excluded.manager, team_id = excluded.team_id, "
    "tier = excluded.tier, window_seconds = excluded.window_seconds, "
    "started_at = excluded.started_at, due_at = excluded.due_at, status = excluded.status, "
    "next_level = excluded.next_level, next_fire_at = excluded.next_fire_at, "
    "chain = excluded.chain, contacted_at = excluded.contacted_at, stage = excluded.stage, "
    "closed_at = NULL, "
    "updated_at = now() "
    "WHERE followup.clocks.assignment_seq < excluded.assignment_seq "
    "RETURNING lead_id, assignment_seq, team_id, tier, started_at, due_at), "
    # the assignment's window (completion rate); a replay changes nothing
    "w AS (INSERT INTO followup.windows (lead_id, assignment_seq, team_id, tier, started_at, "
    "due_at) SELECT * FROM c ON CONFLICT DO NOTHING), "
    # the lead is now known: none of its activities waits for an assignment any more
    "p AS (UPDATE followup.activities a SET state = 'applied' FROM c "
    "WHERE a.lead_id = c.lead_id AND a.state = 'pending'), "
    # the lead went to sales: a pending re-engagement (nurture) is void, a waiting clock
    # (parked) is closed; an activity applied below may schedule a re-engagement anew
    "r AS (UPDATE followup.reengagements r SET status = 'cancelled' FROM c "
    "WHERE r.lead_id = c.lead_id AND r.status = 'pending'), "
    "q AS (UPDATE followup.waiting q SET status = 'closed', closed_at = now() FROM c "
    "WHERE q.lead_id = c.lead_id AND q.status = 'open') "
    # "has activities" as a per-lead index probe, not EXISTS: planned while the table was
    # empty, EXISTS was hashed over a scan of every activity (50 ms for 50 clocks at 200,000)
    "SELECT c.lead_id::text, (SELECT a.at FROM followup.activities a "
    "WHERE a.lead_id = c.lead_id ORDER BY a.lead_id, a.at LIMIT 1) IS NOT NULL, "
    # the statement's snapshot: the clock as it was before this assignment replaced it
    "(SELECT o.stage FROM followup.clocks o WHERE o.lead_id = c.lead_id) FROM c"
)


@dataclass(frozen=True, slots=True)
class Started:
    """A clock that started: whether the lead has activities recorded earlier (the caller
    applies those) and the stage of the assignment it replaced (None: first, or unknown)."""

    has_activities: bool
    previous_stage: str | None


async def start_clocks(session: AsyncSession, clocks: list[ClockRow]) -> dict[str, Started]:
    """Insert or replace each lead's clock unless a newer assignment already owns it, open
    its window and release its pending activities: one statement for any number of leads,
    which must all differ; a started clock also cancels the lead's pending re-engagement and
    closes its waiting clock. Returns the leads whose clock started (see `Started`)."""
    params: dict[str, list[Any]] = {c: [] for c, _ in _CLOCK_TYPES}
    for clock in clocks:
        for column, _ in _CLOCK_TYPES:
            value = getattr(clock, column)
            if column in ("owner", "chain") or (column == "manager" and value is not None):
                value = orjson.dumps(value).decode()
            params[column].append(value)
    rows = await session.execute(_START_CLOCKS, params)
    return {r[0]: Started(bool(r[1]), r[2]) for r in rows}


async def set_clock_state(
    session: AsyncSession,
    *,
    lead_id: str,
    status: str,
    next_level: int | None,
    next_fire_at: datetime | None,
    contacted_at: datetime | None = None,
) -> None:
    await session.execute(
        text(
            "UPDATE followup.clocks SET status = :status, next_level = :next_level, "
            "next_fire_at = :next_fire_at, contacted_at = coalesce(:contacted_at, contacted_at), "
            "closed_at = CASE WHEN :status = 'open' THEN NULL ELSE now() END, updated_at = now() "
            "WHERE lead_id = :lead_id"
        ),
        {
            "lead_id": lead_id,
            "status": status,
            "next_level": next_level,
            "next_fire_at": next_fire_at,
            "contacted_at": contacted_at,
        },
    )


async def claim_due_clocks(session: AsyncSession, *, now: datetime, limit: int) -> list[ClockRow]:
    """Due open clocks, locked; other followup instances skip them (no double firing)."""
    rows = await session.execute(
        text(
            f"SELECT {_COLS} FROM followup.clocks WHERE status = 'open' AND next_fire_at <= :now "
            "ORDER BY next_fire_at LIMIT :limit FOR UPDATE SKIP LOCKED"
        ),
        {"now": now, "limit": limit},
    )
    return [_row(r) for r in rows]


async def next_fire_time(session: AsyncSession) -> datetime | None:
    """The earliest due time of anything the ticker fires (two partial-index lookups).

    `ORDER BY … LIMIT 1` rather than `min()`: this statement has no parameters, so it is
    planned once per connection, and `min()` planned while the table was nearly empty kept
    reading every open clock's index entry (25 ms at 200,000 clocks) until an ANALYZE; the
    first entry of the index is the plan whatever the table's size (0.07 ms)."""
    value: datetime | None = await session.scalar(
        text(
            "SELECT least("
            "(SELECT next_fire_at FROM followup.clocks WHERE status = 'open' "
            "ORDER BY next_fire_at LIMIT 1), "
            "(SELECT reengage_at FROM followup.reengagements WHERE status = 'pending' "
            "ORDER BY reengage_at LIMIT 1), "
            "(SELECT due_at FROM followup.waiting WHERE status = 'open' "
            "ORDER BY due_at LIMIT 1))"
        )
    )
    return value


@dataclass(frozen=True, slots=True)
class Escalation:
    """One claimed clock's firing: the escalation row, its outbox event, the clock's next state."""

    lead_id: str
    seq: int
    level: int
    repetition: int  # 0 the level's first firing, n its n-th repetition
    action: str
    team_id: str
    due_at: datetime
    seconds_late: float
    event_id: str
    payload: bytes
    status: str
    next_level: int | None
    next_fire_at: datetime | None


_FIRE_COLS = (
    ("lead_id", "uuid"),
    ("seq", "int"),
    ("level", "int"),
    ("repetition", "int"),
    ("action", "text"),
    ("team_id", "text"),
    ("due_at", "timestamptz"),
    ("seconds_late", "float8"),
    ("event_id", "text"),
    ("payload", "bytea"),
    ("status", "text"),
    ("next_level", "int"),
    ("next_fire_at", "timestamptz"),
)

# One statement for a whole tick, whatever the number of clocks: the escalations that are new
# (the primary key drops a re-fire), an outbox row for each of those only, and every claimed
# clock moved to its next level. `v` is referenced three times, so it is materialised once.
_FIRE = text(
    "WITH v AS (SELECT * FROM unnest("
    + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in _FIRE_COLS)
    + ") WITH ORDINALITY AS v ("
    + ", ".join(c for c, _ in _FIRE_COLS)
    + ", ord)), "
    "e AS (INSERT INTO followup.escalations (lead_id, assignment_seq, level, repetition, "
    "action, team_id, due_at, fired_at, seconds_late) SELECT lead_id, seq, level, repetition, "
    "action, team_id, due_at, :fired_at, seconds_late FROM v ON CONFLICT DO NOTHING "
    "RETURNING lead_id, assignment_seq, level, repetition), "
    "o AS (INSERT INTO followup.outbox (event_id, topic, key, payload) "
    "SELECT v.event_id, :topic, v.lead_id::text, v.payload FROM v JOIN e "
    "ON e.lead_id = v.lead_id AND e.assignment_seq = v.seq AND e.level = v.level "
    "AND e.repetition = v.repetition ORDER BY v.ord ON CONFLICT (event_id) DO NOTHING), "
    "c AS (UPDATE followup.clocks AS c SET status = v.status, next_level = v.next_level, "
    "next_fire_at = v.next_fire_at, "
    "closed_at = CASE WHEN v.status = 'open' THEN NULL ELSE now() END, updated_at = now() "
    "FROM v WHERE c.lead_id = v.lead_id) "
    "SELECT lead_id::text, assignment_seq, level, repetition FROM e"
)


async def fire_escalations(
    session: AsyncSession, escalations: list[Escalation], *, fired_at: datetime, topic: str
) -> set[tuple[str, int, int, int]]:
    """Write a tick's escalations in one statement; returns the (lead, seq, level, repetition)
    keys that were new. Only those get an outbox row, so a re-fire (a redelivered or repeated level)
    publishes nothing twice; the clocks advance either way."""
    if not escalations:
        return set()
    params: dict[str, Any] = {c: [getattr(e, c) for e in escalations] for c, _ in _FIRE_COLS}
    rows = await session.execute(_FIRE, {**params, "fired_at": fired_at, "topic": topic})
    return {(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows}


async def escalations_for(session: AsyncSession, lead_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT assignment_seq, level, repetition, action, due_at, fired_at, seconds_late "
            "FROM followup.escalations WHERE lead_id = :lead_id "
            "ORDER BY fired_at, level, repetition"
        ),
        {"lead_id": lead_id},
    )
    return [dict(r._mapping) for r in rows]


async def record_activity(
    session: AsyncSession,
    *,
    activity_id: str,
    lead_id: str,
    type: str,
    at: datetime,
    actor: str,
    note: str | None,
    reengage_at: datetime | None,
    other_owner: bool,
    pending: bool = False,
    source_event_id: str | None = None,
    reason: str | None = None,
) -> bool:
    """Insert once by activity id; False for a repeat. `pending`: no clock for the lead yet."""
    result = await session.execute(
        text(
            "INSERT INTO followup.activities (activity_id, lead_id, type, at, actor, note, "
            "reengage_at, other_owner, state, source_event_id, reason) VALUES (:activity_id, "
            ":lead_id, :type, :at, :actor, :note, :reengage_at, :other_owner, :state, "
            ":source_event_id, :reason) "
            "ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {
            "activity_id": activity_id,
            "lead_id": lead_id,
            "type": type,
            "at": at,
            "actor": actor,
            "note": note,
            "reengage_at": reengage_at,
            "other_owner": other_owner,
            "state": "pending" if pending else "applied",
            "source_event_id": source_event_id,
            "reason": reason,
        },
    )
    return result.scalar() is not None


async def first_of_its_type(
    session: AsyncSession, *, lead_id: str, type: str, at: datetime
) -> tuple[bool, datetime | None]:
    """Whether no activity of `type` for the lead is older than `at` (this one is the lead's
    first), and when the lead was first assigned (its first window), for per-lead metrics."""
    row = (
        await session.execute(
            text(
                "SELECT NOT EXISTS (SELECT 1 FROM followup.activities WHERE lead_id = :lead_id "
                "AND type = :type AND at < :at AND state <> 'dead_lettered'), "
                "(SELECT started_at FROM followup.windows WHERE lead_id = :lead_id "
                "ORDER BY assignment_seq LIMIT 1)"
            ),
            {"lead_id": lead_id, "type": type, "at": at},
        )
    ).one()
    return bool(row[0]), row[1]


async def activities_for(session: AsyncSession, lead_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT activity_id, type, at, actor, note, reengage_at, other_owner, state, reason "
            "FROM followup.activities WHERE lead_id = :lead_id ORDER BY at, activity_id"
        ),
        {"lead_id": lead_id},
    )
    return [dict(r._mapping) for r in rows]


async def adopt_activity(session: AsyncSession, *, activity_id: str, owner_id: str | None) -> None:
    """An earlier-recorded activity now counts for a (new) clock: flag it against that owner."""
    await session.execute(
        text(
            "UPDATE followup.activities SET other_owner = (actor IS DISTINCT FROM :owner), "
            "state = 'applied' WHERE activity_id = :activity_id"
        ),
        {"activity_id": activity_id, "owner": owner_id},
    )


async def claim_stale_pending(
    session: AsyncSession, *, cutoff: datetime, limit: int
) -> list[dict[str, Any]]:
    """Activities still waiting for an assignment recorded before `cutoff` (partial index)."""
    rows = await session.execute(
        text(
            "SELECT activity_id, lead_id::text AS lead_id, type, at, actor, note, reengage_at, "
            "reason, source_event_id, recorded_at FROM followup.activities "
            "WHERE state = 'pending' AND recorded_at <= :cutoff ORDER BY recorded_at "
            "LIMIT :limit FOR UPDATE SKIP LOCKED"
        ),
        {"cutoff": cutoff, "limit": limit},
    )
    return [dict(r._mapping) for r in rows]


async def mark_dead_lettered(session: AsyncSession, activity_ids: list[str]) -> None:
    await session.execute(
        text(
            "UPDATE followup.activities SET state = 'dead_lettered' WHERE activity_id = ANY(:ids)"
        ),
        {"ids": activity_ids},
    )


async def touch_window(session: AsyncSession, *, lead_id: str, seq: int, at: datetime) -> None:
    await session.execute(
        text(
            "UPDATE followup.windows SET touched_at = :at WHERE lead_id = :lead_id "
            "AND assignment_seq = :seq AND touched_at IS NULL"
        ),
        {"lead_id": lead_id, "seq": seq, "at": at},
    )


async def windows_for(session: AsyncSession, lead_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT assignment_seq, team_id, tier, started_at, due_at, touched_at "
            "FROM followup.windows WHERE lead_id = :lead_id ORDER BY assignment_seq"
        ),
        {"lead_id": lead_id},
    )
    return [dict(r._mapping) for r in rows]


async def completion_counts(
    session: AsyncSession, *, since: datetime, until: datetime
) -> tuple[int, int]:
    """(touched in time, all) over windows whose deadline fell in [since, until]."""
    row = (
        await session.execute(
            text(
                "SELECT count(*) FILTER (WHERE touched_at <= due_at), count(*) "
                "FROM followup.windows WHERE due_at >= :since AND due_at <= :until"
            ),
            {"since": since, "until": until},
        )
    ).one()
    return int(row[0]), int(row[1])


async def count_open_clocks(session: AsyncSession) -> int:
    """Counted on the partial index (index-only when the visibility map allows)."""
    return int(
        await session.scalar(text("SELECT count(*) FROM followup.clocks WHERE status = 'open'"))
        or 0
    )


async def erase_notes(session: AsyncSession, lead_ids: list[str]) -> int:
    """Right to erasure: free-text notes about these leads may describe the contact; drop them.

    Activity facts (type, time, actor = rep id) and clocks (owner/manager are reps) stay.
    """
    activities = await session.execute(
        text(
            "UPDATE followup.activities SET note = NULL "
            "WHERE lead_id = ANY(CAST(:ids AS uuid[])) AND note IS NOT NULL"
        ),
        {"ids": lead_ids},
    )
    reengagements = await session.execute(
        text(
            "UPDATE followup.reengagements SET note = NULL "
            "WHERE lead_id = ANY(CAST(:ids AS uuid[])) AND note IS NOT NULL"
        ),
        {"ids": lead_ids},
    )
    return int(activities.rowcount or 0) + int(reengagements.rowcount or 0)  # type: ignore[attr-defined]
