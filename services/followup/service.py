"""Followup's service layer: clocks from assignments, activities, and the escalation tick."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.followup import store
from services.followup.domain.clock import Step, after_firing, apply_activity, first_fire
from services.followup.metrics import FollowupMetrics
from shared.db import Outbox
from shared.events import (
    LeadActivity,
    LeadAssigned,
    LeadEscalated,
    LeadReengage,
    Person,
    derived_id,
    make_event,
)
from shared.http import DomainError
from shared.policy import Policy

EVENT_SOURCE = "/baton/followup"


class LeadNotFound(DomainError):
    status = 404
    type_slug = "lead-not-found"
    title = "Lead not found"


@dataclass
class FollowupService:
    policy: Policy
    outbox: Outbox
    metrics: FollowupMetrics
    escalated_topic: str
    activity_topic: str

    def chain(self) -> list[dict[str, Any]]:
        return [
            {"level": s.level, "action": s.action, "after_seconds": s.after_seconds}
            for s in self.policy.escalation
        ]

    async def on_assigned(self, session: AsyncSession, *, event: LeadAssigned) -> bool:
        """Start (or restart, for a newer assignment) the lead's clock; stale ones are ignored."""
        chain = self.chain()
        sched = first_fire(event.sla.due_at, [Step(**s) for s in chain])
        clock = store.ClockRow(
            lead_id=event.lead_id,
            assignment_seq=event.assignment_seq,
            owner=event.owner.model_dump(mode="json"),
            manager=event.manager.model_dump(mode="json") if event.manager else None,
            team_id=event.team.id,
            tier=event.tier,
            window_seconds=event.sla.window_seconds,
            started_at=event.assigned_at,
            due_at=event.sla.due_at,
            status="open",
            next_level=sched.next_level,
            next_fire_at=sched.next_fire_at,
            chain=chain,
            contacted_at=None,
        )
        if not await store.upsert_clock(session, clock):
            return False
        # Activities that arrived before this assignment apply now, as if in order.
        for act in await store.activities_for(session, event.lead_id):
            if act["at"] >= event.assigned_at:
                await self._apply(
                    session,
                    lead_id=event.lead_id,
                    activity_type=act["type"],
                    at=act["at"],
                    reengage_at=act["reengage_at"],
                    note=None,
                )
        return True

    async def record_activity(
        self,
        session: AsyncSession,
        *,
        activity: LeadActivity,
        activity_id: str,
        require_known: bool,
    ) -> bool:
        """Record an activity once; returns False for a repeat of the same activity id."""
        clock = await store.get_clock(session, activity.lead_id, lock=True)
        if clock is None and require_known:
            raise LeadNotFound("no assigned lead with this id")
        other_owner = clock is not None and clock.owner.get("id") != activity.actor
        fresh = await store.record_activity(
            session,
            activity_id=activity_id,
            lead_id=activity.lead_id,
            type=activity.type,
            at=activity.at,
            actor=activity.actor,
            note=activity.note,
            reengage_at=activity.reengage_at,
            other_owner=other_owner,
        )
        if not fresh:
            return False
        self.metrics.activities.labels(activity.type, str(clock is not None).lower()).inc()
        if clock is not None:
            await self._apply(
                session,
                lead_id=activity.lead_id,
                activity_type=activity.type,
                at=activity.at,
                reengage_at=activity.reengage_at,
                note=activity.note,
            )
        return True

    async def submit_activity(
        self, session: AsyncSession, *, activity: LeadActivity, inbox_claim: Any
    ) -> str:
        """HTTP path: same effect as the event, and the event is published for router/sales tools."""
        activity_id = activity.activity_id or str(uuid.uuid4())
        activity = activity.model_copy(update={"activity_id": activity_id})
        event = make_event(
            type="lead.activity",
            source=EVENT_SOURCE,
            subject=activity.lead_id,
            data=activity,
            id=activity_id,
        )
        if await self.record_activity(
            session, activity=activity, activity_id=activity_id, require_known=True
        ):
            await inbox_claim(session, event_id=event.id, topic=self.activity_topic)
            await self.outbox.add(session, topic=self.activity_topic, event=event)
        return activity_id

    async def _apply(
        self,
        session: AsyncSession,
        *,
        lead_id: str,
        activity_type: str,
        at: datetime,
        reengage_at: datetime | None,
        note: str | None,
    ) -> None:
        clock = await store.get_clock(session, lead_id, lock=True)
        if clock is None:
            return
        outcome = apply_activity(
            status=clock.status,
            started_at=clock.started_at,
            due_at=clock.due_at,
            activity_type=activity_type,
            at=at,
            reengage_at=reengage_at,
        )
        if outcome.status is None:
            return
        await store.set_clock_state(
            session,
            lead_id=lead_id,
            status=outcome.status,
            next_level=None,
            next_fire_at=None,
            contacted_at=at if activity_type == "contacted" else None,
        )
        if outcome.speed_to_lead_seconds is not None:
            self.metrics.speed_to_lead.labels(clock.team_id, clock.tier).observe(
                outcome.speed_to_lead_seconds
            )
            self.metrics.sla.labels(
                clock.team_id, clock.tier, "met" if outcome.met else "breached"
            ).inc()
        if outcome.reengage_at is not None:
            await store.upsert_reengagement(
                session,
                lead_id=lead_id,
                owner=clock.owner,
                reengage_at=outcome.reengage_at,
                note=note,
            )

    async def tick(self, session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
        """Fire every due level once: escalation row (unique) + outbox event + advance the clock."""
        fired = 0
        for clock in await store.claim_due_clocks(session, now=now, limit=limit):
            assert clock.next_level is not None and clock.next_fire_at is not None
            chain = [Step(**s) for s in clock.chain]
            step = next(s for s in chain if s.level == clock.next_level)
            late = max(0.0, (now - clock.next_fire_at).total_seconds())
            if await store.record_escalation(
                session,
                lead_id=clock.lead_id,
                seq=clock.assignment_seq,
                level=step.level,
                action=step.action,
                team_id=clock.team_id,
                due_at=clock.due_at,
                fired_at=now,
                seconds_late=late,
            ):
                data = LeadEscalated(
                    lead_id=clock.lead_id,
                    assignment_seq=clock.assignment_seq,
                    level=step.level,
                    action=step.action,
                    owner=Person.model_validate(clock.owner),
                    manager=Person.model_validate(clock.manager) if clock.manager else None,
                    team_id=clock.team_id,
                    due_at=clock.due_at,
                    seconds_overdue=(now - clock.due_at).total_seconds(),
                    escalated_at=now,
                )
                event = make_event(
                    type="lead.escalated",
                    source=EVENT_SOURCE,
                    subject=clock.lead_id,
                    data=data,
                    id=derived_id(clock.lead_id, "escalated", clock.assignment_seq, step.level),
                    time=now,
                )
                await self.outbox.add(session, topic=self.escalated_topic, event=event)
                self.metrics.escalations.labels(str(step.level), step.action, clock.team_id).inc()
                self.metrics.escalation_lateness.observe(late)
                fired += 1
            nxt = after_firing(clock.due_at, chain, step.level)
            await store.set_clock_state(
                session,
                lead_id=clock.lead_id,
                status="open" if nxt.next_level is not None else "exhausted",
                next_level=nxt.next_level,
                next_fire_at=nxt.next_fire_at,
            )
        for lead_id, owner, at, note in await store.claim_due_reengagements(
            session, now=now, limit=limit
        ):
            data_r = LeadReengage(
                lead_id=lead_id, owner=Person.model_validate(owner), reengage_at=at, note=note
            )
            await self.outbox.add(
                session,
                topic=self.escalated_topic,
                event=make_event(
                    type="lead.reengage",
                    source=EVENT_SOURCE,
                    subject=lead_id,
                    data=data_r,
                    id=derived_id(lead_id, "reengage", at.isoformat()),
                    time=now,
                ),
            )
            await store.mark_reengaged(session, [lead_id])
            self.metrics.reengaged.inc()
            fired += 1
        return fired
