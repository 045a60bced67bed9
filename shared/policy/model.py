"""The policy as a whole and the checks that span its sections."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from datetime import date

from pydantic import (
    Field,
    PrivateAttr,
    model_validator,
)

from shared.identity import registrable_domain
from shared.policy.activity import ActivitySource, Feedback
from shared.policy.base import PolicyError, _Model
from shared.policy.escalation import (
    _REASSIGN_SENDS_NOTHING,
    EscalationLevel,
    Sla,
    SlaTier,
    chain_errors,
)
from shared.policy.people import Rep, Team, bind_company_holidays
from shared.policy.qualification import Qualification
from shared.policy.routing import Account, Dedupe, Nurture, Retention, RoutingRule
from shared.policy.sources import SourceConfig

# --- the policy ------------------------------------------------------------------------------


class Policy(_Model):
    """The whole routing policy; cross-references are checked so lookups never dangle."""

    version: str = Field(min_length=1)
    sources: tuple[SourceConfig, ...] = Field(min_length=1)
    qualification: Qualification
    teams: tuple[Team, ...] = Field(min_length=1)
    rules: tuple[RoutingRule, ...] = Field(min_length=1)
    fallback_team: str
    accounts: tuple[Account, ...] = ()
    sla: Sla
    escalation: tuple[EscalationLevel, ...] = Field(min_length=1)
    dedupe: Dedupe
    retention: Retention
    activity_sources: tuple[ActivitySource, ...] = ()
    # days nobody works (local dates in each rep's zone), on top of each rep's public holidays
    company_holidays: tuple[date, ...] = ()
    # reason codes of rejected/disqualified activities; None: reasons are not checked
    feedback: Feedback | None = None
    nurture: Nurture | None = None  # required once a rule says nurture: true

    _content_hash: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _cross_references(self) -> Policy:
        # PolicyError is not a ValueError, so pydantic lets it through unchanged.
        errors = _cross_check(self)
        if errors:
            raise PolicyError(errors)
        bind_company_holidays(self.teams, self.company_holidays)
        return self

    # identity

    @property
    def content_hash(self) -> str:
        """sha256 hex of the policy file's bytes (empty for a policy built in code)."""
        return self._content_hash

    @functools.cached_property
    def version_id(self) -> str:
        """The short content hash every decision records as the policy version.

        Cached (read several times per decision; a private attribute read is slow on a
        pydantic model). Safe: `parse_policy` sets the hash before anyone asks for it.
        """
        return self._content_hash[:12]

    @property
    def label(self) -> str:
        return self.version

    # lookups

    # Indexes for the per-request look-ups, built once (the policy is immutable).

    @functools.cached_property
    def _sources_by_name(self) -> dict[str, SourceConfig]:
        return {s.name: s for s in reversed(self.sources)}  # first wins, as a scan would

    @functools.cached_property
    def _teams_by_id(self) -> dict[str, Team]:
        return {t.id: t for t in reversed(self.teams)}

    @functools.cached_property
    def _reps_by_id(self) -> dict[str, tuple[Team, Rep]]:
        found: dict[str, tuple[Team, Rep]] = {}
        for team in self.teams:
            for rep in team.reps:
                found.setdefault(rep.id, (team, rep))
        return found

    @functools.cached_property
    def _accounts_by_domain(self) -> dict[str, Account]:
        return {a.domain: a for a in self.accounts}

    def source(self, name: str) -> SourceConfig | None:
        return self._sources_by_name.get(name)

    def team(self, team_id: str) -> Team | None:
        return self._teams_by_id.get(team_id)

    def rep(self, rep_id: str) -> tuple[Team, Rep] | None:
        return self._reps_by_id.get(rep_id)

    def account_for_domain(self, domain: str | None) -> Account | None:
        """The known account for a domain, also matching its subdomains (eu.acme.com), down
        to its registrable domain (shared.identity): a public suffix such as `co.uk` is
        nobody's account, so `acme.co.uk` never matches one listed as `co.uk`."""
        if not domain:
            return None
        labels = domain.strip().lower().rstrip(".").split(".")
        by_domain = self._accounts_by_domain
        registrable = registrable_domain(domain)
        stop = len(labels) - registrable.count(".") if registrable else len(labels) - 1
        for i in range(stop):
            account = by_domain.get(".".join(labels[i:]))
            if account is not None:
                return account
        return None

    def sla_for_tier(self, name: str) -> SlaTier:
        """The SLA of a tier; load guarantees every qualification tier has one (KeyError if not)."""
        return self.sla.tiers[name]

    @property
    def escalation_levels(self) -> tuple[EscalationLevel, ...]:
        return tuple(sorted(self.escalation, key=lambda e: e.level))

    @property
    def fallback(self) -> Team:
        team = self.team(self.fallback_team)
        assert team is not None  # checked at load
        return team


