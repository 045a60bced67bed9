"""Pick an owner among a team's reps: eligibility, the four strategies and the fallback team.

All functions are pure. Round-robin and load state come in as ``RepState`` values the caller
loaded (under a row lock) from PostgreSQL and go back out as new values to store, so several
router instances and restarts share one fair sequence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import NamedTuple

from shared.policy import Policy, Rep, RoutingRule, Team

NO_ELIGIBLE_REP = "no eligible rep"


@dataclass(frozen=True, slots=True)
class RepState:
    """A rep's persisted routing state: current open leads, smooth-WRR current weight, and why
    they are paused for new leads (None: not paused; e.g. "missed 3 SLAs in a row")."""

    rep_id: str
    open_leads: int = 0
    rr_current_weight: int = 0
    paused: str | None = None


class Considered(NamedTuple):
    rep_id: str
    eligible: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Choice:
    """Who gets the lead and why; ``rr_weights`` are the new current weights to persist."""

    rep_id: str | None
    team_id: str | None
    strategy: str
    reason: str
    fallback_used: bool
    considered: tuple[Considered, ...]
    rr_weights: Mapping[str, int] = field(default_factory=dict)


def state_of(rep_id: str, states: Mapping[str, RepState]) -> RepState:
    """A rep never routed to yet has no stored row: zero load, zero current weight."""
    return states.get(rep_id) or RepState(rep_id)


def eligible(
    rep: Rep, state: RepState, now: datetime, require_working_hours: bool
) -> tuple[bool, str]:
    """Whether the rep can take a new lead right now, and the reason in plain words."""
    if not rep.active:
        return False, "inactive"
    for absence in rep.out_of_office:
        if absence.from_ <= now < absence.until:
            return False, f"out of office until {absence.until.isoformat()}"
    if state.paused is not None:
        return False, f"paused: {state.paused}"
    if state.open_leads >= rep.capacity:
        return False, f"at capacity ({state.open_leads}/{rep.capacity} open leads)"
    if require_working_hours and not rep.schedule().is_working_time(now):
        return False, "outside working hours"
    return True, "eligible"


def pick_round_robin(
    candidates: Sequence[Rep], states: Mapping[str, RepState]
) -> tuple[str, dict[str, int]]:
    """Smooth weighted round robin (nginx): same state in, same pick out.

    Every candidate's current weight grows by its weight, the largest wins (ties: lowest id)
    and pays back the total, which spreads picks evenly (1,2,3 -> a b c c b c, not a b b c c c).
    """
    if not candidates:
        raise ValueError("pick_round_robin needs at least one candidate")
    current = {r.id: state_of(r.id, states).rr_current_weight + r.weight for r in candidates}
    total = sum(r.weight for r in candidates)
    winner = min(current, key=lambda rep_id: (-current[rep_id], rep_id))
    current[winner] -= total
    return winner, current


def pick_least_loaded(candidates: Sequence[Rep], states: Mapping[str, RepState]) -> str:
    """Lowest open leads per unit of weight (exact fractions), ties by rep id."""
    if not candidates:
        raise ValueError("pick_least_loaded needs at least one candidate")
    best = min(
        candidates,
        key=lambda r: (Fraction(state_of(r.id, states).open_leads, r.weight), r.id),
    )
    return best.id


@dataclass(frozen=True, slots=True)
class _Context:
    policy: Policy
    states: Mapping[str, RepState]
    now: datetime
    exclude: frozenset[str]


def _check(rep: Rep, ctx: _Context, require_hours: bool) -> Considered:
    if rep.id in ctx.exclude:
        return Considered(rep.id, False, "previous owner")
    ok, reason = eligible(rep, state_of(rep.id, ctx.states), ctx.now, require_hours)
    return Considered(rep.id, ok, reason)


def _from_team(
    team: Team, strategy: str, ctx: _Context, require_hours: bool
) -> tuple[str | None, dict[str, int], list[Considered]]:
    considered = [_check(rep, ctx, require_hours) for rep in team.reps]
    ok_ids = {c.rep_id for c in considered if c.eligible}
    candidates = [rep for rep in team.reps if rep.id in ok_ids]
    if not candidates:
        return None, {}, considered
    if strategy == "least_loaded":
        return pick_least_loaded(candidates, ctx.states), {}, considered
    rep_id, weights = pick_round_robin(candidates, ctx.states)
    return rep_id, weights, considered


def account_owner(
    owner_id: str | None, ctx: _Context, require_hours: bool
) -> tuple[Choice | None, str, list[Considered]]:
    """The account's owner when eligible; otherwise None and why (the caller falls through)."""
    if owner_id is None:
        return None, "no matching account", []
    found = ctx.policy.rep(owner_id)
    if found is None:
        return None, f"account owner {owner_id} is not in the policy", []
    team, rep = found
    seen = _check(rep, ctx, require_hours)
    if not seen.eligible:
        return None, f"account owner {owner_id} not eligible ({seen.reason})", [seen]
    reason = f"account owner {owner_id} of the matched account"
    choice = Choice(rep.id, team.id, "account_owner", reason, False, (seen,))
    return choice, reason, [seen]


