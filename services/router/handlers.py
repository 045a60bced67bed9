"""Router consumers: one function per event type, each a service call in the given session."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.router import availability, nurture
from services.router.service import RouterService
from shared.events import CloudEvent, Lead, LeadActivity, LeadEscalated, LeadReengage, utcnow
from shared.runtime import EventFn, EventsFn, in_runs

CLOSING = {"converted": "converted", "disqualified": "closed_disqualified", "not_ready": "nurture"}


def build(service: RouterService) -> EventFn:
    async def on_received(session: AsyncSession, event: CloudEvent) -> None:
        await service.on_received(session, lead=Lead.model_validate(event.data), now=utcnow())

    async def on_escalated(session: AsyncSession, event: CloudEvent) -> None:
        esc = LeadEscalated.model_validate(event.data)
        await availability.on_missed_sla(service, session, esc=esc, now=utcnow())
        if esc.action == "reassign":
            await service.reassign(
                session,
                lead_id=esc.lead_id,
                expected_seq=esc.assignment_seq,
                reason=f"SLA escalation level {esc.level}",
                now=utcnow(),
            )

    async def on_activity(session: AsyncSession, event: CloudEvent) -> None:
        act = LeadActivity.model_validate(event.data)
        await availability.on_acted(service, session, act=act, now=utcnow())
        if act.type == "rejected":
            await service.reassign(
                session,
                lead_id=act.lead_id,
                expected_seq=None,
                reason=f"rejected by owner: {act.reason}" if act.reason else "rejected by owner",
                now=utcnow(),
                actor=act.actor,
            )
        elif act.type in CLOSING:
            await service.close(session, lead_id=act.lead_id, status=CLOSING[act.type], at=act.at)

    async def on_reengage(session: AsyncSession, event: CloudEvent) -> None:
        data = LeadReengage.model_validate(event.data)
        await nurture.reengage(service, session, event=data, now=utcnow())

    table: dict[str, EventFn] = {
        "lead.received": on_received,
        "lead.reengage": on_reengage,
        "lead.escalated": on_escalated,
        "lead.activity": on_activity,
    }

    async def dispatch(session: AsyncSession, event: CloudEvent) -> None:
        fn = table.get(event.type)
        if fn is not None:
            await fn(session, event)

    return dispatch


def build_many(service: RouterService) -> EventsFn:
    """A fetched batch in one transaction: runs of `lead.received` are decided together
    (`on_received_many`), anything else goes through the per-event table in its place."""

    async def received(session: AsyncSession, events: list[CloudEvent]) -> None:
        leads = [Lead.model_validate(event.data) for event in events]
        await service.on_received_many(session, leads=leads, now=utcnow())

    return in_runs("lead.received", received, build(service))
