"""Replay stored leads through a proposed policy, in memory, and compare with what happened.

Pure: ``simulate(history, policy)`` reads nothing and writes nothing. It calls the router's own
decision function (``domain.decision.decide``) for every lead in ``received_at`` order, with
``now = received_at``, and keeps in memory what the router keeps in PostgreSQL:

* rep state (open leads, smooth weighted round-robin current weights), starting from the leads
  that were open when the period began and zero weights;
* the contacts' identity keys (``router.contact_keys``: each lead's e-mail matching key and
  phone, pointing at the lead it ended in), so a returning contact is merged by the router's
  own rule (``domain.matching.choose``) into a lead assigned, not closed, ``open_until`` not
  passed;
* the accounts learned from first assignments (the ``router.accounts`` rows ``store.write``
  inserts), on top of those learned before the period and the policy's own accounts, matched
  by the router's own ``domain.accounts.match_account``.

A lead closes in the simulation when it really closed (its stored ``closed_at``), whoever owns it
in the simulation; escalation reassignments are not replayed (they depend on reps' behaviour),
the count of really reassigned leads is reported instead. The same history and policy always
give the same report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.router.domain.accounts import match_account, stored_business_domain
from services.router.domain.assignment import RepState
from services.router.domain.decision import (
    Assigned,
    Disqualified,
    Merged,
    Nurtured,
    OpenLead,
    decide,
)
from services.router.domain.facts import flatten_lead
from services.router.domain.matching import (
    PHONE,
    Candidate,
    choose,
    email_key,
    fold_name,
    phone_key,
)
from services.router.whatif.history import HistoricLead, History
from shared.policy import Policy

OUTCOMES = ("assigned", "merged", "disqualified", "unassigned", "nurtured")


@dataclass(frozen=True, slots=True)
class Pair:
    actual: int = 0
    simulated: int = 0

    @property
    def delta(self) -> int:
        return self.simulated - self.actual

    def as_dict(self) -> dict[str, int]:
        return {"actual": self.actual, "simulated": self.simulated, "delta": self.delta}


@dataclass(frozen=True, slots=True)
class RepLoad:
    rep_id: str
    team_id: str | None  # the rep's team in the proposed policy (None: not in it)
    leads: Pair
    capacity_skips: int  # times the simulation skipped this rep because they were full
    business_hours: float | None  # the rep's working hours in the period (proposed policy)

    def per_business_hour(self, n: int) -> float | None:
        if not self.business_hours:
            return None
        return round(n / self.business_hours, 4)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rep_id": self.rep_id,
            "team_id": self.team_id,
            **self.leads.as_dict(),
            "capacity_skips": self.capacity_skips,
            "business_hours": self.business_hours,
            "actual_per_business_hour": self.per_business_hour(self.leads.actual),
            "simulated_per_business_hour": self.per_business_hour(self.leads.simulated),
        }


@dataclass(frozen=True, slots=True)
class OwnerChange:
    lead_id: str
    received_at: datetime
    actual_outcome: str
    actual_owner: str | None
    actual_team: str | None
    simulated_outcome: str
    simulated_owner: str | None
    simulated_team: str | None
    simulated_rule: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "lead_id": self.lead_id,
            "received_at": self.received_at.isoformat(),
            "actual": {
                "outcome": self.actual_outcome,
                "owner": self.actual_owner,
                "team": self.actual_team,
            },
            "simulated": {
                "outcome": self.simulated_outcome,
                "owner": self.simulated_owner,
                "team": self.simulated_team,
                "rule": self.simulated_rule,
            },
        }


@dataclass(frozen=True, slots=True)
class SimulationReport:
    since: datetime
    until: datetime
    policy_label: str
    policy_version: str
    leads: int
    outcomes: dict[str, Pair]
    teams: dict[str, Pair]
    reps: dict[str, RepLoad]
    capacity_overflows: Pair  # leads where at least one rep was skipped for being full
    fallback: Pair  # leads that went to the fallback team
    tiers: dict[str, Pair]
    stages: dict[str, Pair]
    reassigned_actual: int
    owner_changes: tuple[OwnerChange, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": {"since": self.since.isoformat(), "until": self.until.isoformat()},
            "policy": {"label": self.policy_label, "version": self.policy_version},
            "leads": self.leads,
            "outcomes": {k: v.as_dict() for k, v in self.outcomes.items()},
            "teams": {k: v.as_dict() for k, v in self.teams.items()},
            "reps": {k: v.as_dict() for k, v in self.reps.items()},
            "capacity_overflows": self.capacity_overflows.as_dict(),
            "fallback": self.fallback.as_dict(),
            "tiers": {k: v.as_dict() for k, v in self.tiers.items()},
            "stages": {k: v.as_dict() for k, v in self.stages.items()},
            "reassigned_actual": self.reassigned_actual,
            "owner_changes": [c.as_dict() for c in self.owner_changes],
        }


@dataclass(slots=True)
class _Open:
    lead_id: str
    received_at: datetime
    owner_id: str | None  # None: nurtured (open for the contact's touches, no load)
    team_id: str | None
    open_until: datetime | None
    closed: bool = False


@dataclass(frozen=True, slots=True)
class _Result:
    outcome: str
    owner_id: str | None = None
    team_id: str | None = None
    rule_id: str | None = None
    tier: str | None = None
    stage: str | None = None
    fallback: bool = False
    capacity_skips: tuple[str, ...] = ()


@dataclass
class _Replay:
    """The router's PostgreSQL state, kept in dictionaries for the length of one replay."""

    policy: Policy
    states: dict[str, RepState] = field(default_factory=dict)
    # identity key -> (the lead it points at, the e-mail key and folded name given with it)
    keys: dict[str, list[tuple[str, str | None, str | None]]] = field(default_factory=dict)
    by_id: dict[str, _Open] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)

    def add_open(self, item: _Open, email: str | None, phone: str | None) -> None:
        self.by_id[item.lead_id] = item
        self.add_keys(item.lead_id, email, phone, None)
        self.bump(item.owner_id, +1)

    def add_keys(self, target: str, email: str | None, phone: str | None, name: str | None) -> None:
        """What `store.write` stores in ``router.contact_keys`` for a lead ending in ``target``."""
        ekey = email_key(email)
        for key in (ekey, phone_key(phone)):
            if key:
                self.keys.setdefault(key, []).append((target, ekey, name))

    def bump(self, rep_id: str | None, delta: int) -> None:
        if rep_id is None:
            return  # a nurtured lead counts against nobody
        old = self.states.get(rep_id) or RepState(rep_id)
        self.states[rep_id] = RepState(
            rep_id, max(old.open_leads + delta, 0), old.rr_current_weight
        )

    def close(self, lead_id: str) -> None:
        item = self.by_id.get(lead_id)
        if item is not None and not item.closed:
            item.closed = True
            self.bump(item.owner_id, -1)

    def open_lead(
        self, email: str | None, phone: str | None, name: str | None, now: datetime
    ) -> _Open | None:
        """Like ``store.decision_inputs``: the open lead ``domain.matching.choose`` picks."""
        cands = []
        for via, key in (("email", email_key(email)), (PHONE, phone_key(phone))):
            grouped: dict[str, tuple[set[str], set[str]]] = {}
            for target, ekey, given in self.keys.get(key or "", ()):
                emails, names = grouped.setdefault(target, (set(), set()))
                emails.update([ekey] if ekey else [])
                names.update([given] if given else [])
            for target, (emails, names) in grouped.items():
                item = self.by_id.get(target)
                is_open = bool(
                    item and not item.closed and item.open_until and item.open_until > now
                )
                at = item.received_at.timestamp() if item else 0.0
                cands.append(
                    Candidate(via, target, frozenset(emails), frozenset(names), is_open, at)
                )
        found = choose(cands, email=email_key(email), name=name)
        return self.by_id[found.candidate.lead_id] if found else None

    def account_owner(self, domain: str | None) -> str | None:
        """The matched account's owner: policy accounts first, then those learned."""
        match = match_account(self.policy, domain, self.accounts.get(domain) if domain else None)
        return match.owner_id if match else None

    def route(self, lead: HistoricLead) -> _Result:
        now = lead.received_at
        contact = lead.lead.get("contact") or {}
        domain = stored_business_domain(contact)
        name = fold_name(contact.get("first_name"), contact.get("last_name"))
        found = self.open_lead(lead.email, lead.phone, name, now)
        open_ref = OpenLead(found.lead_id, found.owner_id, found.team_id) if found else None
        decision = decide(
            facts=flatten_lead(lead.lead),
            policy=self.policy,
            states=self.states,
            account_owner_id=self.account_owner(domain),
            open_lead=open_ref,
            now=now,
        )
        if isinstance(decision, Merged):
            self.add_keys(decision.into_lead_id, lead.email, lead.phone, name)
            return _Result("merged")
        self.add_keys(lead.lead_id, lead.email, lead.phone, name)
        q = decision.qualification
        if isinstance(decision, Disqualified):
            return _Result("disqualified", rule_id=decision.rule_id, tier=q.tier, stage=q.stage)
        if isinstance(decision, Nurtured):  # kept with marketing: open for the next touches
            open_until = decision.reengage_at + timedelta(days=self.policy.dedupe.open_lead_days)
            self.by_id[lead.lead_id] = _Open(lead.lead_id, now, None, None, open_until)
            return _Result("nurtured", rule_id=decision.rule_id, tier=q.tier, stage=q.stage)
        skips = tuple(
            c.rep_id
            for c in decision.choice.considered
            if not c.eligible and c.reason.startswith("at capacity")
        )
        if not isinstance(decision, Assigned):
            return _Result(
                "unassigned",
                rule_id=decision.rule_id,
                tier=q.tier,
                stage=q.stage,
                fallback=True,
                capacity_skips=skips,
            )
        owner, team = decision.owner_id, decision.choice.team_id
        for rep_id, weight in decision.choice.rr_weights.items():
            old = self.states.get(rep_id) or RepState(rep_id)
            self.states[rep_id] = RepState(rep_id, old.open_leads, weight)
        if domain and domain not in self.accounts:
            self.accounts[domain] = owner
        open_until = now + timedelta(days=self.policy.dedupe.open_lead_days)
        self.by_id[lead.lead_id] = _Open(lead.lead_id, now, owner, team, open_until)
        self.bump(owner, +1)
        return _Result(
            "assigned",
            owner_id=owner,
            team_id=team,
            rule_id=decision.rule_id,
            tier=q.tier,
            stage=q.stage,
            fallback=decision.choice.fallback_used,
            capacity_skips=skips,
        )


