"""Decision to outcome: the rows, events, trace and metric labels each outcome records (pure)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.router.domain import outcomes
from services.router.domain.accounts import AccountMatch, business_domain, match_account
from services.router.domain.decision import Assigned, OpenLead, decide
from services.router.domain.facts import flatten_lead
from services.router.domain.outcomes import Recorded, Recording
from services.router.domain.writes import Writes
from shared.events import Lead, derived_id
from shared.policy import Policy

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # Wednesday, 11:00 in Berlin
TOPIC = "leads.assigned"
LEAD_ID = "00000000-0000-4000-8000-00000000000a"


def _lead(**contact: Any) -> Lead:
    return Lead.model_validate(
        {
            "lead_id": LEAD_ID,
            "received_at": NOW - timedelta(seconds=5),
            "source": "web",
            "channel": "form",
            "contact": {"email": "joanna@corp.de", "email_kind": "business", **contact},
            "company_size": 900,
        }
    )


def _record(
    policy: Policy,
    lead: Lead,
    *,
    open_lead: OpenLead | None = None,
    learned_owner: str | None = None,
) -> tuple[Writes, Recorded]:
    doc = lead.model_dump(mode="json")
    domain = business_domain(lead)
    account = match_account(policy, domain, learned_owner)
    decision = decide(
        facts=flatten_lead(doc),
        policy=policy,
        states={},
        account_owner_id=account.owner_id if account else None,
        open_lead=open_lead,
        now=NOW,
    )
    writes = Writes()
    recorded = outcomes.received(
        Recording(writes=writes, policy=policy, topic=TOPIC, now=NOW),
        lead=lead,
        doc=doc,
        decision=decision,
        domain=domain,
        account=account,
        open_team=open_lead.team_id if open_lead else None,
        earlier=["earlier-1"],
    )
    return writes, recorded


def _events(writes: Writes) -> list[dict[str, Any]]:
    out = []
    for event_id, topic, key, payload in writes.outbox:
        event = orjson.loads(payload)
        assert (event["id"], topic, key, event["subject"]) == (event_id, TOPIC, LEAD_ID, LEAD_ID)
        out.append(event)
    return out


def _traces(writes: Writes) -> list[tuple[str, dict[str, Any]]]:
    return [(kind, orjson.loads(trace)) for _, kind, _, _, trace in writes.decisions]


def test_a_first_assignment_stores_lead_account_assignment_event_and_trace(
    policy: Policy,
) -> None:
    writes, recorded = _record(policy, _lead(company_domain="corp.de"), learned_owner=None)
    [row] = writes.leads
    assert (row["status"], row["assignment_seq"], row["owner_id"]) == ("assigned", 1, "rep-anna")
    assert row["open_until"] == NOW + timedelta(days=policy.dedupe.open_lead_days)
    assert row["policy_version"] == policy.version_id and row["score"] is not None
    assert writes.accounts == [("corp.de", "rep-anna", LEAD_ID)]  # the domain's owner learned
    [assignment] = writes.assignments
    assert (assignment["seq"], assignment["previous_owner_id"]) == (1, None)
    assert writes.open_deltas == {"rep-anna": 1}
    [event] = _events(writes)
    assert event["type"] == "lead.assigned"
    assert event["id"] == derived_id(LEAD_ID, "assigned", 1)
    assert event["data"]["earlier_leads"] == ["earlier-1"]
    assert event["data"]["policy_version"] == policy.version_id
    [(kind, trace)] = _traces(writes)
    assert (kind, trace["owner_id"], trace["seq"]) == ("assigned", "rep-anna", 1)
    assert recorded == Recorded("assigned", "emea", row["tier"], scored=True)


def test_a_reassignment_is_counted_but_not_scored_again(policy: Policy) -> None:
    lead = _lead(company_domain="corp.de")
    decision = decide(
        facts=flatten_lead(lead.model_dump(mode="json")),
        policy=policy,
        states={},
        account_owner_id=None,
        open_lead=None,
        now=NOW,
        exclude=frozenset({"rep-anna"}),
    )
    assert isinstance(decision, Assigned)
    writes = Writes()
    recorded = outcomes.assignment(
        Recording(writes=writes, policy=policy, topic=TOPIC, now=NOW),
        lead=lead,
        decision=decision,
        seq=2,
        account=AccountMatch("corp.de", None, "rep-anna", "history"),
        earlier=[],
        previous="rep-anna",
        reason="SLA escalation level 3",
    )
    assert writes.leads == [] and writes.accounts == []  # the caller updates the lead row
    [event] = _events(writes)
    assert event["id"] == derived_id(LEAD_ID, "assigned", 2)
    assert event["data"]["previous_owner"]["id"] == "rep-anna"
    assert event["data"]["account"]["owner_id"] == "rep-anna"
    [(kind, trace)] = _traces(writes)
    assert (kind, trace["previous_owner_id"]) == ("reassigned", "rep-anna")
    assert recorded == Recorded(
        "reassigned", decision.choice.team_id or "", decision.qualification.tier, scored=False
    )


def test_a_merge_publishes_the_touch_and_counts_the_open_leads_team(policy: Policy) -> None:
    open_lead = OpenLead("lead-1", "rep-ben", "emea")
    writes, recorded = _record(policy, _lead(), open_lead=open_lead)
    [row] = writes.leads
    assert (row["status"], row["merged_into"], row["owner_id"]) == ("merged", "lead-1", "rep-ben")
    assert row["score"] is None and writes.assignments == [] and writes.open_deltas == {}
    [event] = _events(writes)
    assert (event["type"], event["id"]) == ("lead.merged", derived_id(LEAD_ID, "merged"))
    assert [k for k, _ in _traces(writes)] == ["merged"]
    assert recorded == Recorded("merged", "emea", "none", scored=False)


def test_a_disqualified_lead_is_scored_with_no_team(policy: Policy) -> None:
    writes, recorded = _record(policy, _lead(company_domain="rival.com"))
    [row] = writes.leads
    assert row["status"] == "disqualified" and writes.assignments == []
    [event] = _events(writes)
    assert (event["type"], event["data"]["rule_id"]) == ("lead.disqualified", "competitor")
    assert event["id"] == derived_id(LEAD_ID, "disqualified")
    assert recorded == Recorded("disqualified", "none", row["tier"], scored=True)


def test_an_unassigned_lead_is_parked_announced_and_counted_for_its_rules_team(
    make_policy: Callable[..., Policy],
) -> None:
    def nobody(data: dict[str, Any]) -> None:
        for team in data["teams"]:
            for rep in team["reps"]:
                rep["active"] = False

    policy = make_policy(nobody)
    writes, recorded = _record(policy, _lead(country="DE"))
    [row] = writes.leads
    assert row["status"] == "unassigned" and row["owner_id"] is None
    assert writes.assignments == []
    [(_, _, key, payload)] = writes.outbox  # lead.parked: the manager hears of it
    assert key == row["lead_id"] and b"lead.parked" in payload
    [(kind, trace)] = _traces(writes)
    assert kind == "unassigned" and trace["considered"]
    assert recorded == Recorded("unassigned", "emea", row["tier"], scored=True)


def test_a_failed_reassignment_leaves_only_its_trace(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy()
    lead = _lead(country="DE")
    decision = decide(
        facts=flatten_lead(lead.model_dump(mode="json")),
        policy=policy,
        states={},
        account_owner_id=None,
        open_lead=None,
        now=NOW,
        exclude=frozenset({"rep-anna", "rep-ben", "rep-carl", "rep-dora"}),
    )
    writes = Writes()
    recorded = outcomes.reassign_failed(
        Recording(writes=writes, policy=policy, topic=TOPIC, now=NOW),
        lead_id=LEAD_ID,
        decision=decision,
        reason="rejected by owner",
        owner_id="rep-anna",
        team_id=None,
        seq=1,
    )
    assert writes.leads == [] and writes.assignments == [] and writes.outbox == []
    [(kind, trace)] = _traces(writes)
    assert (kind, trace["owner_id"], trace["seq"]) == ("reassign_failed", "rep-anna", 1)
    assert recorded == Recorded("reassign_failed", "none", "none", scored=False)
