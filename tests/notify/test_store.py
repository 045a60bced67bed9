"""notify.messages on the real PostgreSQL: one row per planned message however often the event
comes, claims keep per-lead order to a target, erasure cancels and scrubs."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import store
from shared.events import utcnow

pytestmark = pytest.mark.integration


def msg(
    lead: str | None,
    target: str,
    *,
    event: str | None = None,
    channel: str = "webhook",
    delay: float = 0.0,
) -> store.NewMessage:
    return store.NewMessage(
        id=str(uuid.uuid4()),
        event_id=event or str(uuid.uuid4()),
        event_type="lead.assigned",
        lead_id=lead,
        channel=channel,
        target=target,
        kind="event",
        body={"event": {"data": {"contact": {"email": "ada@example.org"}}}},
        delay_seconds=delay,
    )


def ep() -> str:
    return f"ep-{uuid.uuid4().hex[:8]}"


async def claim(
    db: AsyncSession, target: str, *, now: datetime, lease: datetime, limit: int = 10
) -> list[store.MessageRow]:
    got = await store.claim_round(db, wants=[store.Want(target, limit, lease)], now=now)
    return got.claimed


async def next_due(db: AsyncSession, target: str, *, now: datetime) -> datetime | None:
    got = await store.claim_round(db, wants=[store.Want(target, 0, now)], now=now)
    return got.next_due.get(target)


async def test_insert_is_idempotent_and_claims_lease(db: AsyncSession) -> None:
    target = ep()
    m = msg(str(uuid.uuid4()), target)
    assert len(await store.insert_messages(db, [m])) == 1
    assert await store.insert_messages(db, [m]) == []  # a redelivered event: nothing new
    now = utcnow() + timedelta(seconds=1)
    lease = now + timedelta(seconds=40)
    claimed = await claim(db, target, now=now, lease=lease)
    assert [c.id for c in claimed] == [m.id]
    assert claimed[0].endpoint == target and claimed[0].next_attempt_at == lease
    assert claimed[0].body == m.body
    # leased: not due again until the lease ends
    assert await claim(db, target, now=now, lease=lease) == []
    assert await next_due(db, target, now=now) == lease


async def test_only_the_oldest_pending_message_of_a_lead_and_target_is_claimable(
    db: AsyncSession,
) -> None:
    target, other = ep(), ep()
    lead = str(uuid.uuid4())
    first, second = msg(lead, target), msg(lead, target)
    elsewhere = msg(lead, other)
    await store.insert_messages(db, [first])
    await store.insert_messages(db, [second, elsewhere])
    now = utcnow() + timedelta(seconds=1)
    lease = now + timedelta(seconds=40)
    got = await claim(db, target, now=now, lease=lease)
    assert [c.id for c in got] == [first.id]
    assert [c.id for c in await claim(db, other, now=now, lease=lease)] == [elsewhere.id]
    n = await store.record_attempt(
        db,
        store.Attempt(
            message_id=first.id,
            at=now,
            outcome="delivered",
            status=200,
            duration_seconds=0.01,
            error=None,
            new_status="delivered",
            step=0,
            next_attempt_at=now,
        ),
    )
    assert n == 1
    got = await claim(db, target, now=now, lease=lease)
    assert [c.id for c in got] == [second.id]


async def test_one_round_claims_each_endpoint_up_to_its_own_limit(db: AsyncSession) -> None:
    """One statement for every endpoint: a backlog at one endpoint never takes another's
    share, a disabled endpoint is not claimed, and each endpoint's next time is its own."""
    busy, quiet, off = ep(), ep(), ep()
    # due a little apart: within one transaction now() is one instant, and the order of
    # messages due at the same instant (of different leads) is not defined
    backlog = [msg(str(uuid.uuid4()), busy, delay=i / 100) for i in range(6)]
    await store.insert_messages(db, backlog)
    await store.insert_messages(db, [msg(str(uuid.uuid4()), quiet)])
    later = msg(str(uuid.uuid4()), quiet, delay=600)
    await store.insert_messages(db, [later, msg(str(uuid.uuid4()), off)])
    await store.mark_endpoint(db, name=off, ok=False, at=utcnow(), disable_reason="HTTP 410")
    now = utcnow() + timedelta(seconds=1)
    lease = now + timedelta(seconds=40)
    wants = [store.Want(busy, 2, lease), store.Want(quiet, 4, lease), store.Want(off, 4, lease)]
    got = await store.claim_round(db, wants=wants, now=now)
    by_endpoint = Counter(c.endpoint for c in got.claimed)
    assert by_endpoint == {busy: 2, quiet: 1}
    assert {c.id for c in got.claimed if c.endpoint == busy} == {m.id for m in backlog[:2]}
    assert got.next_due[quiet] == (await store.get_message(db, later.id)).next_attempt_at  # type: ignore[union-attr]
    assert off not in got.next_due


async def test_a_round_of_records_keeps_each_endpoints_health(db: AsyncSession) -> None:
    """Health as one row per endpoint per round: success then failure leaves it failing
    since that failure; a failure then success clears it; a 410 disables."""
    flaky, healed, gone = ep(), ep(), ep()
    t = utcnow()
    await store.mark_endpoint(db, name=healed, ok=False, at=t - timedelta(hours=1))
    await store.record_attempts(
        db,
        [],
        [
            store.Health(flaky, ok_at=t, failed_at=t + timedelta(seconds=1)),
            store.Health(healed, ok_at=t, failed_at=None),
            store.Health(gone, ok_at=None, failed_at=t, disable_reason="HTTP 410"),
        ],
    )
    states = await store.endpoint_states(db)
    assert states[flaky]["failing_since"] == t + timedelta(seconds=1)
    assert states[flaky]["last_success_at"] == t
    assert states[healed]["failing_since"] is None
    assert states[healed]["last_failure_at"] == t - timedelta(hours=1)
    assert states[gone]["disabled_at"] == t and states[gone]["disabled_reason"] == "HTTP 410"
    # a later failure keeps the first failing_since
    await store.record_attempts(db, [], [store.Health(flaky, None, t + timedelta(seconds=9))])
    assert (await store.endpoint_states(db))[flaky]["failing_since"] == t + timedelta(seconds=1)


