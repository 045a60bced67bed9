"""notify.messages on the real PostgreSQL: one row per planned message however often the event
comes, claims keep per-lead order to a target, erasure cancels and scrubs."""

from __future__ import annotations

import uuid
from datetime import timedelta

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


async def test_insert_is_idempotent_and_claims_lease(db: AsyncSession) -> None:
    target = ep()
    m = msg(str(uuid.uuid4()), target)
    assert len(await store.insert_messages(db, [m])) == 1
    assert await store.insert_messages(db, [m]) == []  # a redelivered event: nothing new
    now = utcnow() + timedelta(seconds=1)
    lease = now + timedelta(seconds=40)
    claimed = await store.claim_due(db, endpoint=target, now=now, limit=10, lease_until=lease)
    assert [c.id for c in claimed] == [m.id]
    assert claimed[0].endpoint == target and claimed[0].next_attempt_at == lease
    # leased: not due again until the lease ends
    assert await store.claim_due(db, endpoint=target, now=now, limit=10, lease_until=lease) == []
    assert await store.next_due(db, [target]) == lease


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
    got = await store.claim_due(db, endpoint=target, now=now, limit=10, lease_until=lease)
    assert [c.id for c in got] == [first.id]
    assert [
        c.id
        for c in await store.claim_due(db, endpoint=other, now=now, limit=10, lease_until=lease)
    ] == [elsewhere.id]
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
    got = await store.claim_due(db, endpoint=target, now=now, limit=10, lease_until=lease)
    assert [c.id for c in got] == [second.id]


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
    assert await store.next_due(db, [target]) == retry_at
