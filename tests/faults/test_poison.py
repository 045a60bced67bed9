"""Poison messages on every consumed topic, with the real services running.

Three kinds (invalid JSON, an unknown event type, a known type whose data violates its
schema) are written to every partition of every topic a service consumes. Each must reach
the dead-letter topic once per consuming group, with the original bytes, the error and the
original coordinates; and good events written after them on the same partitions must still
be handled (a lead through intake, an activity, an escalation, an erasure).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.events import (
    CloudEvent,
    ContactErased,
    EventError,
    LeadActivity,
    LeadAssigned,
    LeadEscalated,
    make_event,
    parse_event,
    utcnow,
)
from shared.settings import Settings
from tests.e2e.conftest import Stack
from tests.faults.conftest import (
    assert_clean,
    metric_sum,
    metrics_of,
    reconcile,
    record,
    sql,
    start_all,
    stream_leads,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.e2e]


def consumers(settings: Settings) -> dict[str, tuple[str, list[str]]]:
    """topic -> (a type that belongs on it, the consumer groups that read it)."""
    t, g = settings.topics, settings.consumer_group_prefix
    return {
        t.leads_received: ("lead.received", [f"{g}-router"]),
        t.leads_assigned: ("lead.assigned", [f"{g}-followup"]),
        t.leads_activity: ("lead.activity", [f"{g}-router", f"{g}-followup"]),
        t.leads_escalated: ("lead.escalated", [f"{g}-router"]),
        t.contacts_erased: ("contact.erased", [f"{g}-intake", f"{g}-followup"]),
    }


def poisons(event_type: str) -> dict[str, bytes]:
    envelope = {
        "specversion": "1.0",
        "source": "/faults/poison",
        "time": utcnow().isoformat(),
        "subject": str(uuid.uuid4()),
        "datacontenttype": "application/json",
    }
    return {
        "invalid JSON": b'{"specversion": "1.0", "id": "trunc',
        "unknown event type": orjson.dumps(
            {**envelope, "id": str(uuid.uuid4()), "type": "lead.teleported", "data": {}}
        ),
        "schema violation": orjson.dumps(
            {**envelope, "id": str(uuid.uuid4()), "type": event_type, "data": {"lead_id": 42}}
        ),
    }


EXPECTED_ERROR = {
    "invalid JSON": "invalid JSON",
    "unknown event type": "unknown event type",
    "schema violation": "lead_id",
}


async def test_poison_on_every_consumed_topic_is_dead_lettered(fault_stack: Stack) -> None:
    stack = fault_stack
    settings = stack.settings
    await start_all(stack)
    readers = consumers(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    expected: dict[tuple[str, int, int, str], tuple[str, bytes]] = {}
    try:
        for topic, (event_type, groups) in readers.items():
            for partition in range(settings.topic_partitions):
                for kind, value in poisons(event_type).items():
                    meta = await (
                        await producer.send(topic, value=value, key=b"poison", partition=partition)
                    )
                    for group in groups:
                        expected[(topic, partition, meta.offset, group)] = (kind, value)
        started = time.monotonic()

        # Good events after the poison, on partitions that already hold poison ahead of them.
        sent = await stream_leads(stack, 1)
        [lead_id] = sent.accepted
        assigned_event = await _outcome(settings, lead_id)
        assigned = LeadAssigned.model_validate(assigned_event.data)
        now = utcnow()
        good = {
            settings.topics.leads_activity: make_event(
                type="lead.activity",
                source="/faults/sales-tool",
                subject=lead_id,
                data=LeadActivity(
                    lead_id=lead_id, type="contacted", at=now, actor=assigned.owner.id or "rep"
                ),
            ),
            settings.topics.leads_escalated: make_event(
                type="lead.escalated",
                source="/faults/notifier",
                subject=lead_id,
                data=LeadEscalated(
                    lead_id=lead_id,
                    assignment_seq=assigned.assignment_seq,
                    level=1,
                    action="remind_owner",
                    owner=assigned.owner,
                    team_id=assigned.team.id,
                    due_at=now,
                    seconds_overdue=0.0,
                    escalated_at=now,
                ),
            ),
            settings.topics.contacts_erased: make_event(
                type="contact.erased",
                source="/faults/eraser",
                subject=(unknown := str(uuid.uuid4())),
                data=ContactErased(erasure_id=str(uuid.uuid4()), lead_ids=[unknown], erased_at=now),
            ),
        }
        for topic, event in good.items():
            await (await producer.send(topic, value=event.to_bytes(), key=event.subject.encode()))
    finally:
        await producer.stop()

    # every poison message dead-lettered once per consuming group, with its error
    dead = await _read_dlq(settings, len(expected))
    keys = Counter((d["topic"], d["partition"], d["offset"], d["group"]) for d in dead)
    assert set(keys) == set(expected), (set(expected) - set(keys), set(keys) - set(expected))
    assert all(n == 1 for n in keys.values()), [k for k, n in keys.items() if n > 1]
    for d in dead:
        kind, value = expected[(d["topic"], d["partition"], d["offset"], d["group"])]
        assert d["value"] == value
        assert d["reason"] == "poison"
        assert EXPECTED_ERROR[kind] in d["error"], (kind, d["error"])
    dead_lettered_in = time.monotonic() - started

    # ...and consumption went on past them: each good event is in its consumers' inboxes
    want: list[tuple[str, str]] = [("router", lead_id)]  # lead.received's id is the lead id
    want.append(("followup", assigned_event.id))
    for topic, event in good.items():
        for group in readers[topic][1]:
            want.append((group.rsplit("-", 1)[1], event.id))

    async def handled() -> bool:
        for service, event_id in want:
            rows = await sql(
                settings, f"SELECT 1 FROM {service}.inbox WHERE event_id = $1", event_id
            )
            if not rows:
                return False
        return True

    await wait_until(handled, timeout=60, what="good events after the poison handled")
    clock = await sql(
        settings, "SELECT status FROM followup.clocks WHERE lead_id = $1", uuid.UUID(lead_id)
    )
    assert clock and clock[0][0] == "met", clock  # the activity after the poison stopped it
    by_service = Counter(group.rsplit("-", 1)[1] for *_, group in expected)
    for service, n in by_service.items():
        samples = await metrics_of(stack.url(service))
        assert metric_sum(samples, "baton_events_dead_lettered_total", reason="poison") == n
    r = await reconcile(settings, sent.accepted)
    poison = len({k[:3] for k in expected})
    record(
        f"Poison on every consumed topic: {poison} messages (invalid JSON, unknown type, schema"
        f" violation) on every partition of 5 topics, {len(expected)} dead letters"
        " (one per consuming group), then good events",
        1,
        r,
        dead_lettered_in,
    )
    assert_clean(r)
    print(
        f"{poison} poison messages, {len(expected)} dead letters (one per consuming group) "
        f"within {dead_lettered_in:.1f}s; {len(want)} good events handled after them"
    )


async def _read_dlq(settings: Settings, n: int, timeout: float = 60) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        settings.topics.leads_dlq,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"dlq-{uuid.uuid4().hex[:8]}",
    )
    out: list[dict[str, Any]] = []
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for msgs in batch.values():
                for msg in msgs:
                    h = {k: v.decode() for k, v in msg.headers}
                    out.append(
                        {
                            "topic": h["baton-original-topic"],
                            "partition": int(h["baton-original-partition"]),
                            "offset": int(h["baton-original-offset"]),
                            "group": h["baton-consumer-group"],
                            "reason": h["baton-error-reason"],
                            "error": h["baton-error"],
                            "value": msg.value,
                        }
                    )
            if len(out) >= n:
                quiet_until = quiet_until or time.monotonic() + 2  # catch extra copies
                if time.monotonic() > quiet_until:
                    break
    finally:
        await consumer.stop()
    return out


async def _outcome(settings: Settings, lead_id: str, timeout: float = 60) -> CloudEvent:
    """The lead.assigned for this lead, read past the poison on the topic (as a sales tool
    that skips what it cannot parse would)."""
    consumer = AIOKafkaConsumer(
        settings.topics.leads_assigned,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"outcome-{uuid.uuid4().hex[:8]}",
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for msgs in batch.values():
                for msg in msgs:
                    try:
                        event = parse_event(msg.value)
                    except EventError:
                        continue
                    if event.subject == lead_id and event.type == "lead.assigned":
                        return event
    finally:
        await consumer.stop()
    raise AssertionError(f"lead {lead_id} not assigned within {timeout}s")
