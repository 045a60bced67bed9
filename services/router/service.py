"""Router's service layer: turn `lead.received` into one decision, recorded with its events.

The decision itself is pure (domain.decision.decide); this layer loads what it needs, holds
the assignment lock, and writes the lead, assignment, rep state, audit trace and outbox event
in the caller's transaction.

One policy object is captured at the start of each call and threaded through everything it
writes, so a reload landing mid-decision never mixes two versions in one decision: the
decision row, the assignment and the event all carry the version that decided.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from services.router import store
from services.router.domain.accounts import AccountMatch, business_domain, match_account
from services.router.domain.assignment import RepState, eligible, state_of
from services.router.domain.decision import (
    Assigned,
    Disqualified,
    Merged,
    Unassigned,
    decide,
)
from services.router.domain.facts import flatten_lead
from services.router.domain.scoring import QualificationResult
from services.router.metrics import RouterMetrics
from shared.db import Outbox, WriteBehind
from shared.errors import DomainError
from shared.events import (
    AccountRef,
    ContactErased,
    Lead,
    LeadAssigned,
    LeadDisqualified,
    LeadMerged,
    Person,
    RepConsidered,
    RoutingReason,
    RuleScore,
    RuleTried,
    Sla,
    TeamRef,
    derived_id,
    erase_lead_data,
    make_event,
)
from shared.logs import get_logger, scrub
from shared.policy import Policy

log = get_logger(__name__)
EVENT_SOURCE = "/baton/router"


@dataclass
class PolicyHolder:
    """The live policy; swapped atomically on reload (one attribute assignment)."""

    policy: Policy
    history: list[str] = field(default_factory=list)


def _breakdown(q: QualificationResult) -> list[RuleScore]:
    return [
        RuleScore(
            rule_id=r.rule_id,
            category=r.category,
            points=r.points,
            matched=r.matched,
            reason=r.reason,
        )
        for r in q.breakdown
    ]


def _person(policy: Policy, rep_id: str | None) -> Person | None:
    found = policy.rep(rep_id) if rep_id else None
    if found is None:
        return None
    rep = found[1]
    return Person(id=rep.id, name=rep.name, email=rep.email)


def _keys(lead: Lead) -> store.LeadKeys:
    return store.LeadKeys(
        lead.lead_id, lead.contact.email, lead.contact.phone, business_domain(lead)
    )


@dataclass
class _RunOverlay:
    """What the leads decided earlier in a run change for a business domain, before it is
    written: the account the first assigned lead claimed and the leads now stored under the
    domain (both read from the database for the leads outside the run)."""

    accounts: dict[str, str] = field(default_factory=dict)  # business domain -> first owner
    by_domain: dict[str, list[tuple[str, datetime]]] = field(default_factory=dict)

    @staticmethod
    def mark(writes: store.Writes) -> tuple[int, int]:
        return len(writes.leads), len(writes.accounts)

    def record(self, writes: store.Writes, mark: tuple[int, int], lead: Lead) -> None:
        if len(writes.leads) > mark[0] and lead.contact.company_domain:
            stored = self.by_domain.setdefault(lead.contact.company_domain, [])
            stored.append((lead.lead_id, lead.received_at))
        for domain, owner_id, _ in writes.accounts[mark[1] :]:
            self.accounts.setdefault(domain, owner_id)  # ON CONFLICT DO NOTHING: first wins

    def apply(
        self,
        found: store.DecisionInputs,
        domain: str | None,
        states: dict[str, RepState],
    ) -> store.DecisionInputs:
        if not domain or (domain not in self.accounts and domain not in self.by_domain):
            return replace(found, states=states)
        earlier = found.earlier
        if domain in self.by_domain:
            merged = earlier + self.by_domain[domain]
            merged.sort(key=lambda pair: pair[1], reverse=True)
            earlier = merged[: store.EARLIER_LIMIT]
        owner = found.account_owner or self.accounts.get(domain)
        return replace(found, states=states, earlier=earlier, account_owner=owner)


def _runs(
    items: list[tuple[Lead, store.LeadKeys]],
) -> list[list[tuple[Lead, store.LeadKeys]]]:
    """Split leads, in order, into runs in which no two share a lookup key (`LeadKeys.keys`)."""
    runs: list[list[tuple[Lead, store.LeadKeys]]] = []
    taken: set[tuple[str, str]] = set()
    for item in items:
        keys = item[1].keys()
        if not runs or keys & taken:
            runs.append([])
            taken = set()
        runs[-1].append(item)
        taken |= keys
    return runs


@dataclass
class RouterService:
    holder: PolicyHolder
    outbox: Outbox
    metrics: RouterMetrics
    assigned_topic: str
    erased_topic: str  # contacts.erased: where a lead erased on arrival is announced
    # Leads per write statement: a run's decisions are written in chunks, each statement in
    # flight while the next chunk is decided (PostgreSQL and Python each on their own core).
    write_chunk: int = 50

    @property
    def policy(self) -> Policy:
        return self.holder.policy

    # --- lead.received ---------------------------------------------------------------------

    async def on_received(
        self, session: AsyncSession, *, lead: Lead, now: datetime, parked_retry: bool = False
    ) -> str:
        """Merge, disqualify, assign or leave unassigned; returns the outcome.

        Safe under redelivery and concurrent delivery to several instances: the lead row is
        checked under the assignment lock, so the second delivery finds it and does nothing
        ("duplicate").
        """
        outcomes = await self.on_received_many(
            session, leads=[lead], now=now, parked_retry=parked_retry
        )
        return outcomes[0]

    async def on_received_many(
        self,
        session: AsyncSession,
        *,
        leads: list[Lead],
        now: datetime,
        parked_retry: bool = False,
    ) -> list[str]:
        """Decide leads in order, exactly as one at a time would, in few round trips.

        Under the assignment lock, leads are taken in runs that share no lookup key (id,
        e-mail, phone, business domain): a run's inputs are read in one go (`decision_inputs`),
        decided one after another in memory with the rep states each decision leaves behind,
        and written in one statement (`store.write`). A lead that shares its id, e-mail or phone
        with an earlier one of its run starts the next run, so it reads what that one wrote (a
        merge, a redelivery); what earlier leads of the run did to its business domain (the
        account claimed, the leads stored under it) is applied from memory (`_RunOverlay`).
        The outcome is the same as deciding them one by one (tests/router/test_router_batch.py).
        """
        policy = self.policy  # one policy for the whole batch, even if a reload lands now
        await store.lock_assignments(session)
        erased = await self._erase_in_flight(session, leads=leads, now=now)
        outcomes: list[str] = []
        for run in _runs([(lead, _keys(lead)) for lead in leads if lead.lead_id not in erased]):
            inputs = await store.decision_inputs(session, leads=[k for _, k in run], now=now)
            writes = store.Writes()
            states = inputs[0].states
            overlay = _RunOverlay()
            async with WriteBehind() as behind:
                for (lead, keys), found in zip(run, inputs, strict=True):
                    if found.seen:  # decided already (a redelivery, or a concurrent delivery won)
                        outcomes.append("duplicate")
                        continue
                    mark = overlay.mark(writes)
                    outcomes.append(
                        self._decide_received(
                            writes,
                            policy,
                            lead=lead,
                            inputs=overlay.apply(found, keys.domain, writes.applied_to(states)),
                            now=now,
                            parked_retry=parked_retry,
                        )
                    )
                    overlay.record(writes, mark, lead)
                    if len(writes.leads) >= self.write_chunk:  # written while the next are decided
                        await behind.submit(store.write(session, writes))
                        states, writes = writes.applied_to(states), store.Writes()
                if writes.leads or writes.decisions:
                    await behind.submit(store.write(session, writes))
            self.update_team_gauges(policy, writes.applied_to(states), now)
        if erased:
            decided = iter(outcomes)
            outcomes = ["erased" if ld.lead_id in erased else next(decided) for ld in leads]
        return outcomes

    async def _erase_in_flight(
        self, session: AsyncSession, *, leads: list[Lead], now: datetime
    ) -> set[str]:
        """Leads received before their contact was erased that reach the router only after
        the erasure (their event was still in Kafka): erased on arrival, never routed, and
        announced in `contact.erased` so intake erases its copy too. A lead received after
        the erasure is a new submission and is routed as usual. Under the assignment lock,
        like the erasure, so a lead is either found by the erasure or finds it here."""
        digests = {ld.lead_id: contact_digests(ld.contact.email, ld.contact.phone) for ld in leads}
        known = await store.erased_contacts(session, [d for ds in digests.values() for d in ds])
        if not known:
            return set()
        hits = [
            ld.lead_id
            for ld in leads
            if any(d in known and known[d] >= ld.received_at for d in digests[ld.lead_id])
        ]
        if not hits:
            return set()
        lead_ids = list(dict.fromkeys(hits))
        await erase_leads(
            session,
            outbox=self.outbox,
            topic=self.erased_topic,
            lead_ids=lead_ids,
            reason="request",
            erasure_id=str(uuid.uuid4()),
            now=now,
        )
        self.metrics.decisions.labels("erased", "none", "none").inc(len(lead_ids))
        return set(lead_ids)

    def _decide_received(
        self,
        writes: store.Writes,
        policy: Policy,
        *,
        lead: Lead,
        inputs: store.DecisionInputs,
        now: datetime,
        parked_retry: bool,
    ) -> str:
        """The decision for one received lead, its rows appended to ``writes`` (no I/O)."""
        doc = lead.model_dump(mode="json")  # dumped once: facts and the stored row
        facts = flatten_lead(doc)
        email, phone = lead.contact.email, lead.contact.phone
        domain = business_domain(lead)
        open_lead = inputs.open_lead
        account = match_account(policy, domain, inputs.account_owner)
        states = inputs.states
        decision = decide(
            facts=facts,
            policy=policy,
            states=states,
            account_owner_id=account.owner_id if account else None,
            open_lead=open_lead,
            now=now,
        )
        base = {
            "lead_id": lead.lead_id,
            "source": lead.source,
            "received_at": lead.received_at,
            "email": email,
            "phone": phone,
            "company_domain": lead.contact.company_domain,
            "policy_version": policy.version_id,
            "lead": doc,
            "owner_id": None,
            "team_id": None,
            "assignment_seq": 0,
            "merged_into": None,
            "score": None,
            "tier": None,
            "stage": None,
            "open_until": None,
        }
        if isinstance(decision, Merged):
            base.update(merged_into=decision.into_lead_id, owner_id=decision.owner_id)
            writes.leads.append({**base, "status": "merged"})
            data = LeadMerged(
                lead_id=lead.lead_id,
                into_lead_id=decision.into_lead_id,
                owner=_person(policy, decision.owner_id),
                touch=lead,
                policy_version=policy.version_id,
            )
            self._emit(
                writes, "lead.merged", lead.lead_id, data, derived_id(lead.lead_id, "merged"), now
            )
            self._trace(
                writes,
                policy,
                lead.lead_id,
                "merged",
                now,
                decision.explanation,
                into_lead_id=decision.into_lead_id,
                owner_id=decision.owner_id,
            )
            team = (open_lead.team_id if open_lead else None) or "none"
            self.metrics.decisions.labels("merged", team, "none").inc()
            return "merged"
        q = decision.qualification
        base.update(score=q.score, tier=q.tier, stage=q.stage)
        breakdown = _breakdown(q)
        if isinstance(decision, Disqualified):
            writes.leads.append({**base, "status": "disqualified"})
            data_d = LeadDisqualified(
                lead_id=lead.lead_id,
                rule_id=decision.rule_id,
                reason=decision.reason,
                score=q.score,
                breakdown=breakdown,
                source=lead.source,
                policy_version=policy.version_id,
            )
            self._emit(
                writes,
                "lead.disqualified",
                lead.lead_id,
                data_d,
                derived_id(lead.lead_id, "disqualified"),
                now,
            )
            self._trace(
                writes,
                policy,
                lead.lead_id,
                "disqualified",
                now,
                decision.explanation,
                rule_id=decision.rule_id,
                reason=decision.reason,
                score=q.score,
                tier=q.tier,
            )
            self.metrics.scored.labels("none", q.tier).inc()
            self.metrics.decisions.labels("disqualified", "none", q.tier).inc()
            return "disqualified"
        if isinstance(decision, Unassigned):
            if parked_retry:
                return "unassigned"  # still parked: the caller rolls back, nothing is recorded
            # Nothing is published: no one can act on it. It is visible instead as a decision
            # row (GET /v1/leads/{id}/decisions), the unassigned counter, an error log line and
            # the eligible-reps gauge at 0 that explains it.
            writes.leads.append({**base, "status": "unassigned"})
            self._trace(
                writes,
                policy,
                lead.lead_id,
                "unassigned",
                now,
                decision.explanation,
                rule_id=decision.rule_id,
                reason=decision.reason,
                considered=[c._asdict() for c in decision.choice.considered],
                score=q.score,
                tier=q.tier,
            )
            team_label = self._rule_team(policy, decision.rule_id) or "none"
            self.metrics.scored.labels(team_label, q.tier).inc()
            self.metrics.decisions.labels("unassigned", team_label, q.tier).inc()
            log.error("router.no_eligible_rep", lead_id=lead.lead_id, rule=decision.rule_id)
            return "unassigned"
        assert isinstance(decision, Assigned)
        owner_id, team_id = decision.owner_id, decision.choice.team_id or ""
        open_until = now + timedelta(days=policy.dedupe.open_lead_days)
        writes.leads.append(
            {
                **base,
                "owner_id": owner_id,
                "team_id": team_id,
                "assignment_seq": 1,
                "open_until": open_until,
                "status": "assigned",
            }
        )
        if domain:
            writes.accounts.append((domain, owner_id, lead.lead_id))
        self._assign(
            writes,
            policy,
            lead=lead,
            decision=decision,
            seq=1,
            now=now,
            breakdown=breakdown,
            account=self._account_ref(policy, account),
            earlier=[lead_id for lead_id, _ in inputs.earlier],
            previous=None,
            reason=None,
        )
        self.metrics.scored.labels(team_id, q.tier).inc()
        self.metrics.assignment_latency.observe(max(0.0, (now - lead.received_at).total_seconds()))
        return "assigned"

    async def retry_parked(self, session: AsyncSession, *, now: datetime, limit: int = 100) -> int:
        """Route leads parked as unassigned once someone can take them; returns how many moved.

        A lead is never dropped for lack of an eligible rep: it waits here (visible in the
        parked gauge) and is decided afresh, in arrival order, when capacity frees up or a rep
        comes on duty. A retry that would still find no one is rolled back, so it leaves no
        decision rows or counters behind.
        """
        moved = 0
        for raw in await store.parked_leads(session, limit=limit):
            lead = Lead.model_validate(raw)
            attempt = await session.begin_nested()
            await store.delete_parked(session, lead.lead_id)
            outcome = await self.on_received(session, lead=lead, now=now, parked_retry=True)
            if outcome == "unassigned":
                await attempt.rollback()
                continue
            await attempt.commit()
            moved += 1
            log.info("router.parked_lead_routed", lead_id=lead.lead_id, outcome=outcome)
        self.metrics.parked.set(await store.count_parked(session))
        return moved

    # --- reassignment and closing ----------------------------------------------------------

    async def reassign(
        self,
        session: AsyncSession,
        *,
        lead_id: str,
        expected_seq: int | None,
        reason: str,
        now: datetime,
        actor: str | None = None,
    ) -> bool:
        """Give an assigned lead to another eligible rep with a fresh SLA (seq + 1).

        ``expected_seq`` (from an escalation) must be the lead's current assignment, else the
        escalation is stale and ignored. ``actor`` (from a rejection) must be the current owner
        when it names one of the policy's reps, so a late rejection by an earlier owner does
        not take the lead away from the rep who has it now.
        """
        policy = self.policy
        await store.lock_assignments(session)
        row = await store.get_lead(session, lead_id, lock=True)
        if row is None or row.status != "assigned" or row.owner_id is None:
            return False
        if expected_seq is not None and row.assignment_seq != expected_seq:
            log.info("router.reassign_stale", lead_id=lead_id, seq=expected_seq)
            return False  # a stale escalation: the lead moved on already
        if actor is not None and actor != row.owner_id and policy.rep(actor) is not None:
            log.info("router.reject_not_owner", lead_id=lead_id, actor=actor)
            return False
        lead = Lead.model_validate(row.lead)
        domain = business_domain(lead)
        account = await self.account_match(session, policy, domain)
        states = await store.rep_states(session)
        decision = decide(
            facts=flatten_lead(row.lead),
            policy=policy,
            states=states,
            account_owner_id=None,  # the account owner may be the one who let it lapse
            open_lead=None,
            now=now,
            exclude=frozenset({row.owner_id}),
        )
        writes = store.Writes()
        if not isinstance(decision, Assigned):
            log.warning("router.reassign_impossible", lead_id=lead_id, reason=reason)
            self.metrics.decisions.labels("reassign_failed", row.team_id or "none", "none").inc()
            self._trace(
                writes,
                policy,
                lead_id,
                "reassign_failed",
                now,
                decision.explanation,
                reason=reason,
                owner_id=row.owner_id,
                seq=row.assignment_seq,
            )
            await store.write(session, writes)
            return False
        seq = row.assignment_seq + 1
        writes.add_open(row.owner_id, -1)
        await store.update_owner(
            session,
            lead_id=lead_id,
            owner_id=decision.owner_id,
            team_id=decision.choice.team_id or "",
            seq=seq,
        )
        earlier = await store.earlier_leads(
            session,
            email=lead.contact.email,
            phone=lead.contact.phone,
            domain=domain,
            exclude=lead_id,
        )
        self._assign(
            writes,
            policy,
            lead=lead,
            decision=decision,
            seq=seq,
            now=now,
            breakdown=_breakdown(decision.qualification),
            account=self._account_ref(policy, account),
            earlier=earlier,
            previous=row.owner_id,
            reason=reason,
        )
        await store.write(session, writes)
        self.update_team_gauges(policy, writes.applied_to(states), now)
        return True

    async def close(
        self, session: AsyncSession, *, lead_id: str, status: str, at: datetime
    ) -> None:
        """An outcome activity ends the lead: it no longer counts against its owner's capacity."""
        row = await store.get_lead(session, lead_id, lock=True)
        if row is None or row.status != "assigned" or row.closed_at is not None:
            return
        await store.close_lead(session, lead_id=lead_id, status=status, at=at)
        if row.owner_id:
            await store.add_open_leads(session, row.owner_id, -1)

    # --- gauges ------------------------------------------------------------------------------

    def update_team_gauges(
        self, policy: Policy, states: Mapping[str, RepState], now: datetime
    ) -> None:
        """Eligible reps per team (active, present, under capacity) and those on duty now."""
        for team in policy.teams:
            able = on_duty = 0
            for rep in team.reps:
                ok, _ = eligible(rep, state_of(rep.id, states), now, False)
                if ok:
                    able += 1
                    if rep.schedule().is_working_time(now):
                        on_duty += 1
            self.metrics.eligible_reps.labels(team.id).set(able)
            self.metrics.on_duty_reps.labels(team.id).set(on_duty)

    async def refresh_team_gauges(self, session: AsyncSession, *, now: datetime) -> None:
        """Recompute the gauges from the stored rep state (periodically and after a reload)."""
        policy = self.policy
        self.metrics.eligible_reps.clear()  # teams removed by a reload disappear
        self.metrics.on_duty_reps.clear()
        self.update_team_gauges(policy, await store.rep_states(session), now)

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    async def account_match(
        session: AsyncSession, policy: Policy, domain: str | None
    ) -> AccountMatch | None:
        """`match_account`, reading the learned owner only when the policy has no account."""
        found = match_account(policy, domain, None)
        if found is not None or not domain:
            return found
        return match_account(policy, domain, await store.account_owner(session, domain))

    @staticmethod
    def _account_ref(policy: Policy, account: AccountMatch | None) -> AccountRef | None:
        if account is None:
            return None
        return AccountRef(
            domain=account.domain,
            name=account.name,
            owner_id=account.owner_id,
            owner=_person(policy, account.owner_id),
        )

    @staticmethod
    def _rule_team(policy: Policy, rule_id: str) -> str | None:
        return next((r.team for r in policy.rules if r.id == rule_id), None)

    def _assign(
        self,
        writes: store.Writes,
        policy: Policy,
        *,
        lead: Lead,
        decision: Assigned,
        seq: int,
        now: datetime,
        breakdown: list[RuleScore],
        account: AccountRef | None,
        earlier: list[str],
        previous: str | None,
        reason: str | None,
    ) -> None:
        owner_id, team_id = decision.owner_id, decision.choice.team_id or ""
        writes.assignments.append(
            dict(
                lead_id=lead.lead_id,
                seq=seq,
                owner_id=owner_id,
                team_id=team_id,
                rule_id=decision.rule_id,
                strategy=decision.choice.strategy,
                reason=decision.choice.reason,
                previous_owner_id=previous,
                assigned_at=now,
                due_at=decision.due_at,
                policy_version=policy.version_id,
            )
        )
        writes.add_open(owner_id, 1)
        writes.set_weights(decision.choice.rr_weights)
        team = policy.team(team_id)
        found = policy.rep(owner_id)
        assert team is not None and found is not None
        rep = found[1]
        manager_email = team.manager_email_for(rep)
        q = decision.qualification
        considered = [
            RepConsidered(rep_id=c.rep_id, eligible=c.eligible, reason=c.reason)
            for c in decision.choice.considered
        ]
        data = LeadAssigned(
            lead_id=lead.lead_id,
            assignment_seq=seq,
            assigned_at=now,
            owner=Person(id=rep.id, name=rep.name, email=rep.email),
            manager=Person(
                name=team.manager.name if manager_email == team.manager.email else manager_email,
                email=manager_email,
            ),
            team=TeamRef(id=team.id, name=team.name),
            score=q.score,
            tier=q.tier,
            stage=q.stage,
            breakdown=breakdown,
            framework=q.framework,
            routing=RoutingReason(
                rule_id=decision.rule_id,
                strategy=decision.choice.strategy,
                reason=decision.choice.reason,
                fallback_used=decision.choice.fallback_used,
            ),
            explanation=list(decision.explanation),
            sla=Sla(
                tier=decision.tier,
                window_seconds=decision.window_seconds,
                clock=decision.clock,
                due_at=decision.due_at,
            ),
            lead=lead,
            account=account,
            earlier_leads=earlier,
            previous_owner=_person(policy, previous),
            reason=reason,
            policy_version=policy.version_id,
            rules_tried=[
                RuleTried(rule_id=t.rule_id, matched=t.matched, reason=t.reason)
                for t in decision.rule_trace
            ],
            considered=considered,
        )
        self._emit(
            writes,
            "lead.assigned",
            lead.lead_id,
            data,
            derived_id(lead.lead_id, "assigned", seq),
            now,
        )
        self._trace(
            writes,
            policy,
            lead.lead_id,
            "assigned" if seq == 1 else "reassigned",
            now,
            decision.explanation,
            owner_id=owner_id,
            team_id=team_id,
            seq=seq,
            rule_id=decision.rule_id,
            strategy=decision.choice.strategy,
            previous_owner_id=previous,
            reason=reason,
            score=q.score,
            tier=q.tier,
            due_at=decision.due_at.isoformat(),
            considered=[c.model_dump() for c in considered],
        )
        self.metrics.decisions.labels(
            "assigned" if seq == 1 else "reassigned", team_id, q.tier
        ).inc()

    def _emit(
        self,
        writes: store.Writes,
        type_: str,
        lead_id: str,
        data: Any,
        event_id: str,
        now: datetime,
    ) -> None:
        event = make_event(
            type=type_, source=EVENT_SOURCE, subject=lead_id, data=data, id=event_id, time=now
        )
        writes.outbox.append((event.id, self.assigned_topic, lead_id, event.to_bytes()))

    def _trace(
        self,
        writes: store.Writes,
        policy: Policy,
        lead_id: str,
        kind: str,
        now: datetime,
        lines: Any,
        **extra: Any,
    ) -> None:
        writes.decision(
            lead_id=lead_id,
            kind=kind,
            policy_version=policy.version_id,
            at=now,
            trace={"explanation": list(lines), **extra},
        )


