"""The whole decision: merge before disqualify before rules, accounts, unassigned, no PII."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.router.domain.assignment import RepState
from services.router.domain.decision import (
    Assigned,
    Disqualified,
    Merged,
    OpenLead,
    Unassigned,
    decide,
)
from shared.policy import Policy

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # Wednesday, 11:00 in Berlin

PERSONAL = {
    "email": "joanna.secret@acme.com",
    "phone": "+4930123456789",
    "first_name": "Joanna",
    "last_name": "Verysecretname",
}


def lead(**facts: object) -> dict[str, object]:
    return {**PERSONAL, "email_kind": "business", **facts}


def test_merge_comes_first_even_for_a_disqualified_lead(policy: Policy) -> None:
    decision = decide(
        facts=lead(company_domain="rival.com"),
        policy=policy,
        states={},
        account_owner_id=None,
        open_lead=OpenLead("lead-1", "rep-ben", "emea"),
        now=NOW,
    )
    assert decision == Merged("lead-1", "rep-ben", "same contact has open lead lead-1")
    assert decision.explanation == ("Merged into lead-1: same contact has open lead lead-1",)


def test_disqualified(policy: Policy) -> None:
    decision = decide(
        facts=lead(company_domain="rival.com", company_size=900, country="DE"),
        policy=policy,
        states={},
        account_owner_id=None,
        open_lead=None,
        now=NOW,
    )
    assert isinstance(decision, Disqualified)
    assert (decision.rule_id, decision.reason) == ("competitor", "competitor")
    assert decision.qualification.score == 25
    assert decision.explanation[-1] == (
        "Disqualified by competitor (competitor): company_domain in [rival.com]"
    )


def test_assigned_with_sla_and_explanation(policy: Policy) -> None:
    decision = decide(
        facts=lead(company_size=900, country="DE", demo_request=True),
        policy=policy,
        states={},
        account_owner_id=None,
        open_lead=None,
        now=NOW,
    )
    assert isinstance(decision, Assigned)
    assert (decision.rule_id, decision.strategy, decision.owner_id) == (
        "enterprise-emea",
        "round_robin",
        "rep-anna",
    )
    assert (decision.qualification.score, decision.tier) == (65, "warm")
    assert (decision.window_seconds, decision.clock) == (14_400, "business")
    assert decision.due_at == datetime(2026, 12, 2, 14, 0, tzinfo=UTC)  # 15:00 Berlin
    assert [t.rule_id for t in decision.rule_trace] == ["accounts", "enterprise-emea"]
    assert decision.explanation == (
        "Score 65 (fit 25, intent 40): tier warm, stage mql",
        "+25 enterprise-size (fit): company_size ≥ 500",
        "+40 demo (intent): demo_request",
        "Not counted: senior, pricing",
        "BANT: 0/4 answered (missing: budget, authority, need, timeline)",
        "Rule accounts did not match: company_domain is present",
        "Rule enterprise-emea matched: company_size ≥ 500 and country in [DE, FR]",
        "Owner rep-anna (team emea): round_robin in team emea picked rep-anna",
        "SLA warm: 14400 s on the business clock, due 2026-12-02T14:00:00+00:00",
    )


def test_explanation_and_reasons_carry_no_personal_data(policy: Policy) -> None:
    states = {"rep-anna": RepState("rep-anna", 10)}  # at capacity: a skipped line too
    decisions = [
        decide(
            facts=lead(company_domain="acme.com", **extra),
            policy=policy,
            states=states,
            account_owner_id="rep-anna",
            open_lead=None,
            now=NOW,
        )
        for extra in ({}, {"email": "joanna.secret@school.edu"})
    ]
    assert isinstance(decisions[0], Assigned)
    assert isinstance(decisions[1], Disqualified)
    assert any(
        line.startswith("Skipped rep-anna: at capacity") for line in decisions[0].explanation
    )
    for decision in decisions:
        text = " ".join(decision.explanation) + repr(decision)
        for value in (*PERSONAL.values(), "joanna", "Joanna"):
            assert value not in text


def test_account_owner_gets_the_business_lead(policy: Policy) -> None:
    states = {"rep-anna": RepState("rep-anna", 0, -5)}  # round robin would pick rep-ben
    decision = decide(
        facts=lead(company_domain="acme.com"),
        policy=policy,
        states=states,
        account_owner_id="rep-anna",
        open_lead=None,
        now=NOW,
    )
    assert isinstance(decision, Assigned)
    assert (decision.owner_id, decision.choice.strategy) == ("rep-anna", "account_owner")
    assert (decision.tier, decision.clock, decision.window_seconds) == ("cold", "wall", 86_400)
    assert decision.due_at == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_free_mail_never_matches_an_account(policy: Policy) -> None:
    states = {"rep-anna": RepState("rep-anna", 0, -5)}
    decision = decide(
        facts=lead(company_domain="gmail.com", email_kind="free"),
        policy=policy,
        states=states,
        account_owner_id="rep-anna",  # a caller mistake the domain guards against
        open_lead=None,
        now=NOW,
    )
    assert isinstance(decision, Assigned)
    assert (decision.owner_id, decision.choice.strategy) == ("rep-ben", "round_robin")
    assert decision.choice.reason.startswith("no matching account")


def test_unassigned_when_nobody_is_eligible(make_policy: Callable[..., Policy]) -> None:
    def change(data: dict[str, Any]) -> None:
        for team in data["teams"]:
            for rep in team["reps"]:
                rep["active"] = False

    decision = decide(
        facts=lead(),
        policy=make_policy(change),
        states={},
        account_owner_id=None,
        open_lead=None,
        now=NOW,
    )
    assert isinstance(decision, Unassigned)
    assert decision.rule_id == "default"
    assert decision.reason.endswith("no eligible rep")
    assert decision.explanation[-1] == f"Unassigned: {decision.reason}"
    assert [c.reason for c in decision.choice.considered] == ["inactive", "inactive"]


def test_same_inputs_same_decision(policy: Policy) -> None:
    def run() -> object:
        return decide(
            facts=lead(company_size=900, country="FR", pricing_page=True),
            policy=policy,
            states={"rep-anna": RepState("rep-anna", 3, 1), "rep-ben": RepState("rep-ben", 1, -1)},
            account_owner_id=None,
            open_lead=None,
            now=NOW,
        )

    assert run() == run()


def test_reassignment_excludes_previous_owner(policy: Policy) -> None:
    decision = decide(
        facts=lead(company_size=900, country="DE"),
        policy=policy,
        states={},
        account_owner_id=None,
        open_lead=None,
        now=NOW,
        exclude=frozenset({"rep-anna"}),
    )
    assert isinstance(decision, Assigned)
    assert decision.owner_id == "rep-ben"
    assert "Skipped rep-anna: previous owner" in decision.explanation


def test_rules_and_scoring_can_test_the_derived_account_owner(make_policy: Any) -> None:
    """`account_owner` is a fact only when an account matched a business domain."""

    def edit(data: dict[str, Any]) -> None:
        data["rules"][0]["when"] = {"field": "account_owner", "op": "exists", "value": True}
        data["qualification"]["rules"].append(
            {"id": "customer", "category": "fit", "points": 7,
             "when": {"field": "account_owner", "op": "exists", "value": True}}
        )  # fmt: skip

    policy = make_policy(edit)
    known = decide(
        facts=lead(company_domain="newco.example"),
        policy=policy,
        states={},
        account_owner_id="rep-ben",
        open_lead=None,
        now=NOW,
    )
    assert isinstance(known, Assigned)
    assert (known.rule_id, known.owner_id, known.choice.strategy) == (
        "accounts",
        "rep-ben",
        "account_owner",
    )
    assert known.qualification.score == 7
    for facts, owner in ((lead(company_domain="newco.example"), None),
                         (lead(company_domain="gmail.com", email_kind="free"), "rep-ben")):  # fmt: skip
        other = decide(
            facts=facts, policy=policy, states={}, account_owner_id=owner, open_lead=None, now=NOW
        )
        assert isinstance(other, Assigned)
        assert other.rule_id != "accounts" and other.qualification.score == 0
