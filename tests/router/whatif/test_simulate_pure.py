"""The simulator, period parsing and threshold search as pure code (no database)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from ops.calibration.queries import OutcomeRow
from ops.calibration.report import (
    NO_REASON,
    outcome_of,
    reason_key,
    suggest_threshold,
)
from services.router.domain.accounts import business_domain as service_business_domain
from services.router.domain.accounts import stored_business_domain as business_domain
from services.router.whatif.history import HistoricLead, History, OpenLead
from services.router.whatif.run import InvalidSimulation, parse_when, period
from services.router.whatif.simulate import render_text, simulate
from shared.events import Lead
from tests.router.whatif.synthetic import YEAR_END, YEAR_START, generate, policy_data, to_policy


def _history(n: int, tag: str, *, open_at_start: tuple[OpenLead, ...] = ()) -> History:
    leads = tuple(
        HistoricLead(
            lead_id=s.lead_id,
            received_at=s.received_at,
            closed_at=s.closed_at,
            status="assigned",
            email=s.lead["contact"]["email"],
            phone=None,
            lead=s.lead,
            score=None,
            tier=None,
            stage=None,
            owner_id=None,
            team_id=None,
            rule_id=None,
            fallback_used=False,
            capacity_skip=False,
            reassigned=False,
        )
        for s in generate(n, tag=tag, seed=5)
    )
    return History(YEAR_START, YEAR_END, leads, open_at_start, {})


@pytest.mark.parametrize(
    "contact",
    [
        {"email": "a@acme.com", "company_domain": "Acme.COM ", "email_kind": "business"},
        {"email": "a@gmail.com", "company_domain": "gmail.com", "email_kind": "free"},
        {"email": "a@x.io", "company_domain": "x.io", "email_kind": "disposable"},
        {"email": "a@odd.example", "company_domain": "odd.example", "email_kind": None},
        {"email": None, "phone": "+4915112345678", "company_domain": "corp.de"},
        {"email": "a@corp.de", "company_domain": None, "email_kind": "business"},
    ],
)
def test_business_domain_matches_the_router_service(contact: dict[str, object]) -> None:
    lead = Lead.model_validate(
        {
            "lead_id": "00000000-0000-4000-8000-000000000001",
            "received_at": YEAR_START,
            "source": "web",
            "channel": "form",
            "contact": contact,
        }
    )
    stored = lead.model_dump(mode="json")["contact"]
    assert business_domain(stored) == service_business_domain(lead)


def test_replay_is_deterministic_and_a_changed_policy_moves_leads() -> None:
    tag = "pure1"
    data = policy_data(tag)
    policy = to_policy(data)
    history = _history(400, tag)
    one, two = simulate(history, policy), simulate(history, policy)
    assert one.as_dict() == two.as_dict()
    assert one.outcomes["assigned"].simulated + one.outcomes["merged"].simulated + one.outcomes[
        "disqualified"
    ].simulated == len(history.leads)
    assert one.outcomes["merged"].simulated > 0
    assert sum(p.simulated for p in one.teams.values()) == one.outcomes["assigned"].simulated
    # nothing really happened in this history, so every simulated owner is a change
    assert len(one.owner_changes) == len(history.leads)

    data["rules"] = [r for r in data["rules"] if r["id"] != "smb"]
    fewer = simulate(history, to_policy(data))
    assert "smb" not in fewer.teams or fewer.teams["smb"].simulated == 0
    assert fewer.teams["desk"].simulated > one.teams["desk"].simulated
    assert "Leads per rep" in render_text(one) and "more (--json lists all)" in render_text(one)


def test_open_leads_at_the_start_count_against_capacity_until_they_close() -> None:
    tag = "pure2"
    policy = to_policy(policy_data(tag))
    ent_a = f"ent-a-{tag}"
    before = YEAR_START - timedelta(days=1)
    held = tuple(
        OpenLead(f"00000000-0000-4000-8000-{i:012d}", before, None, None, ent_a, "ent", None, None)
        for i in range(6)  # ent-a's whole capacity, never closing
    )
    history = _history(400, tag)
    free = simulate(history, policy)
    full = simulate(History(history.since, history.until, history.leads, held, {}), policy)
    assert free.reps[ent_a].leads.simulated > 0
    assert full.reps[ent_a].leads.simulated == 0
    assert full.reps[ent_a].capacity_skips > free.reps[ent_a].capacity_skips
    closing = tuple(
        OpenLead(o.lead_id, o.received_at, None, None, o.owner_id, o.team_id, None, YEAR_START)
        for o in held
    )
    freed = simulate(History(history.since, history.until, history.leads, closing, {}), policy)
    assert freed.reps[ent_a].leads == free.reps[ent_a].leads


def test_period_parsing() -> None:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert parse_when("30d", now=now) == now - timedelta(days=30)
    assert parse_when("12h", now=now) == now - timedelta(hours=12)
    assert parse_when("2w", now=now) == now - timedelta(weeks=2)
    assert parse_when("2026-01-01", now=now) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_when("2026-01-01T00:00:00+02:00", now=now).utcoffset() == timedelta(hours=2)
    assert period("7d", None, now=now) == (now - timedelta(days=7), now)
    with pytest.raises(InvalidSimulation):
        parse_when("last tuesday", now=now)
    with pytest.raises(InvalidSimulation):
        period("1d", "2d", now=now)


def test_threshold_search() -> None:
    scored = [(10, False), (20, True), (30, False), (40, True), (50, True), (60, True)]
    s = suggest_threshold(scored)
    assert s is not None and s.threshold == 20 and s.conversions_kept == 4
    assert (s.handoffs_now, s.handoffs_at_threshold, s.wasted_now, s.wasted_at_threshold) == (
        6,
        5,
        2,
        1,
    )
    loose = suggest_threshold(scored, keep=0.75)  # 3 of 4 conversions are enough
    assert loose is not None and loose.threshold == 40 and loose.conversions_kept == 3
    assert suggest_threshold([(10, False)]) is None
    with pytest.raises(ValueError):
        suggest_threshold(scored, keep=0)


def test_outcomes_and_reasons() -> None:
    def row(status: str, owner: str | None, *types: str) -> OutcomeRow:
        return OutcomeRow("id", "web", status, 1, "lead", "cold", {}, None, owner, types, ())

    assert outcome_of(row("merged", None)) == "merged"
    assert outcome_of(row("disqualified", None)) == "screened_out"
    assert outcome_of(row("unassigned", None)) == "unassigned"
    assert outcome_of(row("assigned", "r", "rejected", "converted")) == "converted"
    assert outcome_of(row("assigned", "r", "contacted", "rejected")) == "rejected"
    assert outcome_of(row("assigned", "r", "contacted")) == "open"
    assert reason_key("  No   Budget. ") == "no budget"
    assert reason_key("call bob@corp.com") == "call [email]"
    assert reason_key("") == NO_REASON


def test_nurtured_leads_have_their_own_outcome_and_take_the_contacts_touches() -> None:
    """A nurture rule on everything: each lead is nurtured (not "unassigned"), no rep gets a
    lead or a load, and a later touch of the same contact merges into the nurtured lead."""
    tag = "pure3"
    data = policy_data(tag)
    data["rules"].insert(0, {"id": "all-nurtured", "when": {"field": "score", "op": "gte",
                                                            "value": 0}, "nurture": True})  # fmt: skip
    data["nurture"] = {"reengage_after_days": 30}
    history = _history(200, tag)
    report = simulate(history, to_policy(data))
    out = {k: p.simulated for k, p in report.outcomes.items()}
    assert out["unassigned"] == 0 and out["assigned"] == 0
    assert out["nurtured"] > 0 and out["merged"] > 0
    assert out["nurtured"] + out["merged"] + out["disqualified"] == len(history.leads)
    assert all(r.leads.simulated == 0 for r in report.reps.values())
    assert "nurtured" in render_text(report)
    first = dataclasses.replace(history.leads[0], first_kind="nurtured", owner_id=None)
    assert first.outcome == "nurtured"  # what really happened first, whatever came later