# --- right to erasure and retention ------------------------------------------------------------


class InvalidContact(DomainError):
    status = 422
    type_slug = "invalid-contact"
    title = "No usable contact to erase"


REJECTED_PREFIX = "rejected by owner"


def normalise_contact(email: str | None, phone: str | None) -> tuple[str | None, str | None]:
    """The contact as the router stored it: e-mail lower-cased, phone in E.164.

    Never echoes the values in errors (they are personal data).
    """
    fields: list[dict[str, str]] = []
    norm_email = norm_phone = None
    if email is not None and email.strip():
        norm_email = email.strip().lower()
        local, at, domain = norm_email.rpartition("@")
        if not at or not local or not domain:
            fields.append({"name": "email", "message": "not an e-mail address"})
        else:
            try:  # stored domains are ASCII (punycode)
                norm_email = f"{local}@{domain.encode('idna').decode('ascii')}"
            except UnicodeError:
                fields.append({"name": "email", "message": "not an e-mail address"})
    if phone is not None and phone.strip():
        try:
            number = phonenumbers.parse(phone.strip(), None)
            if not phonenumbers.is_valid_number(number):
                raise ValueError
            norm_phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        except (phonenumbers.NumberParseException, ValueError):
            fields.append(
                {"name": "phone", "message": "not a valid phone number in +<country> form"}
            )
    if fields:
        raise InvalidContact("the contact is not valid", fields=fields)
    if norm_email is None and norm_phone is None:
        raise InvalidContact(
            "give the contact's email or phone",
            fields=[{"name": "email", "message": "email or phone is required"}],
        )
    return norm_email, norm_phone


