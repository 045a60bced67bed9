"""Followup consumers: one function per event type, each a session and a service call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.service import FollowupService
from shared.events import (
    CloudEvent,
    ContactErased,
    LeadActivity,
    LeadAssigned,
    LeadDisqualified,
    LeadMerged,
    LeadNurtured,
    LeadParked,
)
from shared.runtime import EventFn, EventsFn, in_runs


def build(service: FollowupService, on_clock_started: Callable[[datetime | None], None]) -> EventFn:
    """`on_clock_started(first_fire_at)`: tells the ticker when the new clock (an SLA clock,
    a waiting clock, a re-engagement) is first due."""

    async def on_assigned(session: AsyncSession, event: CloudEvent) -> None:
        started = await service.on_assigned(session, event=LeadAssigned.model_validate(event.data))
        if started is not None:
            on_clock_started(started.next_fire_at)

    async def on_activity(session: AsyncSession, event: CloudEvent) -> None:
        activity = LeadActivity.model_validate(event.data)
        await service.record_activity(
            session,
            activity=activity,
            activity_id=activity.activity_id or event.id,
            require_known=False,  # kept pending; dead-lettered if never assigned (see docs)
            source_event_id=event.id,
        )

    async def on_erased(session: AsyncSession, event: CloudEvent) -> None:
        await service.on_erased(session, event=ContactErased.model_validate(event.data))

    async def on_nurtured(session: AsyncSession, event: CloudEvent) -> None:
        data = LeadNurtured.model_validate(event.data)
        at = await service.on_nurtured(session, event=data, event_id=event.id)
        if at is not None:
            on_clock_started(at)

    async def on_parked(session: AsyncSession, event: CloudEvent) -> None:
        data = LeadParked.model_validate(event.data)
        due = await service.on_parked(session, event=data, event_id=event.id)
        if due is not None:
            on_clock_started(due)

    async def on_disqualified(session: AsyncSession, event: CloudEvent) -> None:
        lead_id = LeadDisqualified.model_validate(event.data).lead_id
        await service.on_lead_closed(session, lead_id=lead_id)

    async def on_merged(session: AsyncSession, event: CloudEvent) -> None:
        await service.on_lead_closed(session, lead_id=LeadMerged.model_validate(event.data).lead_id)

    table: dict[str, EventFn] = {
        "lead.assigned": on_assigned,
        "lead.activity": on_activity,
        "contact.erased": on_erased,
        "lead.nurtured": on_nurtured,
        "lead.parked": on_parked,
        "lead.disqualified": on_disqualified,
        "lead.merged": on_merged,
    }

    async def dispatch(session: AsyncSession, event: CloudEvent) -> None:
        fn = table.get(event.type)
        if fn is not None:
            await fn(session, event)

    return dispatch


def build_many(
    service: FollowupService, on_clock_started: Callable[[datetime | None], None]
) -> EventsFn:
    """A fetched batch in one transaction (one inbox statement, one COMMIT), in fetch order:
    runs of `lead.assigned` start their clocks together (`on_assigned_many`, one statement
    per run), anything else goes through the per-event function in its place, so the outcome
    is the one-at-a-time outcome. A batch that fails is replayed one event per transaction by
    the consumer, so only a bad event is dead-lettered."""

    async def assigned(session: AsyncSession, events: list[CloudEvent]) -> None:
        batch = [LeadAssigned.model_validate(event.data) for event in events]
        for sched in await service.on_assigned_many(session, events=batch):
            if sched is not None:
                on_clock_started(sched.next_fire_at)

    return in_runs("lead.assigned", assigned, build(service, on_clock_started))
