"""Router's service layer: turn `lead.received` into one decision, recorded with its events.

The decision itself is pure (`domain.decision.decide`), and so is turning it into rows,
events and a trace (`domain.outcomes`); this layer loads what they need, holds the
assignment lock, writes what they produce in the caller's transaction and counts it.

One policy object is captured at the start of each call and threaded through everything it
writes, so a reload landing mid-decision never mixes two versions in one decision: the
decision row, the assignment and the event all carry the version that decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.router import erasure, nurture, reconcile, recovery, store
from services.router.batching import RunOverlay, keys_of, runs
from services.router.domain import account_moves, outcomes
from services.router.domain.accounts import AccountMatch, business_domain, match_account
from services.router.domain.assignment import RepState, eligible, state_of
from services.router.domain.decision import Assigned, Merged, Unassigned, decide
from services.router.domain.facts import flatten_lead
from services.router.domain.outcomes import Recorded, Recording
from services.router.metrics import RouterMetrics
from shared.db import Outbox, WriteBehind
from shared.errors import DomainError
from shared.events import Lead
from shared.logs import get_logger
from shared.policy import Policy, PolicyError, load_policy

log = get_logger(__name__)


@dataclass
class PolicyHolder:
    """The live policy; swapped atomically on reload (one attribute assignment)."""

    policy: Policy


class InvalidPolicy(DomainError):
    status = 422
    type_slug = "invalid-policy"
    title = "Invalid routing policy"


def _field_error(error: str) -> dict[str, str]:
    """ "teams[0].reps[1].timezone: unknown time zone" -> {name, message} for problem+json."""
    name, sep, message = error.partition(": ")
    return {"name": name, "message": message} if sep else {"name": "policy", "message": error}


@dataclass
class RouterService:
    holder: PolicyHolder
    outbox: Outbox
    metrics: RouterMetrics
    assigned_topic: str
    erased_topic: str  # contacts.erased: where a lead erased on arrival is announced
    status_topic: str = "reps.status"  # rep.paused / rep.resumed
    # Leads per write statement: a run's decisions are written in chunks, each statement in
    # flight while the next chunk is decided (PostgreSQL and Python each on their own core).
    write_chunk: int = 50

    @property
    def policy(self) -> Policy:
        return self.holder.policy

    def reload_policy(self, path: str | Path) -> dict[str, str]:
        """Load and validate the policy file again and make it live (the reload endpoint and
        SIGHUP both call this); an invalid file raises `InvalidPolicy` naming the fields and
        the current policy stays live."""
        holder = self.holder
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            self.metrics.policy_reloads.labels("invalid").inc()
            raise InvalidPolicy(
                f"the policy file was not loaded; version {holder.policy.version_id} stays "
                f"live: {exc}",
                fields=[_field_error(e) for e in exc.errors],
            ) from exc
        previous = holder.policy.version_id
        holder.policy = policy  # atomic swap: in-flight decisions keep the object they started with
        self.metrics.policy_reloads.labels("ok").inc()
        self.metrics.record_policy(policy.version_id)
        return {"previous_version": previous, "version": policy.version_id, "label": policy.label}

    # --- lead.received ---------------------------------------------------------------------

    async def on_received(
        self, session: AsyncSession, *, lead: Lead, now: datetime, parked_retry: bool = False
    ) -> str:
        """Merge, disqualify, assign or leave unassigned; returns the outcome.

        Safe under redelivery and concurrent delivery to several instances: the lead row is
        checked under the assignment lock, so the second delivery finds it and does nothing
        ("duplicate").
        """
        decided = await self.on_received_many(
            session, leads=[lead], now=now, parked_retry=parked_retry
        )
        return decided[0]

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
        account claimed, the leads stored under it) is applied from memory (`RunOverlay`).
        The outcome is the same as deciding them one by one (tests/router/test_router_batch.py).
        """
        policy = self.policy  # one policy for the whole batch, even if a reload lands now
        await store.lock_assignments(session)
        erased = await self._erase_in_flight(session, leads=leads, now=now)
        decided: list[str] = []
        for run in runs([(lead, keys_of(lead)) for lead in leads if lead.lead_id not in erased]):
            decided += await self._decide_run(
                session, policy, run=run, now=now, parked_retry=parked_retry
            )
        if not erased:
            return decided
        rest = iter(decided)
        return ["erased" if ld.lead_id in erased else next(rest) for ld in leads]

    async def _decide_run(
        self,
        session: AsyncSession,
        policy: Policy,
        *,
        run: list[tuple[Lead, store.LeadKeys]],
        now: datetime,
        parked_retry: bool,
    ) -> list[str]:
        """One run (`runs`): one read, decisions in memory, written in chunks behind."""
        inputs = await store.decision_inputs(session, leads=[k for _, k in run], now=now)
        decided: list[str] = []
        writes = store.Writes()
        states = inputs[0].states
        overlay = RunOverlay()
        async with WriteBehind() as behind:
            for (lead, keys), found in zip(run, inputs, strict=True):
                if found.seen:  # decided already (a redelivery, or a concurrent delivery won)
                    decided.append("duplicate")
                    continue
                mark = overlay.mark(writes)
                found = overlay.apply(found, keys.domain, writes.applied_to(states))
                if nurture.is_nurtured(found.open_lead):  # a new touch: re-decide that lead
                    outcome, row = nurture.touch(
                        self, writes, policy, lead=lead, inputs=found, now=now
                    )
                    assert found.open_lead is not None
                    lead_id = found.open_lead.lead_id
                    await behind.submit(store.update_routed(session, lead_id=lead_id, **row))
                    decided.append(outcome)
                else:
                    decided.append(
                        self._decide_received(
                            writes,
                            policy,
                            lead=lead,
                            inputs=found,
                            now=now,
                            parked_retry=parked_retry,
                        )
                    )
                    if decided[-1] == "merged":  # its new facts reach the open lead
                        overlay.merged(writes, found, lead)
                overlay.record(writes, mark, lead)
                if len(writes.leads) >= self.write_chunk:  # written while the next are decided
                    await behind.submit(store.write(session, writes))
                    states, writes = writes.applied_to(states), store.Writes()
            if writes.leads or writes.decisions:
                await behind.submit(store.write(session, writes))
        self.update_team_gauges(policy, writes.applied_to(states), now)
        return decided

    async def _erase_in_flight(
        self, session: AsyncSession, *, leads: list[Lead], now: datetime
    ) -> set[str]:
        """`erasure.erase_in_flight`, counted as decisions with the outcome "erased"."""
        lead_ids = await erasure.erase_in_flight(
            session, outbox=self.outbox, topic=self.erased_topic, leads=leads, now=now
        )
        if lead_ids:
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
        domain = business_domain(lead)
        account = match_account(policy, domain, inputs.account_owner)
        decision = decide(
            facts=flatten_lead(doc),
            policy=policy,
            states=inputs.states,
            account_owner_id=account.owner_id if account else None,
            open_lead=inputs.open_lead,
            now=now,
            matched_on=inputs.matched_on,
        )
        gone = account_moves.departed(policy, inputs.account_owner) if not account else None
        if gone and domain and isinstance(decision, Assigned):  # the account moves: say why
            line = account_moves.moved_line(domain, gone, decision.owner_id)
            decision = replace(decision, explanation=(*decision.explanation, line))
            writes.account_moves.append((domain, gone, decision.owner_id, lead.lead_id))
        if parked_retry and isinstance(decision, Unassigned):
            return "unassigned"  # still parked: the caller rolls back, nothing is recorded
        recorded = outcomes.received(
            self._recording(writes, policy, now),
            lead=lead,
            doc=doc,
            decision=decision,
            domain=domain,
            account=account,
            open_team=inputs.open_lead.team_id if inputs.open_lead else None,
            earlier=[lead_id for lead_id, _ in inputs.earlier],
        )
        self._count(recorded)
        if not isinstance(decision, Merged):  # each lead once: the share per channel and source
            stage = decision.qualification.stage
            self.metrics.leads_decided.labels(
                recorded.outcome, stage, lead.channel, lead.source
            ).inc()
        if isinstance(decision, Unassigned):
            log.error("router.no_eligible_rep", lead_id=lead.lead_id, rule=decision.rule_id)
        elif recorded.outcome == "assigned":
            waited = (now - lead.received_at).total_seconds()
            self.metrics.assignment_latency.observe(max(0.0, waited))
        return recorded.outcome

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
        park_on_failure: bool = False,
    ) -> bool:
        """Give an assigned lead to another eligible rep with a fresh SLA (seq + 1).

        ``expected_seq`` (from an escalation) must be the lead's current assignment, else the
        escalation is stale and ignored. ``actor`` (from a rejection) must be the current owner
        when it names one of the policy's reps, so a late rejection by an earlier owner does
        not take the lead away from the rep who has it now. If nobody can take it, the
        reassignment is retried by the ticker; a rejected lead (``actor``) or one whose owner
        is away (``park_on_failure``) is parked meanwhile (`recovery.after_failed_reassign`).
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
        rec = self._recording(writes, policy, now)
        if not isinstance(decision, Assigned):
            log.warning("router.reassign_impossible", lead_id=lead_id, reason=reason)
            failed = outcomes.reassign_failed(
                rec,
                lead_id=lead_id,
                decision=decision,
                reason=reason,
                owner_id=row.owner_id,
                team_id=row.team_id,
                seq=row.assignment_seq,
            )
            self._count(failed)
            await store.write(session, writes)
            await recovery.after_failed_reassign(
                self,
                session,
                row=row,
                decision=decision,
                reason=reason,
                park=park_on_failure or actor is not None,
                now=now,
                policy=policy,
            )
            return False
        await self._record_reassignment(
            session, rec, row=row, lead=lead, decision=decision, reason=reason, states=states
        )
        return True

    async def _record_reassignment(
        self,
        session: AsyncSession,
        rec: Recording,
        *,
        row: store.LeadRow,
        lead: Lead,
        decision: Assigned,
        reason: str,
        states: Mapping[str, RepState],
        previous: str | None = None,
    ) -> None:
        """The lead moves from its owner to the decision's: one open lead less for the
        previous owner, the lead row updated, and the assignment written. A parked lead has
        no owner (its load went back when it was parked): ``previous`` names who had it."""
        previous = previous or row.owner_id
        domain = business_domain(lead)
        seq = row.assignment_seq + 1
        if row.owner_id is not None:
            rec.writes.add_open(row.owner_id, -1)
        await store.update_owner(
            session,
            lead_id=row.lead_id,
            owner_id=decision.owner_id,
            team_id=decision.choice.team_id or "",
            seq=seq,
        )
        recorded = outcomes.assignment(
            rec,
            lead=lead,
            decision=decision,
            seq=seq,
            account=await self.account_match(session, rec.policy, domain),
            earlier=await store.earlier_leads(
                session,
                email=lead.contact.email,
                phone=lead.contact.phone,
                domain=domain,
                exclude=row.lead_id,
            ),
            previous=previous,
            reason=reason,
        )
        self._count(recorded)
        await store.write(session, rec.writes)
        self.update_team_gauges(rec.policy, rec.writes.applied_to(states), rec.now)

    async def close(
        self, session: AsyncSession, *, lead_id: str, status: str, at: datetime
    ) -> None:
        """An outcome activity ends the lead: it no longer counts against its owner's capacity."""
        await reconcile.close_lead(session, lead_id=lead_id, status=status, at=at)

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

    def _recording(self, writes: store.Writes, policy: Policy, now: datetime) -> Recording:
        return Recording(writes=writes, policy=policy, topic=self.assigned_topic, now=now)

    def _count(self, recorded: Recorded) -> None:
        self.metrics.decisions.labels(recorded.outcome, recorded.team, recorded.tier).inc()
        if recorded.scored:
            self.metrics.scored.labels(recorded.team, recorded.tier).inc()