def _pairs(actual: Counter[str], simulated: Counter[str]) -> dict[str, Pair]:
    keys = sorted(set(actual) | set(simulated))
    return {k: Pair(actual[k], simulated[k]) for k in keys}


def _replay(history: History, policy: Policy) -> list[_Result]:
    """Every lead of ``history`` routed by ``policy``, in arrival order, with each lead's
    real close applied at its time; one result per lead, in ``history.leads`` order."""
    replay = _Replay(policy, accounts=dict(history.accounts))
    for o in history.open_at_start:
        replay.add_open(
            _Open(o.lead_id, o.received_at, o.owner_id, o.team_id, o.open_until), o.email, o.phone
        )
    # Arrivals in stored order; a close at the same instant goes first (the lead had ended).
    events: list[tuple[datetime, int, int, str]] = []
    for i, o in enumerate(history.open_at_start):
        if o.closed_at is not None:
            events.append((o.closed_at, 0, i, o.lead_id))
    for i, lead in enumerate(history.leads):
        events.append((lead.received_at, 1, i, lead.lead_id))
        if lead.closed_at is not None:
            events.append((lead.closed_at, 0, i, lead.lead_id))
    events.sort(key=lambda e: (e[0], e[1], e[2]))

    results: list[_Result | None] = [None] * len(history.leads)
    for _, kind, index, lead_id in events:
        if kind == 0:
            replay.close(lead_id)
        else:
            results[index] = replay.route(history.leads[index])
    assert all(r is not None for r in results)  # every lead has its arrival event
    return [r for r in results if r is not None]


