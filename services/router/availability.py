"""A rep who keeps missing SLAs is paused for new leads until they act or a manager resumes
them (Distribution Engine does the same), so leads stop piling up behind someone who is not
working them.

Missed = a level-1 `lead.escalated` for a lead the rep still owns (followup fires level 1 when
the first-contact deadline passes). The count is consecutive: a `contacted` or `accepted`
activity by the rep resets it and lifts a pause. At the team's `pause_after_missed_slas` in a
row the rep is paused: eligibility says "paused: missed N SLAs in a row", `rep.paused` goes
out on `reps.status`, and `baton_rep_pauses_total` counts it. Their open leads stay theirs.

Every writer of `rep_state` holds the assignment lock first (`store.lock_assignments`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.router import store, store_recovery, store_reps
from services.router.domain.outcomes import EVENT_SOURCE
from shared.errors import DomainError
from shared.events import (
    LeadActivity,
    LeadEscalated,
    Person,
    RepPaused,
    RepResumed,
    TeamRef,
    derived_id,
    make_event,
)
from shared.logs import get_logger
from shared.policy import Policy, Rep, Team

if TYPE_CHECKING:  # the service's callers call this module: import it for types only
    from services.router.service import RouterService

log = get_logger(__name__)
ACTED = ("contacted", "accepted")


class RepNotFound(DomainError):
    status = 404
    type_slug = "rep-not-found"
    title = "Rep not found"


def pause_reason(missed: int) -> str:
    return f"missed {missed} SLAs in a row"


def _person(rep: Rep) -> Person:
    return Person(id=rep.id, name=rep.name, email=rep.email)


def _found(policy: Policy, rep_id: str | None) -> tuple[Team, Rep] | None:
    return policy.rep(rep_id) if rep_id else None


async def on_missed_sla(
    service: RouterService, session: AsyncSession, *, esc: LeadEscalated, now: datetime
) -> bool:
    """Count a level-1 escalation against the lead's owner; pause them at the team's
    threshold. Returns whether this escalation paused them."""
    policy = service.policy
    owner_id = esc.owner.id if esc.owner else None
    found = _found(policy, owner_id) if esc.level == 1 else None
    if found is None or owner_id is None:
        return False
    await store.lock_assignments(session)
    row = await store.get_lead(session, esc.lead_id)
    if row is None or row.owner_id != owner_id:
        return False  # no longer theirs: a stale clock
    team, rep = found
    state = await store_reps.record_missed(session, owner_id)
    threshold = team.pause_after_missed_slas
    if threshold is None or state.missed_slas < threshold or state.paused_at is not None:
        return False
    reason = pause_reason(state.missed_slas)
    await store_reps.pause(session, rep_id=owner_id, reason=reason, at=now)
    data = RepPaused(
        rep=_person(rep),
        team=TeamRef(id=team.id, name=team.name),
        manager=Person(name=team.manager.name, email=team.manager_email_for(rep)),
        reason=reason,
        missed_slas=state.missed_slas,
        last_lead_id=esc.lead_id,
        paused_at=now,
        policy_version=policy.version_id,
    )
    event_id = derived_id(owner_id, "paused", esc.lead_id, esc.assignment_seq)
    await _emit(service, session, "rep.paused", owner_id, data, event_id, now)
    service.metrics.rep_pauses.labels("missed_slas").inc()
    log.warning("router.rep_paused", rep_id=owner_id, missed=state.missed_slas, team=team.id)
    return True


async def on_acted(
    service: RouterService, session: AsyncSession, *, act: LeadActivity, now: datetime
) -> None:
    """A `contacted` / `accepted` by a rep: their missed-SLA run ends and a pause lifts (and
    the lead counts as worked: an out-of-office start leaves it with them)."""
    if act.type not in ACTED:
        return
    if act.type == "contacted":
        await store_recovery.mark_contacted(session, lead_id=act.lead_id, at=act.at)
    found = _found(service.policy, act.actor)
    if found is None:
        return
    now_state = await store_reps.pause_state(session, act.actor)
    if now_state is None or (now_state.missed_slas == 0 and now_state.paused_at is None):
        return  # the usual case: nothing to reset, so no lock and no write
    await store.lock_assignments(session)
    before = await store_reps.reset(session, act.actor)
    if before is not None and before.paused_at is not None:
        await _resumed(service, session, found, before.paused_at, "activity", act.actor, now)


async def resume(
    service: RouterService, session: AsyncSession, *, rep_id: str, actor: str, now: datetime
) -> dict[str, Any]:
    """A manager lifts a rep's pause (admin API); a rep not paused is left as it is."""
    found = _found(service.policy, rep_id)
    if found is None:
        raise RepNotFound(f"the live policy has no rep {rep_id!r}")
    await store.lock_assignments(session)
    before = await store_reps.reset(session, rep_id)
    was_paused = before is not None and before.paused_at is not None
    if before is not None and before.paused_at is not None:
        await _resumed(service, session, found, before.paused_at, "manager", actor, now)
    return {"rep_id": rep_id, "paused": False, "was_paused": was_paused}


async def _resumed(
    service: RouterService,
    session: AsyncSession,
    found: tuple[Team, Rep],
    paused_at: datetime,
    by: str,
    actor: str,
    now: datetime,
) -> None:
    team, rep = found
    data = RepResumed(
        rep=_person(rep),
        team=TeamRef(id=team.id, name=team.name),
        by="manager" if by == "manager" else "activity",
        actor=actor,
        paused_at=paused_at,
        resumed_at=now,
    )
    event_id = derived_id(rep.id, "resumed", paused_at.isoformat())
    await _emit(service, session, "rep.resumed", rep.id, data, event_id, now)
    service.metrics.rep_resumes.labels(by).inc()
    log.info("router.rep_resumed", rep_id=rep.id, by=by)


async def _emit(
    service: RouterService,
    session: AsyncSession,
    type_: str,
    rep_id: str,
    data: RepPaused | RepResumed,
    event_id: str,
    now: datetime,
) -> None:
    event = make_event(
        type=type_, source=EVENT_SOURCE, subject=rep_id, data=data, id=event_id, time=now
    )
    await service.outbox.add(session, topic=service.status_topic, event=event)


async def pauses(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """Each rep's pause for `GET /v1/admin/reps`: missed SLAs in a row, paused since, why."""
    return {
        rep_id: {
            "missed_slas": s.missed_slas,
            "paused": s.paused_at is not None,
            "paused_at": s.paused_at.isoformat() if s.paused_at else None,
            "paused_reason": s.paused_reason,
        }
        for rep_id, s in (await store_reps.pause_states(session)).items()
    }