def contact_digests(email: str | None, phone: str | None) -> list[str]:
    """One-way digests (hex SHA-256) of a normalised contact: all the router keeps of an
    erased one, to recognise its leads still in flight."""
    out = []
    if email:
        out.append(hashlib.sha256(b"email:" + email.encode()).hexdigest())
    if phone:
        out.append(hashlib.sha256(b"phone:" + phone.encode()).hexdigest())
    return out


def erase_trace(trace: Any) -> Any:
    """A decision trace without anything personal: a rep's free-text rejection reason is
    dropped, and e-mail/phone shaped text is masked (traces normally hold policy words only)."""
    if isinstance(trace, dict):
        out = {k: erase_trace(v) for k, v in trace.items()}
        reason = out.get("reason")
        if isinstance(reason, str) and reason.startswith(REJECTED_PREFIX + ":"):
            out["reason"] = REJECTED_PREFIX
        return out
    if isinstance(trace, list):
        return [erase_trace(v) for v in trace]
    if isinstance(trace, str):
        return scrub(trace)
    return trace


async def erase_leads(
    session: AsyncSession,
    *,
    outbox: Outbox,
    topic: str,
    lead_ids: list[str],
    reason: str,
    erasure_id: str,
    now: datetime,
) -> None:
    """Erase these leads' personal data in the router, log the erasure and publish
    `contact.erased` (ids only) in the same transaction, so intake, followup and sales tools
    follow. Idempotent: erasing an erased lead changes nothing."""
    for lead_id, doc in (await store.lead_documents(session, lead_ids)).items():
        await store.erase_lead(session, lead_id=lead_id, lead=erase_lead_data(doc), at=now)
    for decision_id, trace in await store.decision_traces(session, lead_ids):
        erased = erase_trace(trace)
        if erased != trace:
            await store.replace_trace(session, decision_id=decision_id, trace=erased)
    await store.record_erasure(
        session, erasure_id=erasure_id, reason=reason, lead_ids=lead_ids, at=now
    )
    if lead_ids:
        data = ContactErased(
            erasure_id=erasure_id,
            lead_ids=lead_ids,
            erased_at=now,
            reason="retention" if reason == "retention" else "request",
        )
        event = make_event(
            type="contact.erased",
            source=EVENT_SOURCE,
            subject=erasure_id,
            data=data,
            id=erasure_id,
            time=now,
        )
        await outbox.add(session, topic=topic, event=event)
    log.info("router.erased", erasure_id=erasure_id, reason=reason, leads=len(lead_ids))


