"""An owner whose out-of-office period starts does not sit on leads nobody has worked yet:
with the team's (or rep's) `reassign_on_out_of_office`, the ticker reassigns them at the
period's start (within one tick) to another eligible rep, with a fresh SLA and `lead.assigned`
saying why; a lead nobody else can take is parked (`lead.parked`) and retried.

"Unworked" = open and no `contacted` activity seen by the router (`leads.contacted_at`).
Idempotent: each (rep, period start) is acted on once (`router.ooo_handled`), under the
assignment lock, so several router instances and every later tick leave it alone; a period
added by a policy reload after it started is acted on at the next tick.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from services.router import store, store_recovery
from shared.logs import get_logger
from shared.policy import OutOfOffice, Policy, Rep

if TYPE_CHECKING:  # the ticker passes the service in
    from services.router.service import RouterService

log = get_logger(__name__)


def started(policy: Policy, now: datetime) -> list[tuple[Rep, OutOfOffice]]:
    """(rep, period) for each period under way now whose rep's leads are to be reassigned."""
    return [
        (rep, period)
        for team in policy.teams
        for rep in team.reps
        if team.reassigns_on_out_of_office(rep)
        for period in rep.out_of_office
        if period.from_ <= now < period.until
    ]


async def reassign_out_of_office(
    service: RouterService, session: AsyncSession, *, now: datetime
) -> int:
    """Reassign the unworked leads of every owner whose absence has started; returns how many
    found a new owner (the others are parked and retried)."""
    due = started(service.policy, now)
    if not due:
        return 0
    await store.lock_assignments(session)
    moved = 0
    for rep, period in due:
        if await store_recovery.ooo_handled(session, rep_id=rep.id, starts_at=period.from_):
            continue
        leads = await store_recovery.unworked_leads(session, rep.id)
        reason = f"owner out of office until {period.until.isoformat()}"
        for lead_id, seq in leads:
            moved += await service.reassign(
                session,
                lead_id=lead_id,
                expected_seq=seq,
                reason=reason,
                now=now,
                park_on_failure=True,
            )
        await store_recovery.mark_ooo_handled(
            session, rep_id=rep.id, starts_at=period.from_, at=now, leads=len(leads)
        )
        log.info("router.out_of_office_reassigned", rep_id=rep.id, leads=len(leads))
    return moved