def _duplicates(
    items: Iterable[tuple[str, str]],
) -> list[str]:
    """``(path, value)`` pairs -> one error per repeated value, at its second occurrence."""
    seen: Counter[str] = Counter()
    errors = []
    for path, value in items:
        seen[value] += 1
        if seen[value] == 2:
            errors.append(f"{path}: duplicate id '{value}'")
    return errors


def _cross_check(p: Policy) -> list[str]:
    errors: list[str] = []
    q = p.qualification
    errors += _duplicates((f"sources[{i}].name", s.name) for i, s in enumerate(p.sources))
    errors += _duplicates((f"teams[{i}].id", t.id) for i, t in enumerate(p.teams))
    errors += _duplicates(
        (f"teams[{i}].reps[{j}].id", r.id)
        for i, t in enumerate(p.teams)
        for j, r in enumerate(t.reps)
    )
    errors += _duplicates((f"rules[{i}].id", r.id) for i, r in enumerate(p.rules))
    errors += _duplicates(
        [(f"qualification.rules[{i}].id", r.id) for i, r in enumerate(q.rules)]
        + [(f"qualification.disqualify[{i}].id", r.id) for i, r in enumerate(q.disqualify)]
    )
    errors += _duplicates(
        (f"qualification.stages[{i}].name", s.name) for i, s in enumerate(q.stages)
    )
    errors += _duplicates((f"qualification.tiers[{i}].name", t.name) for i, t in enumerate(q.tiers))
    errors += _duplicates((f"accounts[{i}].domain", a.domain) for i, a in enumerate(p.accounts))
    errors += _activity_source_errors(p)
    team_ids = {t.id for t in p.teams}
    for i, rule in enumerate(p.rules):
        team = p.team(rule.team)
        if rule.nurture:
            if p.nurture is None:
                errors.append(
                    f"rules[{i}].nurture: needs the nurture section (reengage_after_days)"
                )
        elif team is None:
            errors.append(f"rules[{i}].team: unknown team '{rule.team}'")
        elif rule.owner is not None and team.rep(rule.owner) is None:
            errors.append(f"rules[{i}].owner: no rep '{rule.owner}' in team '{rule.team}'")
        if rule.default and i != len(p.rules) - 1:
            errors.append(f"rules[{i}].default: only the last rule may be the default")
    if not p.rules[-1].default:
        errors.append("rules: the last rule must have default: true")
    if p.fallback_team not in team_ids:
        errors.append(f"fallback_team: unknown team '{p.fallback_team}'")
    for i, account in enumerate(p.accounts):
        if p.rep(account.owner) is None:
            errors.append(f"accounts[{i}].owner: unknown rep '{account.owner}'")
    tier_names = [t.name for t in q.tiers]
    for name in p.sla.tiers:
        if name not in tier_names:
            errors.append(f"sla.tiers.{name}: not a tier in qualification.tiers")
    for i, name in enumerate(tier_names):
        if name not in p.sla.tiers:
            errors.append(f"qualification.tiers[{i}].name: tier '{name}' has no entry in sla.tiers")
    for i, level in enumerate(p.escalation):
        if level.level != i + 1:
            errors.append(f"escalation[{i}].level: expected {i + 1} (levels are 1..n in order)")
        elif i and level.after_seconds < p.escalation[i - 1].after_seconds:
            errors.append(f"escalation[{i}].after_seconds: must not be less than level {i}'s")
    errors += chain_errors(p.escalation)
    errors += _check_notify(p)
    return errors


def _check_notify(p: Policy) -> list[str]:
    """Channel choices that could never be honoured: a team channel the team does not have,
    escalation levels that do not exist or send nothing."""
    errors: list[str] = []
    actions = {e.level: e.action for e in p.escalation}
    for i, team in enumerate(p.teams):
        scopes = [(f"teams[{i}].notify", team.notify)] + [
            (f"teams[{i}].reps[{j}].notify", r.notify) for j, r in enumerate(team.reps)
        ]
        for path, prefs in scopes:
            if team.slack_channel is None and prefs.mentions("team_channel"):
                errors.append(f"{path}: team_channel needs the team's slack_channel")
            if isinstance(prefs.escalation, dict):
                for level in prefs.escalation:
                    if level not in actions:
                        errors.append(f"{path}.escalation[{level}]: no escalation level {level}")
                    elif actions[level] == "reassign":
                        errors.append(f"{path}.escalation[{level}]: {_REASSIGN_SENDS_NOTHING}")
    return errors


def _activity_source_errors(p: Policy) -> list[str]:
    errors = _duplicates(
        (f"activity_sources[{i}].name", s.name) for i, s in enumerate(p.activity_sources)
    )
    for i, src in enumerate(p.activity_sources):
        for tool_id, rep_id in src.actors.items():
            if p.rep(rep_id) is None:
                errors.append(f"activity_sources[{i}].actors.{tool_id}: unknown rep '{rep_id}'")
    return errors