async def erase_contact(
    session: AsyncSession,
    *,
    outbox: Outbox,
    topic: str,
    email: str | None,
    phone: str | None,
    now: datetime,
) -> tuple[str, list[str]]:
    """Right to erasure: every lead of this contact loses its personal data; returns
    (erasure id, lead ids). Taken under the assignment lock, so no decision for the same
    contact is half-way through while the leads are erased."""
    norm_email, norm_phone = normalise_contact(email, phone)
    await store.lock_assignments(session)
    lead_ids = await store.contact_lead_ids(session, email=norm_email, phone=norm_phone)
    erasure_id = str(uuid.uuid4())
    await store.remember_erased_contact(
        session, digests=contact_digests(norm_email, norm_phone), erasure_id=erasure_id, at=now
    )
    await erase_leads(
        session,
        outbox=outbox,
        topic=topic,
        lead_ids=lead_ids,
        reason="request",
        erasure_id=erasure_id,
        now=now,
    )
    return erasure_id, lead_ids


async def purge_expired(
    session: AsyncSession,
    *,
    outbox: Outbox,
    topic: str,
    before: datetime,
    now: datetime,
    limit: int = 500,
) -> list[str]:
    """Retention: erase up to `limit` leads received before `before` (one `contact.erased`
    per batch); call again until it returns nothing."""
    lead_ids = await store.expired_lead_ids(session, before=before, limit=limit)
    if lead_ids:
        await erase_leads(
            session,
            outbox=outbox,
            topic=topic,
            lead_ids=lead_ids,
            reason="retention",
            erasure_id=str(uuid.uuid4()),
            now=now,
        )
    return lead_ids
