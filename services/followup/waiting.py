"""What followup keeps waiting on a date rather than on a rep's SLA clock.

- re-engagements: a rep's `not_ready`, or a lead nurtured by policy (`lead.nurtured`, no
  owner), come back as `lead.reengage` on their date; a later assignment cancels them;
- waiting clocks: a parked lead (`lead.parked`, nobody eligible) escalates to the team's
  manager when it waits past the tier's window; an assignment, disqualification or merge of
  the lead closes the clock;
- activities recorded for a lead never assigned are dead-lettered after the grace period.

A mixin of `FollowupService` (the same policy, outbox, metrics and topics), kept apart so the
SLA clock's orchestration stays readable. Every method takes the caller's session and never
commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.followup import store, waiting_store
from services.followup.domain.waiting import waiting_due
from services.followup.metrics import FollowupMetrics
from shared.db import Outbox
from shared.events import (
    CloudEvent,
    LeadActivity,
    LeadEscalated,
    LeadNurtured,
    LeadParked,
    LeadReengage,
    Person,
    derived_id,
    make_event,
)
from shared.logs import get_logger
from shared.policy import Policy

log = get_logger(__name__)

EVENT_SOURCE = "/baton/followup"


class WaitingClocks:
    policy: Policy
    outbox: Outbox
    metrics: FollowupMetrics
    escalated_topic: str
    dlq_topic: str
    unknown_lead_grace: timedelta

    # --- nurture by policy ----------------------------------------------------------------------

    async def on_nurtured(
        self, session: AsyncSession, *, event: LeadNurtured, event_id: str
    ) -> datetime | None:
        """Schedule the ownerless re-engagement at `reengage_at`; returns when it is due, or
        None when this event already scheduled it (a redelivery changes nothing)."""
        fresh = await waiting_store.upsert_reengagement(
            session,
            lead_id=event.lead_id,
            owner=None,
            reengage_at=event.reengage_at,
            note=event.reason,
            event_id=event_id,
        )
        if not fresh:
            return None
        self.metrics.nurtured.inc()
        log.info("followup.nurture_scheduled", lead_id=event.lead_id, at=event.reengage_at)
        return event.reengage_at

    # --- parked: nobody eligible ------------------------------------------------------------

    async def on_parked(
        self, session: AsyncSession, *, event: LeadParked, event_id: str
    ) -> datetime | None:
        """Start the lead's waiting clock (a snapshot of the wait, its clock, the manager and
        team); returns when it lapses, or None when one is already running."""
        team = self.policy.team(event.team.id)
        due = waiting_due(
            parked_at=event.parked_at,
            wait_seconds=event.wait_seconds,
            clock=event.clock,
            schedules=[r.schedule() for r in team.reps] if team else [],
        )
        started = await waiting_store.start_waiting(
            session,
            waiting_store.WaitingRow(
                lead_id=event.lead_id,
                event_id=event_id,
                team_id=event.team.id,
                manager=event.manager.model_dump(mode="json") if event.manager else None,
                wait_seconds=event.wait_seconds,
                clock=event.clock,
                parked_at=event.parked_at,
                due_at=due,
            ),
        )
        if not started:
            return None
        self.metrics.parked_waits.labels(event.team.id, "started").inc()
        return due

    async def on_lead_closed(self, session: AsyncSession, *, lead_id: str) -> None:
        """`lead.disqualified` / `lead.merged`: nobody needs to be told the lead waits."""
        await waiting_store.close_waiting(session, lead_id)

    async def _fire_waiting(
        self, session: AsyncSession, *, now: datetime, limit: int
    ) -> tuple[int, bool]:
        """Tell the managers of lapsed waits; returns (how many, whether the claim was full)."""
        due = await waiting_store.claim_due_waiting(session, now=now, limit=limit)
        if not due:
            return 0, False
        await self.outbox.add_many(
            session, [(self.escalated_topic, _waiting_event(w, now)) for w in due]
        )
        await waiting_store.mark_waiting_escalated(session, [w.lead_id for w in due], now)
        for w in due:
            self.metrics.parked_waits.labels(w.team_id, "escalated").inc()
        return len(due), len(due) >= limit

    # --- re-engagements -----------------------------------------------------------------------

    async def _reengage(
        self, session: AsyncSession, *, now: datetime, limit: int
    ) -> tuple[int, bool]:
        """Publish due re-engagements; returns (how many, whether the claim was full)."""
        due = await waiting_store.claim_due_reengagements(session, now=now, limit=limit)
        if not due:
            return 0, False
        events = [
            (
                self.escalated_topic,
                make_event(
                    type="lead.reengage",
                    source=EVENT_SOURCE,
                    subject=lead_id,
                    data=LeadReengage(
                        lead_id=lead_id,
                        owner=Person.model_validate(owner) if owner else None,
                        reengage_at=at,
                        note=note,
                    ),
                    id=derived_id(lead_id, "reengage", at.isoformat()),
                    time=now,
                ),
            )
            for lead_id, owner, at, note in due
        ]
        await self.outbox.add_many(session, events)
        await waiting_store.mark_reengaged(session, [d[0] for d in due])
        self.metrics.reengaged.inc(len(due))
        return len(due), len(due) >= limit

    # --- activities for leads never assigned -------------------------------------------------

    async def _dead_letter_pending(
        self, session: AsyncSession, *, now: datetime, limit: int
    ) -> tuple[int, bool]:
        """Activities whose lead was never assigned within the grace period go to leads.dlq;
        returns (how many, whether the claim was full)."""
        stale = await store.claim_stale_pending(
            session, cutoff=now - self.unknown_lead_grace, limit=limit
        )
        if not stale:
            return 0, False
        await self.outbox.add_many(
            session, [(self.dlq_topic, self._dlq_event(act, now)) for act in stale]
        )
        await store.mark_dead_lettered(session, [a["activity_id"] for a in stale])
        self.metrics.activities_dead_lettered.inc(len(stale))
        return len(stale), len(stale) >= limit

    def _dlq_event(self, act: dict[str, Any], now: datetime) -> CloudEvent:
        """The activity as a lead.activity CloudEvent plus the error, as extension attributes
        (the outbox carries no Kafka headers)."""
        data = LeadActivity(
            activity_id=act["activity_id"],
            lead_id=act["lead_id"],
            type=act["type"],
            at=act["at"],
            actor=act["actor"],
            note=act["note"],
            reengage_at=act["reengage_at"],
            reason=act.get("reason"),
        )
        event = make_event(
            type="lead.activity",
            source=EVENT_SOURCE,
            subject=act["lead_id"],
            data=data,
            id=derived_id(act["activity_id"], "dead-lettered"),
            time=now,
        )
        grace = int(self.unknown_lead_grace.total_seconds())
        return CloudEvent.model_validate(
            {
                **event.model_dump(),
                "batonerrorreason": "unknown_lead",
                "batonerror": f"no lead.assigned for this lead within {grace} s of the activity",
                "batonoriginalid": act["source_event_id"] or act["activity_id"],
                "batonrecordedat": act["recorded_at"].isoformat(),
            }
        )


def _waiting_event(w: waiting_store.WaitingRow, now: datetime) -> CloudEvent:
    """The manager's escalation for a parked lead: no owner, no assignment (seq 0), level 1.
    Its id is derived from the park episode, so a re-fire carries the same id and a later
    episode of the same lead a new one."""
    return make_event(
        type="lead.escalated",
        source=EVENT_SOURCE,
        subject=w.lead_id,
        data=LeadEscalated(
            lead_id=w.lead_id,
            assignment_seq=0,
            level=1,
            action="notify_manager",
            owner=None,
            manager=Person.model_validate(w.manager) if w.manager else None,
            team_id=w.team_id,
            due_at=w.due_at,
            seconds_overdue=max(0.0, (now - w.due_at).total_seconds()),
            escalated_at=now,
        ),
        id=derived_id(w.lead_id, "escalated", 0, 1, w.event_id),
        time=now,
    )
