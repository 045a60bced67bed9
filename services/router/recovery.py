"""No lead left behind a closed clock: what happens when a reassignment finds nobody, and the
retry that gives the lead to someone as soon as anyone can take it.

A reassignment that finds nobody (an escalation `reassign`, a rejection, the owner's
out-of-office start) is remembered in `router.pending_reassignments` and retried by the
ticker, in its own savepoint per lead (a retry that still finds nobody is rolled back and
leaves no trace). When the owner cannot keep the lead (they rejected it, or they are away) it
is also parked: no owner, one open lead less for them, and `lead.parked` for the team's
manager. An escalation that finds nobody leaves the lead with its owner meanwhile: someone is
still responsible for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from services.router import store, store_recovery
from services.router.domain import parking
from services.router.domain.decision import Assigned, Decision, Unassigned, decide
from services.router.domain.facts import flatten_lead
from services.router.domain.handoff import REENGAGED
from services.router.domain.outcomes import EVENT_SOURCE
from shared.events import Lead, make_event
from shared.logs import get_logger
from shared.policy import Policy

if TYPE_CHECKING:  # the service calls this module: import it for types only
    from services.router.service import RouterService

log = get_logger(__name__)


async def after_failed_reassign(
    service: RouterService,
    session: AsyncSession,
    *,
    row: store.LeadRow,
    decision: Decision,
    reason: str,
    park: bool,
    now: datetime,
    policy: Policy | None = None,
) -> None:
    """Nobody else could take ``row``'s lead (``decision``, under ``policy``: the one the
    caller decided with, else the live one): retry later; with ``park``, park it now."""
    policy = policy or service.policy
    if not isinstance(decision, Unassigned):
        return  # disqualified under a newer policy: nothing to retry
    await store_recovery.add_pending(
        session,
        lead_id=row.lead_id,
        seq=row.assignment_seq,
        exclude_rep=row.owner_id,
        reason=reason,
        now=now,
    )
    if not park or row.owner_id is None:
        return
    await store_recovery.park_lead(session, row.lead_id)
    await store.add_open_leads(session, row.owner_id, -1)
    event_id = parking.parked_id(row.lead_id, row.assignment_seq)
    await _announce_park(service, session, policy, row=row, decision=decision, reason=reason,
                         event_id=event_id, now=now)  # fmt: skip


async def park_reengaged(
    service: RouterService,
    session: AsyncSession,
    *,
    row: store.LeadRow,
    decision: Unassigned,
    policy: Policy,
    now: datetime,
) -> None:
    """A re-engaged lead (nurtured, or closed by its owner as not ready) that nobody can take
    is parked and its reassignment retried, never left silently where it was. Its load went
    back when it was closed (a nurtured lead never had any); the retry goes to sales (it never
    returns it to nurture) with the reason "reengaged"."""
    open_until = now + timedelta(days=policy.dedupe.open_lead_days)
    team = parking.parked_team(policy, decision)
    await store.update_routed(
        session, lead_id=row.lead_id, status=store_recovery.PARKED, owner_id=None,
        team_id=team.id, closed_at=None, open_until=open_until,
    )  # fmt: skip
    await store_recovery.add_pending(
        session,
        lead_id=row.lead_id,
        seq=row.assignment_seq,
        exclude_rep=None,  # the previous owner may take it back once eligible
        reason=REENGAGED,
        now=now,
    )
    event_id = parking.reengage_parked_id(row.lead_id, row.assignment_seq)
    await _announce_park(service, session, policy, row=row, decision=decision, reason=REENGAGED,
                         event_id=event_id, now=now)  # fmt: skip


async def _announce_park(
    service: RouterService,
    session: AsyncSession,
    policy: Policy,
    *,
    row: store.LeadRow,
    decision: Unassigned,
    reason: str,
    event_id: str,
    now: datetime,
) -> None:
    """`lead.parked` for the team's manager, the parked counter and the log line."""
    lead = Lead.model_validate(row.lead)
    data = parking.parked_event(policy, lead=lead, decision=decision, now=now, reason=reason)
    event = make_event(
        type="lead.parked", source=EVENT_SOURCE, subject=row.lead_id, data=data, id=event_id,
        time=now,
    )  # fmt: skip
    await service.outbox.add(session, topic=service.assigned_topic, event=event)
    team = data.team.id
    service.metrics.decisions.labels("parked", team, decision.qualification.tier).inc()
    log.warning(
        "router.lead_parked", lead_id=row.lead_id, seq=row.assignment_seq, team=team, why=reason
    )


async def retry_reassignments(
    service: RouterService, session: AsyncSession, *, now: datetime, limit: int = 100
) -> int:
    """Retry the pending reassignments, oldest first; returns how many found an owner.

    A lead that moved on meanwhile (closed, reassigned, disqualified) is dropped from the
    list; one that still finds nobody stays for the next tick.
    """
    moved = 0
    await store.lock_assignments(session)  # before any lead row, the order `reassign` takes
    for item in await store_recovery.pending(session, limit=limit):
        attempt = await session.begin_nested()
        outcome = await _retry(service, session, item, now=now)
        if outcome == "waiting":
            await attempt.rollback()
            continue
        await store_recovery.drop_pending(session, item.lead_id)
        await attempt.commit()
        if outcome == "reassigned":
            moved += 1
            log.info("router.reassignment_retried", lead_id=item.lead_id, seq=item.seq)
    await refresh_parked_gauge(service, session)
    return moved


async def refresh_parked_gauge(service: RouterService, session: AsyncSession) -> None:
    """`baton_leads_parked`: parked on arrival plus parked after an assignment; and
    `baton_reassignments_pending`."""
    pending, parked = await store_recovery.count_pending(session)
    service.metrics.parked.set(await store.count_parked(session) + parked)
    service.metrics.pending_reassignments.set(pending)


async def _retry(
    service: RouterService, session: AsyncSession, item: store_recovery.Pending, *, now: datetime
) -> str:
    """ "reassigned", "waiting" (still nobody) or "dropped" (the lead moved on)."""
    row = await store.get_lead(session, item.lead_id, lock=True)
    if row is None or row.closed_at is not None or row.assignment_seq != item.seq:
        return "dropped"
    if row.status not in ("assigned", store_recovery.PARKED):
        return "dropped"
    return await _assign_pending(service, session, row=row, item=item, now=now)


async def _assign_pending(
    service: RouterService,
    session: AsyncSession,
    *,
    row: store.LeadRow,
    item: store_recovery.Pending,
    now: datetime,
) -> str:
    """Assignment ``item.seq`` + 1, never to the rep it is taken from (the owner, or the rep
    who rejected a parked lead), with `lead.assigned` naming them as the previous owner. Found
    nobody: "waiting", and nothing is recorded or counted (the caller rolls back)."""
    policy = service.policy
    states = await store.rep_states(session)
    decision = decide(
        facts=flatten_lead(row.lead),
        policy=policy,
        states=states,
        account_owner_id=None,
        open_lead=None,
        now=now,
        exclude=frozenset({item.exclude_rep}) if item.exclude_rep else frozenset(),
        to_sales=True,  # sales had the lead (or it was re-engaged): never back to nurture
    )
    if not isinstance(decision, Assigned):
        return "waiting"
    rec = service._recording(store.Writes(), policy, now)
    await service._record_reassignment(
        session,
        rec,
        row=row,
        lead=Lead.model_validate(row.lead),
        decision=decision,
        reason=item.reason,
        states=states,
        previous=item.exclude_rep,
    )
    return "reassigned"
