"""Pure notify decisions: which endpoints an event reaches, the retry schedule with its
jitter and Retry-After, and what an attempt's result does to its message."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.notify.channels.base import AttemptResult
from services.notify.config import parse_config
from services.notify.domain.backoff import Backoff, parse_retry_after
from services.notify.domain.delivery import next_state
from services.notify.domain.plan import event_lead, plan_webhooks
from shared.events import CloudEvent

CONFIG = parse_config(
    """
endpoints:
  - {name: all, url: "https://a.example.com/", events: [lead.assigned, lead.escalated,
     lead.merged, contact.erased], secrets: [{env: A}]}
  - {name: emea, url: "https://b.example.com/", events: [lead.assigned, lead.escalated,
     lead.merged, contact.erased], teams: [emea], secrets: [{env: B}]}
  - {name: off, url: "https://c.example.com/", events: [lead.assigned], enabled: false,
     secrets: [{env: C}]}
  - {name: escalations, url: "https://d.example.com/", events: [lead.escalated],
     secrets: [{env: D}]}
"""
)
NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)


def event(type_: str, data: dict[str, object], id_: str = "e-1") -> CloudEvent:
    return CloudEvent(id=id_, source="/t", type=type_, time=NOW, subject="s", data=data)


def targets(ev: CloudEvent) -> list[str]:
    return [p.target for p in plan_webhooks(ev, CONFIG)]


def test_endpoints_by_type_team_and_enabled() -> None:
    emea = event("lead.assigned", {"lead_id": "L1", "team": {"id": "emea", "name": "EMEA"}})
    na = event("lead.assigned", {"lead_id": "L1", "team": {"id": "na", "name": "NA"}})
    assert targets(emea) == ["all", "emea"]
    assert targets(na) == ["all"]
    esc = event("lead.escalated", {"lead_id": "L1", "team_id": "emea"})
    assert targets(esc) == ["all", "emea", "escalations"]
    # no team named: not for a team-filtered endpoint; erasure goes to every subscriber
    assert targets(event("lead.merged", {"lead_id": "L1"})) == ["all"]
    assert targets(event("contact.erased", {"lead_ids": ["L1"]})) == ["all", "emea"]
    assert targets(event("lead.activity", {"lead_id": "L1"})) == []


def test_body_is_the_cloudevent_and_ids_are_stable_per_target() -> None:
    ev = event("lead.assigned", {"lead_id": "L1", "team": {"id": "emea", "name": "EMEA"}})
    a, b = plan_webhooks(ev, CONFIG)
    assert a.body == {"event": ev.model_dump(mode="json")}
    assert a.message_id(ev.id) == plan_webhooks(ev, CONFIG)[0].message_id(ev.id)
    assert a.message_id(ev.id) != b.message_id(ev.id)
    assert event_lead(ev) == "l1"


def test_schedule_jitter_and_exhaustion() -> None:
    backoff = Backoff(schedule=(5, 300, 1800), jitter=0.2)
    rng = random.Random(1)
    waits = [backoff.delay(0, rng=rng) for _ in range(200)]
    assert all(w is not None and 4.0 <= w <= 6.0 for w in waits)
    assert len({round(w or 0, 3) for w in waits}) > 100  # jittered, not one value
    assert 240 <= (backoff.delay(1) or 0) <= 360
    assert backoff.delay(3) is None
    assert Backoff(schedule=(5,), jitter=0).delay(0) == 5


def test_retry_after_is_a_lower_bound_and_capped() -> None:
    backoff = Backoff(schedule=(5, 300), jitter=0, retry_after_max=3600)
    assert backoff.delay(0, retry_after=120) == 120
    assert backoff.delay(1, retry_after=1) == 300
    assert backoff.delay(0, retry_after=10**9) == 3600
    assert parse_retry_after("30") == 30
    assert parse_retry_after("Wed, 02 Dec 2026 05:01:00 GMT", now=NOW) == 60
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("result", "channel", "step", "status", "outcome", "disable"),
    [
        (AttemptResult("delivered", 200), "webhook", 2, "delivered", "delivered", False),
        (AttemptResult("rejected", 400), "webhook", 0, "dead", "rejected", False),
        (AttemptResult("gone", 410), "webhook", 0, "pending", "gone", True),
        (AttemptResult("gone"), "slack", 0, "dead", "gone", False),
        (AttemptResult("retry", 500), "webhook", 0, "pending", "retry", False),
        (AttemptResult("retry", 500), "webhook", 2, "dead", "dead", False),
    ],
)
def test_next_state(
    result: AttemptResult, channel: str, step: int, status: str, outcome: str, disable: bool
) -> None:
    backoff = Backoff(schedule=(5, 300), jitter=0)
    nxt = next_state(result, channel=channel, step=step, now=NOW, backoff=backoff)
    assert (nxt.status, nxt.outcome, nxt.disable_endpoint) == (status, outcome, disable)
    if outcome == "retry":
        assert nxt.step == step + 1 and nxt.next_attempt_at == NOW + timedelta(seconds=5)
