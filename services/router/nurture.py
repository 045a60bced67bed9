"""The nurture track in the router: a new touch on a nurtured lead, and `lead.reengage`.

A touch from a contact whose lead is nurtured is merged into it and the lead is decided again
on everything now known (`domain.handoff.touch`); crossing the handoff threshold hands it to
sales at once. On its re-engagement date (`lead.reengage`, from followup) a nurtured lead, or
one an owner marked not ready, is routed afresh under the current policy: its previous owner
keeps it while eligible, otherwise the rules decide (nurture rules skipped), with a fresh SLA
and a `lead.assigned` whose reason is "reengaged".

Both run under the assignment lock like every decision; the rows and events go through the
same `Writes`, and the stored lead's own row is updated with `store.update_routed`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from services.router import recovery, store
from services.router.domain import handoff
from services.router.domain.accounts import business_domain, match_account
from services.router.domain.decision import (
    Assigned,
    Disqualified,
    Merged,
    Nurtured,
    decide,
)
from services.router.domain.facts import flatten_lead
from shared.events import Lead, LeadReengage
from shared.logs import get_logger
from shared.policy import Policy

if TYPE_CHECKING:
    from services.router.service import RouterService

log = get_logger(__name__)

NURTURED = "nurtured"  # router.leads.status of a lead a routing rule keeps with marketing
REENGAGEABLE = (NURTURED, "nurture")  # "nurture": closed by its owner as not_ready


def is_nurtured(row: store.LeadRow | None) -> bool:
    return row is not None and row.status == NURTURED


def touch(
    service: RouterService,
    writes: store.Writes,
    policy: Policy,
    *,
    lead: Lead,
    inputs: store.DecisionInputs,
    now: datetime,
) -> tuple[str, dict[str, object]]:
    """A new touch on the contact's nurtured lead (``inputs.open_lead``): the outcome and
    the nurtured lead's new row values (the caller writes them with `store.update_routed`)."""
    row = inputs.open_lead
    assert row is not None and row.status == NURTURED
    touch_doc = lead.model_dump(mode="json")
    kept_doc = handoff.merge_touch(row.lead, touch_doc)
    kept = Lead.model_validate(kept_doc)
    domain = business_domain(kept)
    learned = inputs.account_owner if domain == business_domain(lead) else None
    account = match_account(policy, domain, learned)
    decision = decide(
        facts=flatten_lead(kept_doc),
        policy=policy,
        states=inputs.states,
        account_owner_id=account.owner_id if account else None,
        open_lead=None,
        now=now,
    )
    assert not isinstance(decision, Merged)  # no open lead was given
    touched = handoff.touch(
        service._recording(writes, policy, now),
        touch=lead,
        touch_doc=touch_doc,
        kept=kept,
        kept_doc=kept_doc,
        decision=decision,
        domain=domain,
        account=account,
        earlier=[lead_id for lead_id, _ in inputs.earlier if lead_id != row.lead_id],
        matched_on=inputs.matched_on,
    )
    for recorded in touched.counted:
        service._count(recorded)
    outcome = touched.counted[1].outcome
    stage = decision.qualification.stage
    service.metrics.leads_decided.labels(outcome, stage, kept.channel, kept.source).inc()
    log.info("router.nurture_touch", lead_id=row.lead_id, touch_id=lead.lead_id, outcome=outcome)
    return outcome, touched.row


async def reengage(
    service: RouterService, session: AsyncSession, *, event: LeadReengage, now: datetime
) -> str:
    """Route a nurtured or not-ready lead afresh on its re-engagement date; the outcome.

    Idempotent: a redelivered event is dropped by the inbox, and a lead that is no longer
    nurtured or not ready (a touch handed it over, an earlier re-engagement) is left alone.
    """
    policy = service.policy
    await store.lock_assignments(session)
    row = await store.get_lead(session, event.lead_id, lock=True)
    if row is None or row.status not in REENGAGEABLE:
        log.info("router.reengage_ignored", lead_id=event.lead_id, status=row and row.status)
        return "ignored"
    lead = Lead.model_validate(row.lead)
    domain = business_domain(lead)
    account = await service.account_match(session, policy, domain)
    states = await store.rep_states(session)
    decision = decide(
        facts=flatten_lead(row.lead),
        policy=policy,
        states=states,
        account_owner_id=account.owner_id if account else None,
        open_lead=None,
        now=now,
        to_sales=True,
        keep_owner=row.owner_id,
    )
    writes = store.Writes()
    rec = service._recording(writes, policy, now)
    if isinstance(decision, Disqualified):  # the policy changed meanwhile: closed, and said
        service._count(
            handoff.reengage_disqualified(
                rec, lead=lead, source=lead.source, decision=decision, at=now
            )
        )
        await store.write(session, writes)
        await service.close(session, lead_id=row.lead_id, status="closed_disqualified", at=now)
        log.info("router.reengage_disqualified", lead_id=row.lead_id, rule_id=decision.rule_id)
        return "reengage_disqualified"
    if not isinstance(decision, Assigned):
        assert not isinstance(decision, Merged | Nurtured)  # reengaged: no nurture
        service._count(handoff.reengage_failed(rec, lead_id=row.lead_id, decision=decision, at=now))
        await store.write(session, writes)
        # parked and retried, never silent
        await recovery.park_reengaged(
            service, session, row=row, decision=decision, policy=policy, now=now
        )
        return "reengage_parked"
    seq = row.assignment_seq + 1
    if domain:
        writes.accounts.append((domain, decision.owner_id, row.lead_id))
    recorded = handoff.assign(
        rec,
        lead=lead,
        decision=decision,
        seq=seq,
        account=account,
        earlier=await store.earlier_leads(
            session,
            email=lead.contact.email,
            phone=lead.contact.phone,
            domain=domain,
            exclude=row.lead_id,
        ),
        previous=row.owner_id,
        reason=handoff.REENGAGED,
        kind=handoff.REENGAGED,
    )
    service._count(recorded)
    stage = decision.qualification.stage
    service.metrics.leads_decided.labels(recorded.outcome, stage, lead.channel, lead.source).inc()
    await store.update_routed(
        session, lead_id=row.lead_id, **handoff.assigned_row(rec, decision, seq=seq)
    )
    await store.write(session, writes)
    service.update_team_gauges(policy, writes.applied_to(states), now)
    log.info("router.reengaged", lead_id=row.lead_id, owner=decision.owner_id, seq=seq)
    return handoff.REENGAGED