@dataclass
class _Tally:
    """What really happened and what the replay did, counted side by side."""

    a_out: Counter[str] = field(default_factory=Counter)
    s_out: Counter[str] = field(default_factory=Counter)
    a_team: Counter[str] = field(default_factory=Counter)
    s_team: Counter[str] = field(default_factory=Counter)
    a_rep: Counter[str] = field(default_factory=Counter)
    s_rep: Counter[str] = field(default_factory=Counter)
    skips: Counter[str] = field(default_factory=Counter)
    a_tier: Counter[str] = field(default_factory=Counter)
    s_tier: Counter[str] = field(default_factory=Counter)
    a_stage: Counter[str] = field(default_factory=Counter)
    s_stage: Counter[str] = field(default_factory=Counter)
    overflow: Pair = Pair()
    fallback: Pair = Pair()
    changes: list[OwnerChange] = field(default_factory=list)
    reassigned: int = 0

    def add(self, lead: HistoricLead, result: _Result) -> None:
        actual = lead.outcome
        self.a_out[actual] += 1
        self.s_out[result.outcome] += 1
        if lead.owner_id is not None:
            self.a_rep[lead.owner_id] += 1
            self.a_team[lead.team_id or "-"] += 1
        if result.owner_id is not None:
            self.s_rep[result.owner_id] += 1
            self.s_team[result.team_id or "-"] += 1
        self.skips.update(result.capacity_skips)
        if lead.tier is not None:
            self.a_tier[lead.tier] += 1
        if lead.stage is not None:
            self.a_stage[lead.stage] += 1
        if result.tier is not None:
            self.s_tier[result.tier] += 1
        if result.stage is not None:
            self.s_stage[result.stage] += 1
        self.overflow = Pair(
            self.overflow.actual + lead.capacity_skip,
            self.overflow.simulated + bool(result.capacity_skips),
        )
        self.fallback = Pair(
            self.fallback.actual + (lead.fallback_used and actual == "assigned"),
            self.fallback.simulated + (result.fallback and result.outcome == "assigned"),
        )
        self.reassigned += lead.reassigned
        if (actual, lead.owner_id, lead.team_id) != (
            result.outcome,
            result.owner_id,
            result.team_id,
        ):
            self.changes.append(
                OwnerChange(
                    lead_id=lead.lead_id,
                    received_at=lead.received_at,
                    actual_outcome=actual,
                    actual_owner=lead.owner_id,
                    actual_team=lead.team_id,
                    simulated_outcome=result.outcome,
                    simulated_owner=result.owner_id,
                    simulated_team=result.team_id,
                    simulated_rule=result.rule_id,
                )
            )

    def rep_loads(self, history: History, policy: Policy) -> dict[str, RepLoad]:
        """Every rep who had leads (really or in the replay) or is in the proposed policy."""
        reps: dict[str, RepLoad] = {}
        named = {r.id for t in policy.teams for r in t.reps}
        for rep_id in sorted(set(self.a_rep) | set(self.s_rep) | named):
            found = policy.rep(rep_id)
            hours: float | None = None
            if found is not None:
                schedule = found[1].schedule()
                seconds = schedule.business_seconds_between(history.since, history.until)
                hours = round(seconds / 3600, 2)
            reps[rep_id] = RepLoad(
                rep_id=rep_id,
                team_id=found[0].id if found else None,
                leads=Pair(self.a_rep[rep_id], self.s_rep[rep_id]),
                capacity_skips=self.skips[rep_id],
                business_hours=hours,
            )
        return reps


