"""All SQL for the notify schema. Never commits: the consumer, dispatcher or request edge owns
the transaction.

An "endpoint" is a delivery group with its own slots: a configured webhook endpoint (the
message's target) or a people channel ("slack", "email"); the column is generated from
channel and target, so every query groups the same way.
"""

from __future__ import annotations

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


_COLS = (
    "id::text, event_id, event_type, lead_id, channel, target, endpoint, kind, body, status, "
    "attempts, step, next_attempt_at, created_at, delivered_at, last_status, last_error"
)
_M_COLS = ", ".join(f"m.{c.strip()}" for c in _COLS.split(","))


def _row(r: Any) -> MessageRow:
    return MessageRow(*r)


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
        "body": [orjson.dumps(m.body).decode() for m in messages],
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


async def claim_due(
    session: AsyncSession, *, endpoint: str, now: datetime, limit: int, lease_until: datetime
) -> list[MessageRow]:
    """Up to `limit` due messages of one endpoint, oldest due first, leased until
    `lease_until` (their next_attempt_at), so other dispatchers skip them while they are in
    flight and a crashed dispatcher's messages come due again after the lease.

    Per-lead order to one target: only the oldest pending message of a (lead, target) pair is
    claimable; the next one waits until it is delivered, dead or cancelled."""
    rows = await session.execute(
        text(
            "WITH c AS (SELECT m.id FROM notify.messages m "
            "WHERE m.endpoint = :endpoint AND m.status = 'pending' AND m.next_attempt_at <= :now "
            f"AND {_FIRST_OF_LEAD} "
            "ORDER BY m.next_attempt_at LIMIT :limit FOR UPDATE OF m SKIP LOCKED) "
            "UPDATE notify.messages m SET next_attempt_at = :lease FROM c WHERE m.id = c.id "
            f"RETURNING {_M_COLS}"
        ),
        {"endpoint": endpoint, "now": now, "limit": limit, "lease": lease_until},
    )
    return sorted((_row(r) for r in rows), key=lambda m: m.created_at)


async def next_due(session: AsyncSession, endpoints: list[str]) -> datetime | None:
    """The earliest next attempt among these endpoints' claimable messages. A message held
    back behind an older one of its lead is left out: it becomes claimable when that one's
    attempt is recorded, which wakes the dispatcher (counting it would spin the loop while
    the older one waits hours for its retry)."""
    if not endpoints:
        return None
    value: datetime | None = await session.scalar(
        text(
            "SELECT min(t) FROM unnest(CAST(:eps AS text[])) AS e(name), LATERAL "
            "(SELECT m.next_attempt_at AS t FROM notify.messages m WHERE m.endpoint = e.name "
            f"AND m.status = 'pending' AND {_FIRST_OF_LEAD} ORDER BY m.next_attempt_at LIMIT 1) x"
        ),
        {"eps": endpoints},
    )
    return value


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


_RECORD_MANY = text(
    "WITH a AS (SELECT * FROM unnest(CAST(:id AS uuid[]), CAST(:new_status AS text[]), "
    "CAST(:step AS int[]), CAST(:next AS timestamptz[]), CAST(:code AS int[]), "
    "CAST(:error AS text[]), CAST(:at AS timestamptz[]), CAST(:outcome AS text[]), "
    "CAST(:duration AS float8[])) "
    "AS a(id, new_status, step, next, code, error, at, outcome, duration)), "
    "m AS (UPDATE notify.messages AS msg SET attempts = msg.attempts + 1, "
    "status = CASE WHEN msg.status = 'pending' THEN a.new_status ELSE msg.status END, "
    "step = a.step, next_attempt_at = a.next, last_status = a.code, last_error = a.error, "
    "delivered_at = CASE WHEN a.new_status = 'delivered' THEN a.at ELSE msg.delivered_at END "
    "FROM a WHERE msg.id = a.id RETURNING msg.id, msg.attempts) "
    "INSERT INTO notify.attempts (message_id, n, at, outcome, status, duration_seconds, error) "
    "SELECT m.id, m.attempts, a.at, a.outcome, a.code, a.duration, a.error "
    "FROM m JOIN a ON a.id = m.id"
)


async def record_attempts(session: AsyncSession, attempts: list[Attempt]) -> None:
    """`record_attempt` for many messages (all different) in one statement: the dispatcher
    writes every attempt that finished since its last write together."""
    if not attempts:
        return
    await session.execute(
        _RECORD_MANY,
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
    """An attempt's effect on its endpoint's health: a success clears `failing_since`, a
    failure sets it (once); `disable_reason` (HTTP 410) disables the endpoint."""
    await session.execute(
        text(
            "INSERT INTO notify.endpoints AS e (name, last_success_at, last_failure_at, "
            "failing_since, disabled_at, disabled_reason) VALUES (:name, "
            "CASE WHEN :ok THEN CAST(:at AS timestamptz) END, "
            "CASE WHEN :ok THEN NULL ELSE CAST(:at AS timestamptz) END, "
            "CASE WHEN :ok THEN NULL ELSE CAST(:at AS timestamptz) END, "
            "CASE WHEN CAST(:reason AS text) IS NULL THEN NULL ELSE CAST(:at AS timestamptz) END, "
            "CAST(:reason AS text)) "
            "ON CONFLICT (name) DO UPDATE SET "
            "last_success_at = CASE WHEN :ok THEN excluded.last_success_at "
            "ELSE e.last_success_at END, "
            "last_failure_at = CASE WHEN :ok THEN e.last_failure_at "
            "ELSE excluded.last_failure_at END, "
            "failing_since = CASE WHEN :ok THEN NULL "
            "ELSE coalesce(e.failing_since, excluded.failing_since) END, "
            "disabled_at = coalesce(excluded.disabled_at, e.disabled_at), "
            "disabled_reason = coalesce(excluded.disabled_reason, e.disabled_reason)"
        ),
        {"name": name, "ok": ok, "at": at, "reason": disable_reason},
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