def fixed(rule: RoutingRule, ctx: _Context) -> tuple[Choice | None, str, list[Considered]]:
    """The rule's named owner when eligible; otherwise None and why."""
    found = ctx.policy.rep(rule.owner or "")
    if found is None:  # load guarantees the owner exists; guard for hand-built policies
        return None, f"fixed owner {rule.owner} is not in the policy", []
    team, rep = found
    seen = _check(rep, ctx, rule.require_working_hours)
    if not seen.eligible:
        return None, f"fixed owner {rep.id} not eligible ({seen.reason})", [seen]
    return Choice(rep.id, team.id, "fixed", f"fixed owner {rep.id}", False, (seen,)), "", [seen]


def choose_owner(
    rule: RoutingRule,
    policy: Policy,
    states: Mapping[str, RepState],
    now: datetime,
    account_owner_id: str | None,
    exclude: frozenset[str] = frozenset(),
) -> Choice:
    """Apply the rule's strategy, then the fallback team, so a lead is never left unowned.

    ``exclude`` holds reps that must not get the lead (the previous owner on reassignment).
    The fallback team is tried with the rule's working-hours requirement first and without it
    second; active, out-of-office and capacity always apply.
    """
    ctx = _Context(policy, states, now, exclude)
    considered: list[Considered] = []
    notes: list[str] = []
    team_strategy = rule.strategy
    if rule.strategy in ("account_owner", "fixed"):
        direct, note, seen = (
            account_owner(account_owner_id, ctx, rule.require_working_hours)
            if rule.strategy == "account_owner"
            else fixed(rule, ctx)
        )
        if direct is not None:
            return direct
        considered += seen
        notes.append(note)
        team_strategy = "round_robin"
    attempts: list[tuple[str, str, bool]] = []
    if rule.strategy != "fixed":
        attempts.append((rule.team, team_strategy, rule.require_working_hours))
    attempts.append((policy.fallback_team, "round_robin", rule.require_working_hours))
    attempts.append((policy.fallback_team, "round_robin", False))
    tried: set[tuple[str, bool]] = set()  # same team, same constraints: same nobody
    for index, attempt in enumerate(attempts):
        team = policy.team(attempt[0])
        if (attempt[0], attempt[2]) in tried or team is None:
            continue
        tried.add((attempt[0], attempt[2]))
        rep_id, weights, seen = _from_team(team, attempt[1], ctx, attempt[2])
        considered += seen
        used_fallback = index > 0 or rule.strategy == "fixed"
        if rep_id is not None:
            relaxed = rule.require_working_hours and not attempt[2]
            notes.append(_picked(team.id, attempt[1], rep_id, used_fallback, relaxed))
            reason = "; ".join(notes)
            return Choice(
                rep_id, team.id, attempt[1], reason, used_fallback, tuple(considered), weights
            )
        within = " within working hours" if attempt[2] else ""
        notes.append(f"no eligible rep in team {team.id}{within}")
    notes.append(NO_ELIGIBLE_REP)
    return Choice(None, None, rule.strategy, "; ".join(notes), True, tuple(considered))


def _picked(team_id: str, strategy: str, rep_id: str, fallback: bool, relaxed: bool) -> str:
    where = f"fallback team {team_id}" if fallback else f"team {team_id}"
    suffix = " (outside working hours, so no lead is left unowned)" if relaxed else ""
    return f"{strategy} in {where} picked {rep_id}{suffix}"
