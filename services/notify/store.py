"""All SQL for the notify schema. Never commits: the consumer, dispatcher or request edge owns
the transaction.

An "endpoint" is a delivery group with its own slots: a configured webhook endpoint (the
message's target) or a people channel ("slack", "email"); the column is generated from
channel and target, so every query groups the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class NewMessage:
    id: str
    event_id: str
    event_type: str
    lead_id: str | None
    channel: str
    target: str
    kind: str
    body: dict[str, Any]
    delay_seconds: float


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: str
    event_id: str
    event_type: str
    lead_id: str | None
    channel: str
    target: str
    endpoint: str
    kind: str
    body: dict[str, Any]
    status: str
    attempts: int
    step: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None


# body as text: orjson parses it faster than the driver's json codec
_COLS = (
    "id::text, event_id, event_type, lead_id, channel, target, endpoint, kind, body::text, status, "
    "attempts, step, next_attempt_at, created_at, delivered_at, last_status, last_error"
)
_M_COLS = ", ".join(f"m.{c.strip()}" for c in _COLS.split(","))


def _row(r: Any) -> MessageRow:
    values = list(r)
    values[8] = orjson.loads(values[8])  # body
    return MessageRow(*values)


_INSERT = text(
    "INSERT INTO notify.messages (id, event_id, event_type, lead_id, channel, target, kind, "
    "body, next_attempt_at) "
    "SELECT u.id, u.event_id, u.event_type, u.lead_id, u.channel, u.target, u.kind, u.body, "
    "now() + make_interval(secs => u.delay) FROM unnest(CAST(:id AS uuid[]), "
    "CAST(:event_id AS text[]), CAST(:event_type AS text[]), CAST(:lead_id AS text[]), "
    "CAST(:channel AS text[]), CAST(:target AS text[]), CAST(:kind AS text[]), "
    "CAST(:body AS jsonb[]), CAST(:delay AS float8[])) "
    "AS u(id, event_id, event_type, lead_id, channel, target, kind, body, delay) "
    # a late event about an erased contact plans nothing
    "WHERE u.lead_id IS NULL OR NOT EXISTS "
    "(SELECT 1 FROM notify.erased_leads e WHERE e.lead_id = u.lead_id) "
    "ON CONFLICT (id) DO NOTHING RETURNING endpoint, next_attempt_at"
)


def _bodies(messages: list[NewMessage]) -> list[str]:
    """Each message's body as JSON; an event's webhooks share one body object (the event),
    serialised once."""
    done: dict[int, str] = {}
    out = []
    for m in messages:
        text = done.get(id(m.body))
        if text is None:
            text = done[id(m.body)] = orjson.dumps(m.body).decode()
        out.append(text)
    return out


async def insert_messages(
    session: AsyncSession, messages: list[NewMessage]
) -> list[tuple[str, datetime]]:
    """Store planned messages (one statement); a message already stored (a redelivered event)
    is kept as it is. Returns (endpoint, first attempt time) of each new row."""
    if not messages:
        return []
    params: dict[str, list[Any]] = {
        "id": [m.id for m in messages],
        "event_id": [m.event_id for m in messages],
        "event_type": [m.event_type for m in messages],
        "lead_id": [m.lead_id for m in messages],
        "channel": [m.channel for m in messages],
        "target": [m.target for m in messages],
        "kind": [m.kind for m in messages],
        "body": _bodies(messages),
        "delay": [max(0.0, m.delay_seconds) for m in messages],
    }
    rows = await session.execute(_INSERT, params)
    return [(str(r[0]), r[1]) for r in rows]


_ERASED_BODY = '{"erased": true}'


async def erase_leads(session: AsyncSession, lead_ids: list[str], *, at: datetime) -> int:
    """`contact.erased`: remember the leads (late events plan nothing), cancel their
    undelivered messages and scrub every stored body (and e-mail target) of them.
    Idempotent. Returns how many messages were cancelled."""
    ids = [i.lower() for i in lead_ids]
    await session.execute(
        text(
            "INSERT INTO notify.erased_leads (lead_id, erased_at) "
            "SELECT unnest(CAST(:ids AS text[])), :at ON CONFLICT DO NOTHING"
        ),
        {"ids": ids, "at": at},
    )
    cancelled = await session.execute(
        text(
            "UPDATE notify.messages SET status = 'cancelled' "
            "WHERE lead_id = ANY(CAST(:ids AS text[])) AND status = 'pending' RETURNING id"
        ),
        {"ids": ids},
    )
    count = len(cancelled.all())
    await session.execute(
        text(
            f"UPDATE notify.messages SET body = CAST('{_ERASED_BODY}' AS jsonb), "
            "target = CASE WHEN channel = 'email' THEN 'erased' ELSE target END "
            "WHERE lead_id = ANY(CAST(:ids AS text[]))"
        ),
        {"ids": ids},
    )
    return count


# Per-lead order: a message is claimable only if no older message of its (lead, target) pair
# is still pending (in flight, or waiting for a retry).
_FIRST_OF_LEAD = (
    "(m.lead_id IS NULL OR NOT EXISTS (SELECT 1 FROM notify.messages o "
    "WHERE o.lead_id = m.lead_id AND o.channel = m.channel AND o.target = m.target "
    "AND o.status = 'pending' AND o.seq < m.seq))"
)


@dataclass(frozen=True, slots=True)
class Want:
    """One endpoint's part of a claim round: up to `limit` messages (its free slots), leased
    until `lease_until`."""

    endpoint: str
    limit: int
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class Round:
    """What a claim round took (oldest first) and, per endpoint asked, its earliest claimable
    next attempt after `now` (endpoints with none are left out)."""

    claimed: list[MessageRow]
    next_due: dict[str, datetime]


_NULLS = ", ".join(["NULL"] * 5)
_CLAIM_ROUND = text(
    # endpoints disabled by a 410 are not asked at all
    "WITH w AS (SELECT * FROM unnest(CAST(:eps AS text[]), CAST(:lims AS int[]), "
    "CAST(:leases AS timestamptz[])) AS w(endpoint, lim, lease) WHERE NOT EXISTS "
    "(SELECT 1 FROM notify.endpoints e WHERE e.name = w.endpoint AND e.disabled_at IS NOT NULL)), "
    "c AS (SELECT x.id, w.lease FROM w CROSS JOIN LATERAL (SELECT m.id FROM notify.messages m "
    "WHERE m.endpoint = w.endpoint AND m.status = 'pending' AND m.next_attempt_at <= :now "
    f"AND {_FIRST_OF_LEAD} ORDER BY m.next_attempt_at LIMIT w.lim FOR UPDATE OF m SKIP LOCKED) x), "
    "u AS (UPDATE notify.messages m SET next_attempt_at = c.lease FROM c WHERE m.id = c.id "
    f"RETURNING {_M_COLS}) "
    "SELECT true, * FROM u UNION ALL "
    # the statement sees the table as it was before its own UPDATE: the rows it claims are
    # still due at `now` there, hence `> :now` (their lease is this instance's own business)
    # a next-due row: the endpoint (7th column) and its time (13th), nothing else
    f"SELECT false, NULL, {_NULLS}, w.endpoint, {_NULLS}, n.t, NULL, NULL, NULL, NULL FROM w "
    "CROSS JOIN LATERAL (SELECT m.next_attempt_at AS t FROM notify.messages m "
    "WHERE m.endpoint = w.endpoint AND m.status = 'pending' AND m.next_attempt_at > :now "
    f"AND {_FIRST_OF_LEAD} ORDER BY m.next_attempt_at LIMIT 1) n"
)


async def claim_round(session: AsyncSession, *, wants: list[Want], now: datetime) -> Round:
    """One statement for every endpoint with free slots: each endpoint's due messages (up to
    its limit, oldest due first) are leased until its `lease_until` (their next_attempt_at),
    so other dispatchers skip them while they are in flight (`FOR UPDATE SKIP LOCKED`) and a
    crashed dispatcher's messages come due again after the lease. Each endpoint has its own
    LIMIT, so a backlog at one never takes another's share.

    Per-lead order to one target: only the oldest pending message of a (lead, target) pair is
    claimable; the next one waits until it is delivered, dead or cancelled.

    The next due times leave out a message held back behind an older one of its lead: it
    becomes claimable when that one's attempt is recorded, which wakes the dispatcher
    (counting it would spin the loop while the older one waits hours for its retry)."""
    if not wants:
        return Round([], {})
    rows = await session.execute(
        _CLAIM_ROUND,
        {
            "eps": [w.endpoint for w in wants],
            "lims": [w.limit for w in wants],
            "leases": [w.lease_until for w in wants],
            "now": now,
        },
    )
    claimed: list[MessageRow] = []
    nxt: dict[str, datetime] = {}
    for r in rows:
        if r[0]:
            claimed.append(_row(r[1:]))
        else:
            nxt[str(r[7])] = r[13]
    return Round(sorted(claimed, key=lambda m: m.created_at), nxt)


@dataclass(frozen=True, slots=True)
class Attempt:
    message_id: str
    at: datetime
    outcome: str  # delivered | retry | gone | rejected | dead
    status: int | None
    duration_seconds: float
    error: str | None
    new_status: str  # the message's status after this attempt
    step: int
    next_attempt_at: datetime


async def record_attempt(session: AsyncSession, attempt: Attempt) -> int | None:
    """The attempt row and the message's next state, in one statement. A message cancelled
    (erased) while in flight stays cancelled. Returns the attempt's number, None if the
    message no longer exists."""
    n: int | None = await session.scalar(
        text(
            "WITH m AS (UPDATE notify.messages SET attempts = attempts + 1, "
            "status = CASE WHEN status = 'pending' THEN :new_status ELSE status END, "
            "step = :step, next_attempt_at = :next, last_status = :code, last_error = :error, "
            "delivered_at = CASE WHEN :new_status = 'delivered' THEN :at ELSE delivered_at END "
            "WHERE id = CAST(:id AS uuid) RETURNING id, attempts) "
            "INSERT INTO notify.attempts (message_id, n, at, outcome, status, duration_seconds, "
            "error) SELECT m.id, m.attempts, :at, :outcome, :code, :duration, :error FROM m "
            "RETURNING n"
        ),
        {
            "id": attempt.message_id,
            "new_status": attempt.new_status,
            "step": attempt.step,
            "next": attempt.next_attempt_at,
            "code": attempt.status,
            "error": attempt.error,
            "at": attempt.at,
            "outcome": attempt.outcome,
            "duration": attempt.duration_seconds,
        },
    )
    return n


@dataclass(frozen=True, slots=True)
class Health:
    """A round's effect on one endpoint's health: its last success in the round (if any), the
    first failure after it (if any) and, for a 410, the disable reason."""

    name: str
    ok_at: datetime | None
    failed_at: datetime | None
    disable_reason: str | None = None


# One row per endpoint (ON CONFLICT DO UPDATE may touch a row once per statement): a success
# clears `failing_since`, a failure after it sets it (kept if it was already set), a reason
# disables the endpoint.
_HEALTH_CTE = (
    "h AS (INSERT INTO notify.endpoints AS e (name, last_success_at, last_failure_at, "
    "failing_since, disabled_at, disabled_reason) "
    "SELECT h.name, h.ok_at, h.failed_at, h.failed_at, "
    "CASE WHEN h.reason IS NOT NULL THEN h.failed_at END, h.reason "
    "FROM unnest(CAST(:h_name AS text[]), CAST(:h_ok AS timestamptz[]), "
    "CAST(:h_failed AS timestamptz[]), CAST(:h_reason AS text[])) AS h(name, ok_at, failed_at, "
    "reason) ON CONFLICT (name) DO UPDATE SET "
    "last_success_at = coalesce(excluded.last_success_at, e.last_success_at), "
    "last_failure_at = coalesce(excluded.last_failure_at, e.last_failure_at), "
    "failing_since = CASE WHEN excluded.failing_since IS NOT NULL THEN "
    "CASE WHEN excluded.last_success_at IS NOT NULL THEN excluded.failing_since "
    "ELSE coalesce(e.failing_since, excluded.failing_since) END "
    "WHEN excluded.last_success_at IS NOT NULL THEN NULL ELSE e.failing_since END, "
    "disabled_at = coalesce(excluded.disabled_at, e.disabled_at), "
    "disabled_reason = coalesce(excluded.disabled_reason, e.disabled_reason) RETURNING 1)"
)


def _health_params(health: Sequence[Health]) -> dict[str, list[Any]]:
    return {
        "h_name": [h.name for h in health],
        "h_ok": [h.ok_at for h in health],
        "h_failed": [h.failed_at for h in health],
        "h_reason": [h.disable_reason for h in health],
    }


_RECORD_ROUND = text(
    "WITH a AS (SELECT * FROM unnest(CAST(:id AS uuid[]), CAST(:new_status AS text[]), "
    "CAST(:step AS int[]), CAST(:next AS timestamptz[]), CAST(:code AS int[]), "
    "CAST(:error AS text[]), CAST(:at AS timestamptz[]), CAST(:outcome AS text[]), "
    "CAST(:duration AS float8[])) "
    "AS a(id, new_status, step, next, code, error, at, outcome, duration)), "
    "m AS (UPDATE notify.messages AS msg SET attempts = msg.attempts + 1, "
    "status = CASE WHEN msg.status = 'pending' THEN a.new_status ELSE msg.status END, "
    "step = a.step, next_attempt_at = a.next, last_status = a.code, last_error = a.error, "
    "delivered_at = CASE WHEN a.new_status = 'delivered' THEN a.at ELSE msg.delivered_at END "
    "FROM a WHERE msg.id = a.id RETURNING msg.id, msg.attempts), "
    "i AS (INSERT INTO notify.attempts (message_id, n, at, outcome, status, duration_seconds, "
    "error) SELECT m.id, m.attempts, a.at, a.outcome, a.code, a.duration, a.error "
    f"FROM m JOIN a ON a.id = m.id RETURNING 1), {_HEALTH_CTE} "
    "SELECT (SELECT count(*) FROM i), (SELECT count(*) FROM h)"
)


async def record_attempts(
    session: AsyncSession, attempts: list[Attempt], health: Sequence[Health] = ()
) -> None:
    """`record_attempt` for many messages (all different), and the endpoints' health, in one
    statement: the dispatcher writes every attempt that finished since its last write
    together (one round trip, its own transaction)."""
    if not attempts and not health:
        return
    await session.execute(
        _RECORD_ROUND,
        {
            "id": [a.message_id for a in attempts],
            "new_status": [a.new_status for a in attempts],
            "step": [a.step for a in attempts],
            "next": [a.next_attempt_at for a in attempts],
            "code": [a.status for a in attempts],
            "error": [a.error for a in attempts],
            "at": [a.at for a in attempts],
            "outcome": [a.outcome for a in attempts],
            "duration": [a.duration_seconds for a in attempts],
            **_health_params(health),
        },
    )


async def mark_endpoint(
    session: AsyncSession,
    *,
    name: str,
    ok: bool,
    at: datetime,
    disable_reason: str | None = None,
) -> None:
    """One attempt's effect on its endpoint's health (the statement `record_attempts` uses)."""
    mark = Health(name, at if ok else None, None if ok else at, disable_reason)
    await session.execute(
        text(f"WITH {_HEALTH_CTE} SELECT count(*) FROM h"), _health_params([mark])
    )


DUE_CHANNEL = "baton_notify_due"  # NOTIFYed on insert (trigger, notify_0002) and by wake_all


async def wake_all(session: AsyncSession) -> None:
    """Wake every notify instance's dispatcher when this transaction commits (replay, enable:
    the instance serving the admin call may not be the one whose slots are free)."""
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": DUE_CHANNEL})


async def enable_endpoint(session: AsyncSession, name: str) -> bool:
    """Clear a 410's disable; True if it was disabled."""
    row = await session.execute(
        text(
            "UPDATE notify.endpoints SET disabled_at = NULL, disabled_reason = NULL "
            "WHERE name = :name AND disabled_at IS NOT NULL RETURNING name"
        ),
        {"name": name},
    )
    return row.first() is not None


