"""The handoff trigger (routing rules on the score, tier, stage, framework and account facts)
and the nurture track: nurtured decisions, re-engagement, touches merged into a nurtured lead."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from services.router.domain import handoff, outcomes
from services.router.domain.assignment import RepState
from services.router.domain.decision import Assigned, Disqualified, Nurtured, Unassigned, decide
from services.router.domain.outcomes import Recording
from services.router.domain.writes import Writes
from shared.events import Lead, LeadAssigned, LeadMerged, LeadNurtured
from tests.router.domain.conftest import NOW, PolicyFactory

SQL = {"company_size": 900, "seniority": "vp", "demo_request": True}  # 25 + 10 + 40 = 75
MQL = {"demo_request": True}  # 40
COLD = {"company_size": 900}  # 25


def _nurturing(data: dict[str, Any]) -> None:
    data["rules"] = [
        {"id": "sql-new", "when": {"all": [
            {"field": "stage", "op": "eq", "value": "sql"},
            {"field": "account_matched", "op": "eq", "value": False}]},
         "team": "emea", "strategy": "round_robin"},
        {"id": "cold", "when": {"field": "score", "op": "lt", "value": 40}, "nurture": True},
        {"id": "default", "default": True, "team": "inbound", "strategy": "least_loaded"},
    ]  # fmt: skip
    data["nurture"] = {"reengage_after_days": 30}


def _facts(**facts: object) -> dict[str, object]:
    return {"email": "x@example.com", "email_kind": "business", "country": "DE", **facts}


def _decide(make_policy: PolicyFactory, facts: dict[str, object], **kw: Any) -> Any:
    return decide(
        facts=facts,
        policy=make_policy(kw.pop("change", _nurturing)),
        states=kw.pop("states", {}),
        account_owner_id=kw.pop("account_owner_id", None),
        open_lead=None,
        now=NOW,
        **kw,
    )


def test_rules_see_the_score_stage_and_account_facts(make_policy: PolicyFactory) -> None:
    sql = _decide(make_policy, _facts(**SQL))
    assert isinstance(sql, Assigned) and (sql.rule_id, sql.choice.team_id) == ("sql-new", "emea")
    assert "Rule sql-new matched: stage = sql and not account_matched" in sql.explanation
    # the same SQL from a matched account is not "new": the account rule is not there, default
    known = _decide(make_policy, _facts(**SQL), account_owner_id="rep-anna")
    assert isinstance(known, Assigned) and known.rule_id == "default"
    mql = _decide(make_policy, _facts(**MQL))
    assert isinstance(mql, Assigned) and (mql.rule_id, mql.choice.team_id) == ("default", "inbound")


def test_a_cold_lead_is_nurtured_without_a_rep_or_an_sla(make_policy: PolicyFactory) -> None:
    decision = _decide(make_policy, _facts(**COLD))
    assert isinstance(decision, Nurtured)
    assert decision.rule_id == "cold" and decision.qualification.score == 25
    assert decision.reengage_at == NOW + timedelta(days=30)
    assert decision.choice.rep_id is None and decision.choice.strategy == "nurture"
    assert decision.reason.startswith("nurture: rule cold keeps the lead with marketing")
    assert "Rule cold matched: score < 40" in decision.explanation


def test_the_reengagement_date_skips_company_holidays(make_policy: PolicyFactory) -> None:
    def closed(data: dict[str, Any]) -> None:
        _nurturing(data)
        day = (NOW + timedelta(days=30)).date()
        data["company_holidays"] = [day.isoformat(), (day + timedelta(days=1)).isoformat()]

    decision = _decide(make_policy, _facts(**COLD), change=closed)
    assert isinstance(decision, Nurtured)
    assert decision.reengage_at == NOW + timedelta(days=32)


def test_tier_and_framework_facts(make_policy: PolicyFactory) -> None:
    def change(data: dict[str, Any]) -> None:
        _nurturing(data)
        data["rules"][0] = {
            "id": "bant-complete",
            "when": {"all": [{"field": "framework_complete", "op": "eq", "value": True},
                             {"field": "tier", "op": "in", "value": ["warm", "hot"]}]},
            "team": "emea", "strategy": "round_robin",
        }  # fmt: skip

    answers = {f"answers.{q}": "yes" for q in ("budget", "authority", "need", "timeline")}
    full = _decide(make_policy, _facts(**MQL, **answers), change=change)
    assert isinstance(full, Assigned) and full.rule_id == "bant-complete"
    answers.pop("answers.need")
    partial = _decide(make_policy, _facts(**MQL, **answers), change=change)
    assert isinstance(partial, Assigned) and partial.rule_id == "default"


def test_a_reengaged_lead_skips_nurture_rules_and_goes_to_the_fallback(
    make_policy: PolicyFactory,
) -> None:
    decision = _decide(make_policy, _facts(**COLD), to_sales=True)
    assert isinstance(decision, Assigned)
    assert decision.choice.team_id == "inbound" and decision.rule_id == "default"
    skipped = [t for t in decision.rule_trace if t.rule_id == "cold"]
    assert skipped and not skipped[0].matched and "nurture" in skipped[0].reason

    def nurture_default(data: dict[str, Any]) -> None:
        _nurturing(data)
        data["rules"] = [data["rules"][0], {"id": "default", "default": True, "nurture": True}]

    last = _decide(make_policy, _facts(**COLD), to_sales=True, change=nurture_default)
    assert isinstance(last, Assigned) and last.rule_id == "handoff"
    assert last.choice.team_id == "inbound"  # the fallback team
    assert isinstance(_decide(make_policy, _facts(**COLD), change=nurture_default), Nurtured)


def test_a_reassigned_lead_is_never_sent_back_to_nurture(make_policy: PolicyFactory) -> None:
    """Sales had it (an escalation or a rejection moves it on): nurture rules do not apply."""
    decision = _decide(make_policy, _facts(**COLD), exclude=frozenset({"rep-carl"}))
    assert isinstance(decision, Assigned) and decision.owner_id == "rep-dora"


def test_the_previous_owner_keeps_a_reengaged_lead_while_eligible(
    make_policy: PolicyFactory,
) -> None:
    kept = _decide(make_policy, _facts(**COLD), to_sales=True, keep_owner="rep-ben")
    assert isinstance(kept, Assigned) and kept.owner_id == "rep-ben"
    assert kept.choice.team_id == "emea" and kept.strategy == "previous_owner"
    assert not kept.choice.rr_weights  # nobody's round-robin turn is used up
    full = {"rep-ben": RepState("rep-ben", open_leads=10)}  # capacity 10
    moved = _decide(make_policy, _facts(**COLD), to_sales=True, keep_owner="rep-ben", states=full)
    assert isinstance(moved, Assigned) and moved.owner_id != "rep-ben"
    assert moved.choice.team_id == "inbound"


def _lead(**fields: Any) -> Lead:
    base: dict[str, Any] = {
        "lead_id": "00000000-0000-4000-8000-000000000001",
        "received_at": NOW - timedelta(days=3),
        "source": "website-demo",
        "channel": "form",
        "contact": {"email": "x@example.com", "email_kind": "business", "country": "DE"},
    }
    return Lead.model_validate({**base, **fields})


def test_merge_touch_keeps_the_lead_and_adds_what_is_new() -> None:
    kept = _lead(
        company_size=900,
        engagement={"pricing_page": True, "pages_viewed": ["/a"]},
        utm={"utm_source": "ads"},
        consent={"marketing_opt_in": True, "wording": "ok"},
    ).model_dump(mode="json")
    touch = _lead(
        lead_id="00000000-0000-4000-8000-000000000002",
        received_at=NOW,
        source="chat-widget",
        channel="chat",
        contact={"email": "x@example.com", "title": "VP Sales", "seniority": "vp"},
        engagement={"demo_request": True, "pages_viewed": ["/a", "/b"]},
        answers={"budget": "50k"},
    ).model_dump(mode="json")
    merged = handoff.merge_touch(kept, touch)
    lead = Lead.model_validate(merged)
    assert (lead.lead_id, lead.source, lead.channel) == (kept["lead_id"], "website-demo", "form")
    assert lead.received_at == NOW - timedelta(days=3)
    assert lead.engagement.demo_request and lead.engagement.pricing_page
    assert lead.engagement.pages_viewed == ["/a", "/b"]
    assert lead.contact.seniority == "vp" and lead.contact.country == "DE"
    assert lead.company_size == 900 and lead.answers == {"budget": "50k"}
    assert lead.consent.marketing_opt_in and lead.utm == {"utm_source": "ads"}


def _rec(make_policy: PolicyFactory) -> Recording:
    return Recording(Writes(), make_policy(_nurturing), "leads.assigned", NOW)


def test_nurtured_outcome_writes_no_assignment_and_emits_lead_nurtured(
    make_policy: PolicyFactory,
) -> None:
    rec = _rec(make_policy)
    lead = _lead(company_size=900)
    doc = lead.model_dump(mode="json")
    decision = _decide(make_policy, _facts(**COLD))
    recorded = outcomes.received(
        rec, lead=lead, doc=doc, decision=decision, domain=None, account=None,
        open_team=None, earlier=[],
    )  # fmt: skip
    assert recorded.outcome == "nurtured" and recorded.scored
    w = rec.writes
    assert [r["status"] for r in w.leads] == ["nurtured"] and w.leads[0]["owner_id"] is None
    assert w.leads[0]["open_until"] == decision.reengage_at + timedelta(days=30)
    assert not w.assignments and not w.open_deltas and not w.weights
    (event_id, topic, key, payload), = w.outbox  # fmt: skip
    assert (event_id, topic, key) == (
        handoff.nurtured_id(lead.lead_id),
        "leads.assigned",
        lead.lead_id,
    )
    event = orjson.loads(payload)
    assert event["type"] == "lead.nurtured"
    data = LeadNurtured.model_validate(event["data"])
    assert data.reengage_at == NOW + timedelta(days=30) and data.routing.strategy == "nurture"
    assert data.score == 25 and data.stage == "lead"
    assert [d[1] for d in w.decisions] == ["nurtured"]


def test_a_touch_that_crosses_the_threshold_hands_the_lead_to_sales(
    make_policy: PolicyFactory,
) -> None:
    rec = _rec(make_policy)
    kept = _lead(company_size=900)
    touch = _lead(lead_id="00000000-0000-4000-8000-000000000002", received_at=NOW,
                  engagement={"demo_request": True},
                  contact={"email": "x@example.com", "seniority": "vp"})  # fmt: skip
    doc = handoff.merge_touch(kept.model_dump(mode="json"), touch.model_dump(mode="json"))
    merged = Lead.model_validate(doc)
    decision = _decide(make_policy, _facts(**SQL))
    assert isinstance(decision, Assigned)
    touched = handoff.touch(
        rec, touch=touch, touch_doc=touch.model_dump(mode="json"), kept=merged, kept_doc=doc,
        decision=decision, domain="example.com", account=None, earlier=[], matched_on="phone",
    )  # fmt: skip
    assert [c.outcome for c in touched.counted] == ["merged", "handoff"]
    row = touched.row
    assert (row["status"], row["owner_id"], row["assignment_seq"]) == (
        "assigned",
        decision.owner_id,
        1,
    )
    assert row["score"] == 75 and row["closed_at"] is None
    w = rec.writes
    assert [r["lead_id"] for r in w.leads] == [touch.lead_id]  # the touch; the kept row is updated
    assert [a["lead_id"] for a in w.assignments] == [kept.lead_id]
    events = [orjson.loads(o[3]) for o in w.outbox]
    assert [e["type"] for e in events] == ["lead.merged", "lead.assigned"]
    merge = LeadMerged.model_validate(events[0]["data"])
    assert merge.matched_on == "phone" and merge.into_lead_id == kept.lead_id
    assert orjson.loads(w.decisions[0][4])["matched_on"] == "phone"  # the trace says it too
    assigned = LeadAssigned.model_validate(events[1]["data"])
    assert assigned.reason == "handoff: score 75 (sql) reached sales on a new touch (rule sql-new)"
    assert assigned.assignment_seq == 1 and assigned.lead.lead_id == kept.lead_id
    assert [d[1] for d in w.decisions] == ["merged", "handoff"]
    assert w.accounts == [("example.com", decision.owner_id, kept.lead_id)]


@pytest.mark.parametrize("facts", [COLD, {**COLD, "company_domain": "rival.com"}])
def test_a_touch_below_the_threshold_or_disqualifying_changes_no_owner(
    make_policy: PolicyFactory, facts: dict[str, object]
) -> None:
    rec = _rec(make_policy)
    kept = _lead(company_size=900)
    decision = _decide(make_policy, _facts(**facts))
    assert isinstance(decision, Nurtured | Disqualified | Unassigned)
    touch = _lead(lead_id="00000000-0000-4000-8000-000000000002")
    doc = kept.model_dump(mode="json")
    touched = handoff.touch(
        rec, touch=touch, touch_doc=touch.model_dump(mode="json"), kept=kept, kept_doc=doc,
        decision=decision, domain=None, account=None, earlier=[], matched_on="email",
    )  # fmt: skip
    assert not rec.writes.assignments and not rec.writes.open_deltas
    assert [r["lead_id"] for r in rec.writes.leads] == [touch.lead_id]
    expected = "nurtured" if isinstance(decision, Nurtured) else "disqualified"
    assert touched.row["status"] == expected