async def test_erasure_cancels_undelivered_scrubs_all_and_blocks_late_events(
    db: AsyncSession,
) -> None:
    target = ep()
    lead = str(uuid.uuid4())
    done, waiting = msg(lead, target), msg(lead, "email", channel="email")
    await store.insert_messages(db, [done, waiting])
    now = utcnow()
    await store.record_attempt(
        db,
        store.Attempt(
            message_id=done.id,
            at=now,
            outcome="delivered",
            status=200,
            duration_seconds=0.01,
            error=None,
            new_status="delivered",
            step=0,
            next_attempt_at=now,
        ),
    )
    assert await store.erase_leads(db, [lead.upper()], at=now) == 1
    assert await store.erase_leads(db, [lead], at=now) == 0  # idempotent
    rows = (
        await db.execute(
            text(
                "SELECT id::text, status, body::text, target FROM notify.messages "
                "WHERE lead_id = :l ORDER BY seq"
            ),
            {"l": lead},
        )
    ).all()
    assert [(r[0], r[1]) for r in rows] == [(done.id, "delivered"), (waiting.id, "cancelled")]
    assert all("ada@" not in r[2] for r in rows)
    assert rows[1][3] == "erased"
    assert await store.insert_messages(db, [msg(lead, target)]) == []  # late event: nothing


async def test_endpoint_health_and_disable(db: AsyncSession) -> None:
    name = ep()
    now = utcnow()
    await store.mark_endpoint(db, name=name, ok=False, at=now)
    await store.mark_endpoint(db, name=name, ok=False, at=now + timedelta(seconds=5))
    state = (await store.endpoint_states(db))[name]
    assert state["failing_since"] == now and state["disabled_at"] is None
    await store.mark_endpoint(db, name=name, ok=False, at=now, disable_reason="HTTP 410")
    assert name in await store.disabled_endpoints(db)
    assert await store.enable_endpoint(db, name)
    assert name not in await store.disabled_endpoints(db)
    await store.mark_endpoint(db, name=name, ok=True, at=now + timedelta(seconds=9))
    state = (await store.endpoint_states(db))[name]
    assert state["failing_since"] is None and state["last_success_at"] is not None


async def test_replay_makes_dead_and_delivered_pending_but_not_cancelled(db: AsyncSession) -> None:
    target = ep()
    dead, erased = msg(str(uuid.uuid4()), target), msg(str(uuid.uuid4()), target)
    await store.insert_messages(db, [dead, erased])
    now = utcnow()
    await store.record_attempt(
        db,
        store.Attempt(
            message_id=dead.id,
            at=now,
            outcome="dead",
            status=500,
            duration_seconds=0.01,
            error="HTTP 500",
            new_status="dead",
            step=7,
            next_attempt_at=now,
        ),
    )
    await store.erase_leads(db, [str(erased.lead_id)], at=now)
    assert await store.replay_message(db, dead.id, now=now) == "dead"
    assert await store.replay_message(db, erased.id, now=now) == "cancelled"
    assert await store.replay_message(db, str(uuid.uuid4()), now=now) is None
    row = await store.get_message(db, dead.id)
    assert row is not None and row.status == "pending" and row.step == 0
    assert (await store.get_message(db, erased.id)).status == "cancelled"  # type: ignore[union-attr]
    assert await store.replay_endpoint(db, target, since=now - timedelta(hours=1), now=now) == 1
    # delivered, then its lead erased: the scrubbed body is never sent again
    sent = msg(str(uuid.uuid4()), target)
    await store.insert_messages(db, [sent])
    await store.record_attempt(
        db,
        store.Attempt(
            message_id=sent.id, at=now, outcome="delivered", status=200, duration_seconds=0.01,
            error=None, new_status="delivered", step=0, next_attempt_at=now,
        ),
    )  # fmt: skip
    await store.erase_leads(db, [str(sent.lead_id)], at=now)
    assert await store.replay_message(db, sent.id, now=now) == "cancelled"
    assert (await store.get_message(db, sent.id)).status == "delivered"  # type: ignore[union-attr]
    assert await store.replay_endpoint(db, target, since=now - timedelta(hours=1), now=now) == 1
    assert len(await store.attempts_for(db, dead.id)) == 1


async def test_next_due_leaves_out_a_message_held_back_behind_its_lead(db: AsyncSession) -> None:
    """The second message of a lead is due now but waits for the first (retrying in an
    hour): the dispatcher must sleep until that hour, not spin on the second one."""
    target = ep()
    lead = str(uuid.uuid4())
    first, second = msg(lead, target), msg(lead, target)
    await store.insert_messages(db, [first])
    await store.insert_messages(db, [second])
    now = utcnow()
    retry_at = now + timedelta(hours=1)
    await store.record_attempt(
        db,
        store.Attempt(
            message_id=first.id, at=now, outcome="retry", status=500, duration_seconds=0.01,
            error="HTTP 500", new_status="pending", step=1, next_attempt_at=retry_at,
        ),
    )  # fmt: skip
    assert await next_due(db, target, now=now) == retry_at
