"""Router's service layer: turn `lead.received` into one decision, recorded with its events.

The decision itself is pure (domain.decision.decide); this layer loads what it needs, holds
the assignment lock, and writes the lead, assignment, rep state, audit trace and outbox event
in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.router import store
from services.router.domain.decision import Assigned, Disqualified, Merged, Unassigned, decide
from services.router.domain.facts import flatten_lead
from services.router.metrics import RouterMetrics
from shared.db import Outbox
from shared.events import (
    AccountRef,
    Lead,
    LeadAssigned,
    LeadDisqualified,
    LeadMerged,
    Person,
    RoutingReason,
    RuleScore,
    Sla,
    TeamRef,
    derived_id,
    make_event,
)
from shared.logs import get_logger
from shared.policy import Policy

log = get_logger(__name__)
EVENT_SOURCE = "/baton/router"


@dataclass
class PolicyHolder:
    """The live policy; swapped atomically on reload (one attribute assignment)."""

    policy: Policy
    history: list[str] = field(default_factory=list)


@dataclass
class RouterService:
    holder: PolicyHolder
    outbox: Outbox
    metrics: RouterMetrics
    assigned_topic: str

    @property
    def policy(self) -> Policy:
        return self.holder.policy

    async def on_received(self, session: AsyncSession, *, lead: Lead, now: datetime) -> str:
        policy = self.policy  # one policy for the whole decision, even if a reload lands now
        if await store.get_lead(session, lead.lead_id) is not None:
            return "duplicate"
        facts = flatten_lead(lead.model_dump(mode="json"))
        email, phone = lead.contact.email, lead.contact.phone
        domain = lead.contact.company_domain if lead.contact.email_kind == "business" else None
        await store.lock_assignments(session)
        open_lead = await store.find_open_lead(session, email=email, phone=phone, now=now)
        account_owner = None
        if domain:
            known = policy.account_for_domain(domain)
            account_owner = known.owner if known else await store.account_owner(session, domain)
        decision = decide(
            facts=facts,
            policy=policy,
            states=await store.rep_states(session),
            account_owner_id=account_owner,
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
            "lead": lead.model_dump(mode="json"),
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
            await store.insert_lead(session, **base, status="merged")
            owner = self._person(decision.owner_id)
            data = LeadMerged(
                lead_id=lead.lead_id,
                into_lead_id=decision.into_lead_id,
                owner=owner,
                touch=lead,
                policy_version=policy.version_id,
            )
            await self._emit(
                session, "lead.merged", lead.lead_id, data, derived_id(lead.lead_id, "merged"), now
            )
            await self._trace(session, lead.lead_id, "merged", now, [decision.reason])
            self.metrics.decisions.labels("merged", "none", "none").inc()
            return "merged"
        q = decision.qualification
        base.update(score=q.score, tier=q.tier, stage=q.stage)
        breakdown = [
            RuleScore(
                rule_id=r.rule_id,
                category=r.category,
                points=r.points,
                matched=r.matched,
                reason=r.reason,
            )
            for r in q.breakdown
        ]
        if isinstance(decision, Disqualified):
            await store.insert_lead(session, **base, status="disqualified")
            data_d = LeadDisqualified(
                lead_id=lead.lead_id,
                rule_id=decision.rule_id,
                reason=decision.reason,
                score=q.score,
                breakdown=breakdown,
                source=lead.source,
                policy_version=policy.version_id,
            )
            await self._emit(
                session,
                "lead.disqualified",
                lead.lead_id,
                data_d,
                derived_id(lead.lead_id, "disqualified"),
                now,
            )
            await self._trace(session, lead.lead_id, "disqualified", now, decision.explanation)
            self.metrics.decisions.labels("disqualified", "none", q.tier).inc()
            return "disqualified"
        if isinstance(decision, Unassigned):
            await store.insert_lead(session, **base, status="unassigned")
            await self._trace(session, lead.lead_id, "unassigned", now, decision.explanation)
            self.metrics.decisions.labels(
                "unassigned", decision.choice.team_id or "none", q.tier
            ).inc()
            log.error("router.no_eligible_rep", lead_id=lead.lead_id, rule=decision.rule_id)
            return "unassigned"
        assert isinstance(decision, Assigned)
        owner_id, team_id = decision.owner_id, decision.choice.team_id or ""
        open_until = now + timedelta(days=policy.dedupe.open_lead_days)
        await store.insert_lead(
            session,
            **{
                **base,
                "owner_id": owner_id,
                "team_id": team_id,
                "assignment_seq": 1,
                "open_until": open_until,
            },
            status="assigned",
        )
        if domain:
            await store.claim_account(
                session, domain=domain, owner_id=owner_id, lead_id=lead.lead_id
            )
        account_ref = AccountRef(domain=domain, owner_id=account_owner) if domain else None
        earlier = [
            x
            for x in await store.earlier_leads(session, email=email, domain=domain)
            if x != lead.lead_id
        ]
        await self._assign(
            session,
            lead=lead,
            decision=decision,
            seq=1,
            now=now,
            breakdown=breakdown,
            account=account_ref,
            earlier=earlier,
            previous=None,
            reason=None,
        )
        return "assigned"

    async def _assign(
        self,
        session: AsyncSession,
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
        policy = self.policy
        owner_id, team_id = decision.owner_id, decision.choice.team_id or ""
        await store.insert_assignment(
            session,
            lead_id=lead.lead_id,
            seq=seq,
            owner_id=owner_id,
            team_id=team_id,
            rule_id=decision.rule_id,
            strategy=decision.strategy,
            reason=decision.choice.reason,
            previous_owner_id=previous,
            assigned_at=now,
            due_at=decision.due_at,
            policy_version=policy.version_id,
        )
        await store.add_open_leads(session, owner_id, 1)
        await store.save_rr_weights(session, decision.choice.rr_weights)
        team = policy.team(team_id)
        found = policy.rep(owner_id)
        assert team is not None and found is not None
        rep = found[1]
        manager_email = team.manager_email_for(rep)
        q = decision.qualification
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
                strategy=decision.strategy,
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
            previous_owner=self._person(previous),
            reason=reason,
            policy_version=policy.version_id,
        )
        await self._emit(
            session,
            "lead.assigned",
            lead.lead_id,
            data,
            derived_id(lead.lead_id, "assigned", seq),
            now,
        )
        await self._trace(
            session,
            lead.lead_id,
            "assigned" if seq == 1 else "reassigned",
            now,
            decision.explanation,
            owner_id=owner_id,
            seq=seq,
        )
        self.metrics.decisions.labels(
            "assigned" if seq == 1 else "reassigned", team_id, q.tier
        ).inc()
        self.metrics.assignment_latency.observe(max(0.0, (now - lead.received_at).total_seconds()))

    async def reassign(
        self,
        session: AsyncSession,
        *,
        lead_id: str,
        expected_seq: int | None,
        reason: str,
        now: datetime,
    ) -> bool:
        """Give an assigned lead to another eligible rep with a fresh SLA (seq + 1)."""
        policy = self.policy
        await store.lock_assignments(session)
        row = await store.get_lead(session, lead_id, lock=True)
        if row is None or row.status != "assigned" or row.owner_id is None:
            return False
        if expected_seq is not None and row.assignment_seq != expected_seq:
            return False  # a stale escalation: the lead moved on already
        lead = Lead.model_validate(row.lead)
        decision = decide(
            facts=flatten_lead(row.lead),
            policy=policy,
            states=await store.rep_states(session),
            account_owner_id=None,
            open_lead=None,
            now=now,
            exclude=frozenset({row.owner_id}),
        )
        if not isinstance(decision, Assigned):
            log.warning("router.reassign_impossible", lead_id=lead_id, reason=reason)
            self.metrics.decisions.labels("reassign_failed", row.team_id or "none", "none").inc()
            return False
        seq = row.assignment_seq + 1
        await store.add_open_leads(session, row.owner_id, -1)
        await store.update_owner(
            session,
            lead_id=lead_id,
            owner_id=decision.owner_id,
            team_id=decision.choice.team_id or "",
            seq=seq,
        )
        breakdown = [
            RuleScore(
                rule_id=r.rule_id,
                category=r.category,
                points=r.points,
                matched=r.matched,
                reason=r.reason,
            )
            for r in decision.qualification.breakdown
        ]
        await self._assign(
            session,
            lead=lead,
            decision=decision,
            seq=seq,
            now=now,
            breakdown=breakdown,
            account=None,
            earlier=[],
            previous=row.owner_id,
            reason=reason,
        )
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

    def _person(self, rep_id: str | None) -> Person | None:
        found = self.policy.rep(rep_id) if rep_id else None
        if found is None:
            return None
        rep = found[1]
        return Person(id=rep.id, name=rep.name, email=rep.email)

    async def _emit(
        self,
        session: AsyncSession,
        type_: str,
        lead_id: str,
        data: Any,
        event_id: str,
        now: datetime,
    ) -> None:
        event = make_event(
            type=type_, source=EVENT_SOURCE, subject=lead_id, data=data, id=event_id, time=now
        )
        await self.outbox.add(session, topic=self.assigned_topic, event=event)

    async def _trace(
        self,
        session: AsyncSession,
        lead_id: str,
        kind: str,
        now: datetime,
        lines: Any,
        **extra: Any,
    ) -> None:
        await store.record_decision(
            session,
            lead_id=lead_id,
            kind=kind,
            policy_version=self.policy.version_id,
            at=now,
            trace={"explanation": list(lines), **extra},
        )