async def disabled_endpoints(session: AsyncSession) -> set[str]:
    rows = await session.execute(
        text("SELECT name FROM notify.endpoints WHERE disabled_at IS NOT NULL")
    )
    return {str(r[0]) for r in rows}


@dataclass(frozen=True, slots=True)
class Backlog:
    endpoint: str
    pending: int
    oldest_created_at: datetime | None


async def backlog(session: AsyncSession) -> list[Backlog]:
    """Pending messages and the oldest one's creation time, per endpoint (the gauges)."""
    rows = await session.execute(
        text(
            "SELECT endpoint, count(*), min(created_at) FROM notify.messages "
            "WHERE status = 'pending' GROUP BY endpoint"
        )
    )
    return [Backlog(str(r[0]), int(r[1]), r[2]) for r in rows]


async def endpoint_states(session: AsyncSession) -> dict[str, dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT name, last_success_at, last_failure_at, failing_since, disabled_at, "
            "disabled_reason FROM notify.endpoints"
        )
    )
    return {
        str(r[0]): {
            "last_success_at": r[1],
            "last_failure_at": r[2],
            "failing_since": r[3],
            "disabled_at": r[4],
            "disabled_reason": r[5],
        }
        for r in rows
    }


async def dead_count(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        text("SELECT endpoint, count(*) FROM notify.messages WHERE status = 'dead' GROUP BY 1")
    )
    return {str(r[0]): int(r[1]) for r in rows}


