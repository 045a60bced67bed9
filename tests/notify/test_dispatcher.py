"""The dispatcher on the real PostgreSQL against real loopback receivers: retries, Retry-After,
410, dead letters, per-lead order, erasure, and a dead endpoint never delaying a healthy one.

Most tests drive `tick()` by hand with a `now` far ahead, so a retry scheduled hours away is
due at once and nothing depends on how fast the machine is."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.notify import handlers, store
from shared.events import CloudEvent, utcnow
from tests.notify.conftest import RigFactory, contact_erased, lead_assigned, name
from tests.notify.people_events import nurtured_event, parked_event
from tests.notify.receivers import Receiver, Reply, always, failing_then_ok

pytestmark = pytest.mark.integration
LATER = timedelta(days=3)  # past any retry the default schedule sets


async def tick(rig: object, *, ahead: timedelta = LATER) -> int:
    d = rig.dispatcher  # type: ignore[attr-defined]
    started, _ = await d._tick(now=utcnow() + ahead)
    await d.idle()
    return int(started)


async def test_delivered_signed_and_recorded(rig: RigFactory) -> None:
    ep = name()
    async with Receiver(always(Reply())) as rx:
        r = rig([(ep, rx.url())])
        rx.secret = r.secret
        event = lead_assigned()
        await r.publish(event)
        assert await tick(r, ahead=timedelta(0)) == 1
    [row] = await r.rows(ep)
    assert row["status"] == "delivered" and row["attempts"] == 1 and row["last_status"] == 200
    assert rx.verified_ids() == [event.id]
    assert rx.requests[0].event()["data"] == event.data
    [attempt] = await r.attempts(row["id"])
    assert attempt["outcome"] == "delivered" and attempt["status"] == 200
    assert r.count("baton_notify_deliveries_total", channel="webhook", outcome="delivered") == 1
    async with r.runtime.sessions() as s:
        state = (await store.endpoint_states(s))[ep]
    assert state["last_success_at"] is not None and state["failing_since"] is None


async def test_redelivered_event_is_one_row_and_one_delivery(rig: RigFactory) -> None:
    ep = name()
    async with Receiver(always(Reply())) as rx:
        r = rig([(ep, rx.url())])
        event = lead_assigned()
        await r.publish(event)
        await r.publish(event)  # the consumer's inbox would drop it; the row key does too
        await tick(r)
        await tick(r)
    assert len(await r.rows(ep)) == 1
    assert len(rx.requests) == 1


async def test_retry_then_success_with_the_same_webhook_id(rig: RigFactory) -> None:
    ep = name()
    async with Receiver(failing_then_ok(2)) as rx:
        r = rig([(ep, rx.url())])
        event = lead_assigned()
        await r.publish(event)
        for _ in range(3):
            assert await tick(r) == 1
        assert await tick(r) == 0
    [row] = await r.rows(ep)
    assert row["status"] == "delivered" and row["attempts"] == 3
    assert [a["outcome"] for a in await r.attempts(row["id"])] == ["retry", "retry", "delivered"]
    assert [q.headers["webhook-id"] for q in rx.requests] == [event.id] * 3
    assert r.count("baton_notify_deliveries_total", channel="webhook", outcome="retry") == 2
    async with r.runtime.sessions() as s:
        assert (await store.endpoint_states(s))[ep]["failing_since"] is None


async def test_first_retry_follows_the_schedule(rig: RigFactory) -> None:
    ep = name()
    async with Receiver(always(Reply(status=500))) as rx:
        r = rig([(ep, rx.url())])
        await r.publish(lead_assigned())
        await tick(r, ahead=timedelta(0))
        # due in 5 s, not now: a tick at the real time finds nothing
        assert await tick(r, ahead=timedelta(0)) == 0
    [row] = await r.rows(ep)
    [attempt] = await r.attempts(row["id"])
    assert row["step"] == 1
    assert row["next_attempt_at"] - attempt["at"] == timedelta(seconds=5)  # jitter 0 here
    assert len(rx.requests) == 1


async def test_retry_after_is_honoured(rig: RigFactory) -> None:
    ep = name()
    reply = Reply(status=429, headers={"retry-after": "120"})
    async with Receiver(failing_then_ok(1, reply)) as rx:
        r = rig([(ep, rx.url())], schedule=(0.01, 0.01))
        await r.publish(lead_assigned())
        await tick(r, ahead=timedelta(0))
        assert await tick(r, ahead=timedelta(seconds=60)) == 0  # not before Retry-After
        assert await tick(r, ahead=timedelta(seconds=121)) == 1
    [row] = await r.rows(ep)
    first, second = await r.attempts(row["id"])
    assert first["status"] == 429 and second["outcome"] == "delivered"
    assert len(rx.requests) == 2


async def test_410_disables_the_endpoint_and_keeps_its_messages(rig: RigFactory) -> None:
    ep = name()
    gone = True

    def behaviour(_req: object, _n: int) -> Reply:
        return Reply(status=410) if gone else Reply()

    async with Receiver(behaviour) as rx:
        r = rig([(ep, rx.url())], concurrency=1)
        await r.publish(lead_assigned(), lead_assigned())
        assert await tick(r) == 1
        assert await tick(r) == 0  # disabled: nothing more is sent
        rows = await r.rows(ep)
        assert [x["status"] for x in rows] == ["pending", "pending"]
        assert rows[0]["attempts"] == 1 and rows[1]["attempts"] == 0
        async with r.runtime.sessions() as s:
            state = (await store.endpoint_states(s))[ep]
        assert state["disabled_at"] is not None and "410" in state["disabled_reason"]
        assert len(rx.requests) == 1
        await r.dispatcher.refresh_health()
        assert r.count("baton_notify_pending_messages", endpoint=ep) == 2
        assert r.count("baton_notify_endpoint_failing", endpoint=ep) == 1
        assert r.count("baton_notify_oldest_pending_seconds", endpoint=ep) > 0
        gone = False
        async with r.runtime.sessions() as s, s.begin():
            assert await store.enable_endpoint(s, ep)
        assert await tick(r) == 1
        assert await tick(r) == 1
    assert [x["status"] for x in await r.rows(ep)] == ["delivered", "delivered"]
    await r.dispatcher.refresh_health()
    assert r.count("baton_notify_endpoint_failing", endpoint=ep) == 0
    assert r.count("baton_notify_pending_messages", endpoint=ep) == 0


async def test_dead_after_the_schedule(rig: RigFactory) -> None:
    ep = name()
    async with Receiver(always(Reply(status=503))) as rx:
        r = rig([(ep, rx.url())])
        await r.publish(lead_assigned())
        for _ in range(8):  # the first attempt and seven retries
            assert await tick(r) == 1
        assert await tick(r) == 0
    [row] = await r.rows(ep)
    assert row["status"] == "dead" and row["attempts"] == 8
    assert len(rx.requests) == 8
    assert r.count("baton_notify_deliveries_total", channel="webhook", outcome="dead") == 1
    assert r.count("baton_notify_dead_letters_total", channel="webhook") == 1
    async with r.runtime.sessions() as s:
        assert (await store.endpoint_states(s))[ep]["failing_since"] is not None


async def test_a_rejected_message_is_dead_at_once(rig: RigFactory) -> None:
    ep = name()
    async with Receiver(always(Reply(status=422))) as rx:
        r = rig([(ep, rx.url())])
        await r.publish(lead_assigned())
        await tick(r)
        assert await tick(r) == 0
    [row] = await r.rows(ep)
    assert row["status"] == "dead" and len(rx.requests) == 1
    assert r.count("baton_notify_dead_letters_total", channel="webhook") == 1


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=302, headers={"location": "http://127.0.0.1:1/"}), "redirect not followed"),
        (Reply(body=b"x" * 300_000), "response body over 65536 bytes"),
    ],
)
async def test_a_bad_answer_is_a_recorded_failed_attempt(
    rig: RigFactory, reply: Reply, error: str
) -> None:
    ep = name()
    async with Receiver(always(reply)) as rx:
        r = rig([(ep, rx.url())])
        await r.publish(lead_assigned())
        await tick(r)
    [row] = await r.rows(ep)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert error in row["last_error"]


async def test_erasure_cancels_undelivered_messages(rig: RigFactory) -> None:
    ep = name()
    async with Receiver(always(Reply())) as rx:
        r = rig([(ep, rx.url())])
        lead = str(uuid.uuid4())
        await r.publish(lead_assigned(lead))
        await r.publish(contact_erased(lead))
        await tick(r)
        await r.publish(lead_assigned(lead, seq=2))  # late, on another topic: nothing planned
    rows = await r.rows(ep)
    assigned_rows = [x for x in rows if x["body"] == {"erased": True}]
    assert [x["status"] for x in assigned_rows] == ["cancelled"]
    # the erasure event itself still reaches the endpoint (ids only)
    assert [q.event()["type"] for q in rx.requests] == ["contact.erased"]


async def test_per_lead_order_to_one_endpoint(rig: RigFactory) -> None:
    ep = name()
    async with Receiver(failing_then_ok(1)) as rx:
        r = rig([(ep, rx.url())], schedule=(0.01,) * 5, concurrency=4)
        lead = str(uuid.uuid4())
        events = [lead_assigned(lead, seq=n) for n in (1, 2, 3)]
        await r.publish(*events)
        await r.dispatcher.start()
        await rx.wait_for(4)
        await r.dispatcher.stop()
    ids = [q.headers["webhook-id"] for q in rx.requests]
    # the first failed once and was retried before the second was ever sent
    assert ids == [events[0].id, events[0].id, events[1].id, events[2].id]


async def test_a_dead_endpoint_never_delays_a_healthy_one(rig: RigFactory) -> None:
    healthy, dead = name(), name()
    slow = name()
    async with (
        Receiver(always(Reply())) as ok_rx,
        Receiver(always(Reply(delay=0.2))) as slow_rx,
        Receiver(always(Reply(hang=True))) as dead_rx,
    ):
        r = rig(
            [(dead, dead_rx.url(), 60.0), (slow, slow_rx.url()), (healthy, ok_rx.url())],
            concurrency=2,
        )
        events = [lead_assigned() for _ in range(12)]
        await r.publish(*events)
        await r.dispatcher.start()
        await ok_rx.wait_for(len(events))
        await dead_rx.wait_for(2)
        # every healthy delivery is done and recorded while the dead endpoint's first
        # attempts are still hanging: none of its attempts has even finished
        for _ in range(100):
            if all(x["status"] == "delivered" for x in await r.rows(healthy)):
                break
            await asyncio.sleep(0.05)
        assert [x["status"] for x in await r.rows(healthy)] == ["delivered"] * len(events)
        dead_rows = await r.rows(dead)
        assert [x["attempts"] for x in dead_rows] == [0] * len(events)
        assert dead_rx.hanging == 2  # its two slots, no more
        assert r.dispatcher.inflight[dead] == 2
        # the slow one gets through too, in its own slots
        await slow_rx.wait_for(len(events))
        slow_ids = sorted(q.headers["webhook-id"] for q in slow_rx.requests)
        assert slow_ids == sorted(e.id for e in events)
        r.dispatcher.stop_grace = 0.1
        await r.dispatcher.stop()


async def test_the_consumer_wakes_the_dispatcher_after_its_commit(rig: RigFactory) -> None:
    """With no polling to fall back on (an hour's sleep), a message stored through the
    consumer's handler is sent: the handler wakes the dispatcher once its rows are visible."""
    ep = name()
    async with Receiver(always(Reply())) as rx:
        r = rig([(ep, rx.url())], max_sleep=3600)
        await r.dispatcher.start()
        await asyncio.sleep(0.1)  # the first tick found nothing and sleeps
        handle = handlers.build_many(r.service, r.dispatcher.wake)
        async with r.runtime.sessions() as session, session.begin():
            await handle(session, [lead_assigned()])
        await rx.wait_for(1, timeout=20)


async def test_another_instances_messages_wake_the_dispatcher_through_notify(
    rig: RigFactory,
) -> None:
    """Instance A sleeps for an hour; instance B's consumer stores a message (B wakes only
    itself): A is woken by PostgreSQL's NOTIFY and sends it."""
    ep = name()
    async with Receiver(always(Reply())) as rx:
        a = rig([(ep, rx.url())], max_sleep=3600)
        b = rig([(ep, rx.url())], max_sleep=3600)
        await a.dispatcher.start()
        await asyncio.wait_for(a.dispatcher.listening.wait(), timeout=10)
        await asyncio.sleep(0.1)  # A's first tick found nothing and sleeps
        async with b.runtime.sessions() as session, session.begin():
            await b.service.on_events(session, events=[lead_assigned()])
        await rx.wait_for(1, timeout=20)


async def test_gauges_come_from_the_stored_health(rig: RigFactory) -> None:
    """Every endpoint has its series from the start, and a failure recorded by another
    instance shows here too."""
    ep = name()
    r = rig([(ep, "http://127.0.0.1:9/")])
    await r.dispatcher.refresh_health()
    assert r.registry.get_sample_value("baton_notify_endpoint_failing", {"endpoint": ep}) == 0
    async with r.runtime.sessions() as s, s.begin():
        await store.mark_endpoint(s, name=ep, ok=False, at=utcnow())
    await r.dispatcher.refresh_health()
    assert r.count("baton_notify_endpoint_failing", endpoint=ep) == 1


async def test_a_dispatcher_that_died_mid_send_leaves_a_lease_that_expires(
    rig: RigFactory,
) -> None:
    """Another instance claimed the message and died before recording its attempt: nobody
    sends it while the lease lasts; after it, it is sent (same webhook-id as that lost send)."""
    ep = name()
    async with Receiver(always(Reply())) as rx:
        r = rig([(ep, rx.url())])
        event = lead_assigned()
        await r.publish(event)
        now = utcnow()
        async with r.runtime.sessions() as s, s.begin():
            got = await store.claim_round(
                s, wants=[store.Want(ep, 5, now + timedelta(seconds=40))], now=now
            )
        [claimed] = got.claimed
        assert await tick(r, ahead=timedelta(0)) == 0  # leased by the dead instance
        assert await tick(r, ahead=timedelta(seconds=41)) == 1
    assert [q.headers["webhook-id"] for q in rx.requests] == [event.id]
    [row] = await r.rows(ep)
    assert row["id"] == claimed.id and row["status"] == "delivered" and row["attempts"] == 1


async def test_two_dispatchers_share_an_endpoint_without_doubles_or_reordering(
    rig: RigFactory,
) -> None:
    """Two notify instances (how notify scales) claim from the same table: every message
    goes out once, and each lead's events reach the endpoint in order."""
    ep = name()
    async with Receiver(always(Reply(delay=0.05))) as rx:
        a = rig([(ep, rx.url())], concurrency=2)
        b = rig([(ep, rx.url())], concurrency=2)
        leads = [str(uuid.uuid4()) for _ in range(3)]
        events = [lead_assigned(lead, seq=n) for n in (1, 2, 3, 4) for lead in leads]
        await a.publish(*events)
        await a.dispatcher.start()
        await b.dispatcher.start()
        await rx.wait_for(len(events))
        for _ in range(600):  # until both have recorded their last attempts (a bound)
            if all(x["status"] == "delivered" for x in await a.rows(ep)):
                break
            await asyncio.sleep(0.05)
        await a.dispatcher.stop()
        await b.dispatcher.stop()
    ids = [q.headers["webhook-id"] for q in rx.requests]
    assert sorted(ids) == sorted(e.id for e in events)  # each once
    for lead in leads:
        mine = [e.id for e in events if e.data["lead_id"] == lead]
        assert [i for i in ids if i in mine] == mine
    assert [x["attempts"] for x in await a.rows(ep)] == [1] * len(events)


async def test_the_new_lead_events_reach_subscribers_and_unknown_types_plan_nothing(
    rig: RigFactory,
) -> None:
    """lead.parked and lead.nurtured go to an endpoint that subscribes to them (team filter
    by lead.parked's team); a type notify does not know is consumed and stores nothing."""
    ep = name()
    async with Receiver(always(Reply())) as rx:
        r = rig([(ep, rx.url())], events="lead.parked, lead.nurtured, lead.assigned")
        policy = r.service.policy
        parked, nurtured = parked_event(policy, "emea", "EMEA"), nurtured_event(policy)
        unknown = CloudEvent(
            id=str(uuid.uuid4()), source="/baton/router", type="lead.scored", time=utcnow(),
            subject="l-1", data={"lead_id": str(uuid.uuid4())},
        )  # fmt: skip
        await r.publish(unknown, parked, nurtured)
        assert await tick(r) == 2
    # two leads, sent concurrently: in either order
    assert sorted(q.event()["type"] for q in rx.requests) == ["lead.nurtured", "lead.parked"]
    assert [x["event_id"] for x in await r.rows(ep)] == [parked.id, nurtured.id]


async def test_a_send_slot_is_free_before_its_record_but_records_cannot_fall_behind(
    rig: RigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the database slow to record (here: blocked), an endpoint keeps sending while its
    finished attempts wait for their write, up to `concurrency` of them; then it stops
    claiming until the records are committed."""
    ep = name()
    async with Receiver(always(Reply())) as rx:
        r = rig([(ep, rx.url())], concurrency=2)
        d = r.dispatcher
        release = asyncio.Event()
        write = d._write

        async def slow_write(batch: list[Any]) -> bool:
            await release.wait()
            return await write(batch)

        monkeypatch.setattr(d, "_write", slow_write)
        events = [lead_assigned() for _ in range(6)]
        await r.publish(*events)
        await d.start()
        await rx.wait_for(4)  # two slots, and two more once the first two were sent
        for _ in range(200):  # a bound: until the four sends are done and wait for records
            if d.unrecorded[ep] == 4:
                break
            await asyncio.sleep(0.05)
        assert (d.inflight[ep], d.unrecorded[ep], d._free(ep)) == (0, 4, 0)
        assert (await d._tick())[0] == 0  # nothing claimed while they wait
        release.set()
        await rx.wait_for(6)
        for _ in range(200):
            if all(x["status"] == "delivered" for x in await r.rows(ep)):
                break
            await asyncio.sleep(0.05)
        await d.stop()
    assert sorted(q.headers["webhook-id"] for q in rx.requests) == sorted(e.id for e in events)
    assert [x["status"] for x in await r.rows(ep)] == ["delivered"] * 6