def simulate(history: History, policy: Policy) -> SimulationReport:
    """Replay ``history`` through ``policy``; deterministic for the same inputs."""
    tally = _Tally()
    for lead, result in zip(history.leads, _replay(history, policy), strict=True):
        tally.add(lead, result)
    return SimulationReport(
        since=history.since,
        until=history.until,
        policy_label=policy.label,
        policy_version=policy.version_id,
        leads=len(history.leads),
        outcomes={k: Pair(tally.a_out[k], tally.s_out[k]) for k in OUTCOMES},
        teams=_pairs(tally.a_team, tally.s_team),
        reps=tally.rep_loads(history, policy),
        capacity_overflows=tally.overflow,
        fallback=tally.fallback,
        tiers=_pairs(tally.a_tier, tally.s_tier),
        stages=_pairs(tally.a_stage, tally.s_stage),
        reassigned_actual=tally.reassigned,
        owner_changes=tuple(tally.changes),
    )


# --- text ------------------------------------------------------------------------------------


def _table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return ["", title, fmt.format(*header), *(fmt.format(*r) for r in rows)]


def _pair_rows(pairs: Mapping[str, Pair]) -> list[tuple[str, ...]]:
    return [(k, str(p.actual), str(p.simulated), f"{p.delta:+d}") for k, p in pairs.items()]