async def get_message(session: AsyncSession, message_id: str) -> MessageRow | None:
    r = (
        await session.execute(
            text(f"SELECT {_COLS} FROM notify.messages WHERE id = CAST(:id AS uuid)"),
            {"id": message_id},
        )
    ).first()
    return _row(r) if r else None


async def attempts_for(session: AsyncSession, message_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT n, at, outcome, status, duration_seconds, error FROM notify.attempts "
            "WHERE message_id = CAST(:id AS uuid) ORDER BY n"
        ),
        {"id": message_id},
    )
    return [
        {
            "n": r[0],
            "at": r[1],
            "outcome": r[2],
            "status": r[3],
            "duration_seconds": r[4],
            "error": r[5],
        }
        for r in rows
    ]


async def replay_message(session: AsyncSession, message_id: str, *, now: datetime) -> str | None:
    """Make a delivered or dead message pending again, due now, with a fresh schedule.
    Returns the status it had (None: no such message); a cancelled one, or any message of an
    erased lead (its body is scrubbed), is left as it is and reported as "cancelled"."""
    row = (
        await session.execute(
            text(
                # a message of an erased lead (its body scrubbed) counts as cancelled
                "WITH old AS (SELECT id, CASE WHEN lead_id IN (SELECT lead_id FROM "
                "notify.erased_leads) THEN 'cancelled' ELSE status END AS status "
                "FROM notify.messages WHERE id = CAST(:id AS uuid) FOR UPDATE) "
                ", upd AS (UPDATE notify.messages m SET status = 'pending', step = 0, "
                "next_attempt_at = :now FROM old WHERE m.id = old.id "
                "AND old.status <> 'cancelled') "
                "SELECT status FROM old"
            ),
            {"id": message_id, "now": now},
        )
    ).first()
    return str(row[0]) if row else None


async def replay_endpoint(
    session: AsyncSession, endpoint: str, *, since: datetime, now: datetime
) -> int:
    """Every message of the endpoint created since `since`, except cancelled ones and those
    of erased leads, pending again and due now with a fresh schedule. Returns how many."""
    rows = await session.execute(
        text(
            "UPDATE notify.messages SET status = 'pending', step = 0, next_attempt_at = :now "
            "WHERE endpoint = :endpoint AND created_at >= :since AND status <> 'cancelled' "
            "AND (lead_id IS NULL OR lead_id NOT IN (SELECT lead_id FROM notify.erased_leads)) "
            "RETURNING id"
        ),
        {"endpoint": endpoint, "since": since, "now": now},
    )
    return len(rows.all())
