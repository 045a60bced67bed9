"""Capacity that stays true: the open-lead load every eligibility check reads is a counter
(+1 on assignment, -1 when the lead closes, is reassigned away, parked or erased), and a
counter can drift (a bug, a hand edit, a lost update). Every `RECONCILE_SECONDS` the ticker
recomputes each rep's load from the lead rows and writes back the ones that differ, counting
them in `baton_rep_load_corrections_total` and logging each (rep id, stored, counted), so a
fault never leaves a rep looking full (no leads for them) or empty (a pile-up).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from services.router import store, store_recovery
from shared.logs import get_logger

if TYPE_CHECKING:  # the ticker and the API pass the service in
    from services.router.service import RouterService

log = get_logger(__name__)
RECONCILE_SECONDS = 300.0
ERASED = "closed_erased"  # the status of an open lead whose contact was erased
# Leads that are open (count against a load, wait for an owner, or are kept with marketing
# until their re-engagement): an outcome activity ends them.
OPEN_STATUSES = ("assigned", store_recovery.PARKED, "nurtured")
# An erasure also ends a lead parked on arrival (it would be routed without its data).
ERASABLE = (*OPEN_STATUSES, "unassigned")


async def reconcile_loads(service: RouterService, session: AsyncSession) -> list[str]:
    """Rewrite every drifted rep load from the rows; returns the reps corrected."""
    await store.lock_assignments(session)  # no decision in flight changes a load meanwhile
    locked = await store_recovery.lock_loads(session)
    drifted = await store_recovery.load_differences(session, locked)
    await store_recovery.set_loads(session, [(rep, counted) for rep, _, counted in drifted])
    for rep_id, stored, counted in drifted:
        log.warning("router.load_corrected", rep_id=rep_id, stored=stored, counted=counted)
    if drifted:
        service.metrics.load_corrections.inc(len(drifted))
    return [rep for rep, _, _ in drifted]


async def close_lead(
    session: AsyncSession,
    *,
    lead_id: str,
    status: str,
    at: datetime,
    statuses: tuple[str, ...] = OPEN_STATUSES,
) -> bool:
    """End a lead in one of ``statuses`` (an outcome, an erasure): it no longer counts against
    its owner's capacity. False when it was not open (unknown, closed, merged)."""
    row = await store.get_lead(session, lead_id, lock=True)
    if row is None or row.status not in statuses or row.closed_at is not None:
        return False
    await store.close_lead(session, lead_id=lead_id, status=status, at=at)
    if row.owner_id:
        await store.add_open_leads(session, row.owner_id, -1)
    return True


async def close_erased(session: AsyncSession, *, lead_ids: list[str], at: datetime) -> None:
    """An erased contact's leads end, by request or by the retention purge: nobody can
    contact them any more, so they stop counting against their owners' capacity (status
    `closed_erased`); a lead parked on arrival is not routed with its data gone either."""
    for lead_id in lead_ids:
        await close_lead(session, lead_id=lead_id, status=ERASED, at=at, statuses=ERASABLE)