def render_text(report: SimulationReport, *, max_changes: int = 20) -> str:
    """The side-by-side report a person reads in a terminal."""
    head = ("", "actual", "simulated", "delta")
    lines = [
        f"What-if: policy {report.policy_label} ({report.policy_version or 'unsaved'}) on "
        f"{report.leads} leads received {report.since.isoformat()} .. {report.until.isoformat()}",
    ]
    lines += _table("Outcomes", _pair_rows(report.outcomes), head)
    lines += _table("Leads per team", _pair_rows(report.teams), head)
    rep_rows: list[tuple[str, ...]] = []
    for r in report.reps.values():
        d = r.as_dict()
        per = (d["actual_per_business_hour"], d["simulated_per_business_hour"])
        rep_rows.append(
            (
                r.rep_id,
                r.team_id or "-",
                str(r.leads.actual),
                str(r.leads.simulated),
                f"{r.leads.delta:+d}",
                str(r.capacity_skips),
                "-" if r.business_hours is None else f"{r.business_hours:g}",
                "-" if per[0] is None else f"{per[0]:.3f}",
                "-" if per[1] is None else f"{per[1]:.3f}",
            )
        )
    lines += _table(
        "Leads per rep (SLA load = leads per business hour of the rep)",
        rep_rows,
        ("rep", "team", "actual", "sim", "delta", "full", "hours", "load act", "load sim"),
    )
    other = {"capacity overflows": report.capacity_overflows, "fallback team": report.fallback}
    lines += _table("Capacity and fallback", _pair_rows(other), head)
    lines += _table("Tier mix", _pair_rows(report.tiers), head)
    lines += _table("Stage mix", _pair_rows(report.stages), head)
    lines.append("")
    lines.append(
        f"Really reassigned later (not replayed): {report.reassigned_actual}. "
        f"Leads whose owner would change: {len(report.owner_changes)}"
    )
    for c in report.owner_changes[:max_changes]:
        lines.append(
            f"  {c.lead_id}  {c.actual_owner or c.actual_outcome} ({c.actual_team or '-'}) -> "
            f"{c.simulated_owner or c.simulated_outcome} ({c.simulated_team or '-'}) "
            f"by rule {c.simulated_rule or '-'}"
        )
    if len(report.owner_changes) > max_changes:
        lines.append(f"  ... {len(report.owner_changes) - max_changes} more (--json lists all)")
    return "\n".join(lines) + "\n"
