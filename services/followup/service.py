"""Followup's service layer: clocks from assignments, activities, and the escalation tick.

Every method takes the caller's session and never commits: the consumer, request or ticker
edge owns the transaction, so an effect and the events it causes commit together.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.followup import store, waiting_store
from services.followup.domain.clock import (
    Schedule,
    Step,
    apply_activity,
    belongs_to_clock,
    completion_ratio,
    fire,
    first_fire,
)
from services.followup.domain.waiting import reengage_on_working_time
from services.followup.metrics import FollowupMetrics
from services.followup.outcomes import InvalidActivity, Outcomes
from services.followup.waiting import EVENT_SOURCE, WaitingClocks
from shared.db import Outbox
from shared.errors import LeadNotFound
from shared.events import (
    ContactErased,
    LeadActivity,
    LeadAssigned,
    LeadEscalated,
    Person,
    derived_id,
    make_event,
)
from shared.policy import Policy

__all__ = ["EVENT_SOURCE", "FollowupService", "InvalidActivity", "TickResult"]
COMPLETION_WINDOW = timedelta(days=7)
# Clocks (and re-engagements, stale activities) claimed per tick. A tick is a fixed number of
# statements, so a larger batch costs little more than a small one; 1,000 keeps the claimed
# rows' locks and the statement's arrays small while far above the 5,000/s target per second.
TICK_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class TickResult:
    fired: int  # escalations, re-engagements and dead-letters published by this tick
    full: bool  # a claim hit its limit: more is due now, so tick again without sleeping


@dataclass
class FollowupService(WaitingClocks, Outcomes):
    policy: Policy
    outbox: Outbox
    metrics: FollowupMetrics
    escalated_topic: str
    activity_topic: str
    dlq_topic: str = "leads.dlq"
    unknown_lead_grace: timedelta = timedelta(hours=1)

    def chain(self) -> list[dict[str, Any]]:
        """The escalation chain a clock snapshots when it starts (`repeat_every_seconds` only
        where set, so earlier snapshots and new ones read the same)."""
        return [
            {"level": s.level, "action": s.action, "after_seconds": s.after_seconds}
            | ({"repeat_every_seconds": s.repeat_every_seconds} if s.repeat_every_seconds else {})
            for s in self.policy.escalation
        ]

    # --- right to erasure ---------------------------------------------------------------------

    async def on_erased(self, session: AsyncSession, *, event: ContactErased) -> int:
        """`contact.erased`: drop the notes kept about these leads (idempotent)."""
        return await store.erase_notes(session, event.lead_ids)

    # --- assignments -------------------------------------------------------------------------

    async def on_assigned(self, session: AsyncSession, *, event: LeadAssigned) -> Schedule | None:
        """Start (or restart, for a newer assignment) the lead's clock; stale ones are ignored.

        Returns the started clock's first level and when it fires (for the ticker's wake-up),
        or None when the assignment was stale and nothing started.
        """
        return (await self.on_assigned_many(session, events=[event]))[0]

    async def on_assigned_many(
        self, session: AsyncSession, *, events: list[LeadAssigned]
    ) -> list[Schedule | None]:
        """`on_assigned` for a fetched batch, in order, in one statement per run of distinct
        leads (a lead seen again starts the next run, so it finds what the first one wrote).
        Activities recorded before an assignment arrived apply afterwards, lead by lead, as
        if in order: they touch only their own lead's rows."""
        chain = self.chain()
        steps = [Step(**s) for s in chain]
        out: list[Schedule | None] = []
        for run in _distinct_leads(events):
            scheds = [first_fire(e.sla.due_at, steps) for e in run]
            started = await store.start_clocks(
                session, [_clock(e, s, chain) for e, s in zip(run, scheds, strict=True)]
            )
            for event, sched in zip(run, scheds, strict=True):
                key = _lead_key(event)
                if key not in started:
                    out.append(None)
                    continue
                self._count_stage(event, started[key].previous_stage)
                if started[key].has_activities:
                    await self._adopt_earlier_activities(session, event=event)
                out.append(sched)
        return out

    async def _adopt_earlier_activities(
        self, session: AsyncSession, *, event: LeadAssigned
    ) -> None:
        """Activities recorded before this assignment arrived apply now, as if in order."""
        for act in await store.activities_for(session, event.lead_id):
            if belongs_to_clock(
                assignment_seq=event.assignment_seq, started_at=event.assigned_at, at=act["at"]
            ):
                await store.adopt_activity(
                    session, activity_id=act["activity_id"], owner_id=event.owner.id
                )
                await self._apply(
                    session,
                    lead_id=event.lead_id,
                    activity_type=act["type"],
                    at=act["at"],
                    reengage_at=act["reengage_at"],
                    note=act["note"],
                )

    # --- activities --------------------------------------------------------------------------

    async def record_activity(
        self,
        session: AsyncSession,
        *,
        activity: LeadActivity,
        activity_id: str,
        require_known: bool,
        source_event_id: str | None = None,
    ) -> bool:
        """Record an activity once; returns False for a repeat of the same activity id.

        For a lead with no clock yet: 404 on the HTTP path (`require_known`); from Kafka it is
        kept as pending (its assignment may still be on the way) and dead-lettered by the
        ticker if no assignment arrives within the grace period.
        """
        if activity.type == "not_ready" and activity.reengage_at is None:
            raise InvalidActivity(
                "not_ready needs reengage_at",
                fields=[{"name": "reengage_at", "message": "required for not_ready"}],
            )
        reason = self._reason_code(activity)
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
            pending=clock is None,
            source_event_id=source_event_id,
            reason=reason,
        )
        if not fresh:
            return False
        self.metrics.activities.labels(activity.type, str(clock is not None).lower()).inc()
        self._count_reason(activity, reason)
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
        self,
        session: AsyncSession,
        *,
        activity: LeadActivity,
        inbox_claim: Any,
        require_known: bool = True,
    ) -> str:
        """HTTP path: same effect as the event, and the event is published for router/sales tools.

        `require_known=False` (a sales tool's signed webhook, which cannot act on a 404) keeps an
        activity for a lead without a clock pending, as the Kafka path does."""
        self.check_reason(activity)
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
            session,
            activity=activity,
            activity_id=activity_id,
            require_known=require_known,
            source_event_id=event.id,
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
            assignment_seq=clock.assignment_seq,
            started_at=clock.started_at,
            due_at=clock.due_at,
            activity_type=activity_type,
            at=at,
            reengage_at=reengage_at,
        )
        if outcome.status is not None:
            await store.set_clock_state(
                session,
                lead_id=lead_id,
                status=outcome.status,
                next_level=None,
                next_fire_at=None,
                contacted_at=at if activity_type == "contacted" else None,
            )
            await store.touch_window(session, lead_id=lead_id, seq=clock.assignment_seq, at=at)
        if outcome.speed_to_lead_seconds is not None:
            self.metrics.speed_to_lead.labels(clock.team_id, clock.tier).observe(
                outcome.speed_to_lead_seconds
            )
            self.metrics.sla.labels(
                clock.team_id, clock.tier, "met" if outcome.met else "breached"
            ).inc()
        if activity_type in ("contacted", "converted") and (
            outcome.speed_to_lead_seconds is not None or activity_type == "converted"
        ):
            await self._count_per_lead(session, clock=clock, activity_type=activity_type, at=at)
        if outcome.reengage_at is not None:
            found = self.policy.rep(str(clock.owner.get("id")))
            await waiting_store.upsert_reengagement(
                session,
                lead_id=lead_id,
                owner=clock.owner,
                reengage_at=reengage_on_working_time(
                    outcome.reengage_at, found[1].schedule() if found else None
                ),
                note=note,
            )
        if outcome.cancel_reengagement:
            await waiting_store.cancel_reengagement(session, lead_id)

    # --- the tick ----------------------------------------------------------------------------

    async def tick(self, session: AsyncSession, *, now: datetime, limit: int = TICK_LIMIT) -> int:
        """Fire what is due once; returns how many escalations/events were published."""
        return (await self.run_tick(session, now=now, limit=limit)).fired

    async def run_tick(
        self, session: AsyncSession, *, now: datetime, limit: int = TICK_LIMIT
    ) -> TickResult:
        """Fire what is due once: escalations, parked leads' lapsed waits, re-engagements,
        dead-letters of stale activities.

        Every claim is a range scan of a partial index over due rows only, so the cost does not
        grow with the number of open clocks; rows are claimed FOR UPDATE SKIP LOCKED, so several
        instances share the work and none fires a level twice. The escalations of a tick are
        decided in memory and written by one statement, so a tick costs a fixed number of
        round trips however many clocks fire.
        """
        clocks = await store.claim_due_clocks(session, now=now, limit=limit)
        escalated = await self._escalate(session, clocks, now=now)
        waited, more_waiting = await self._fire_waiting(session, now=now, limit=limit)
        reengaged, more_reengage = await self._reengage(session, now=now, limit=limit)
        dead, more_dead = await self._dead_letter_pending(session, now=now, limit=limit)
        return TickResult(
            fired=escalated + waited + reengaged + dead,
            full=len(clocks) >= limit or more_waiting or more_reengage or more_dead,
        )

    async def _escalate(
        self, session: AsyncSession, clocks: list[store.ClockRow], *, now: datetime
    ) -> int:
        if not clocks:
            return 0
        batch = [self._escalation(clock, now) for clock in clocks]
        new = await store.fire_escalations(session, batch, fired_at=now, topic=self.escalated_topic)
        self._count_escalations(
            [e for e in batch if (e.lead_id, e.seq, e.level, e.repetition) in new]
        )
        return len(new)

    def _escalation(self, clock: store.ClockRow, now: datetime) -> store.Escalation:
        """The clock's due level, its event and the clock's next state; pure, no I/O. The
        event id is derived from (lead, seq, level) and, for a repetition of a repeating last
        level, its number, so a re-fire carries the same id."""
        assert clock.next_level is not None and clock.next_fire_at is not None
        firing = fire(
            due_at=clock.due_at,
            chain=[Step(**s) for s in clock.chain],
            level=clock.next_level,
            fire_at=clock.next_fire_at,
            now=now,
        )
        step = firing.step
        event = make_event(
            type="lead.escalated",
            source=EVENT_SOURCE,
            subject=clock.lead_id,
            data=LeadEscalated(
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
            ),
            id=escalation_id(clock.lead_id, clock.assignment_seq, step.level, firing.repetition),
            time=now,
        )
        return store.Escalation(
            lead_id=clock.lead_id,
            seq=clock.assignment_seq,
            level=step.level,
            repetition=firing.repetition,
            action=step.action,
            team_id=clock.team_id,
            due_at=clock.due_at,
            seconds_late=firing.seconds_late,
            event_id=event.id,
            payload=event.to_bytes(),
            status=firing.status,
            next_level=firing.then.next_level,
            next_fire_at=firing.then.next_fire_at,
        )

    def _count_escalations(self, fired: list[store.Escalation]) -> None:
        """Metrics for the escalations actually fired (a re-fire counts nothing)."""
        per_label = Counter((str(e.level), e.action, e.team_id) for e in fired)
        for labels, n in per_label.items():
            self.metrics.escalations.labels(*labels).inc(n)
        for e in fired:
            self.metrics.escalation_lateness.observe(e.seconds_late)

    # --- follow-up health --------------------------------------------------------------------

    async def refresh_health(self, session: AsyncSession, *, now: datetime) -> float:
        """Open clocks and the rolling 7-day completion rate: two index scans, run periodically
        (never per scrape or per request). Returns the ratio."""
        self.metrics.open_clocks.set(await store.count_open_clocks(session))
        touched, total = await store.completion_counts(
            session, since=now - COMPLETION_WINDOW, until=now
        )
        ratio = completion_ratio(touched, total)
        self.metrics.completion_ratio.set(ratio)
        return ratio


def escalation_id(lead_id: str, seq: int, level: int, repetition: int) -> str:
    """(lead, "escalated", seq, level) as before repetitions existed; a repetition adds its n."""
    if repetition:
        return derived_id(lead_id, "escalated", seq, level, repetition)
    return derived_id(lead_id, "escalated", seq, level)


def _clock(event: LeadAssigned, sched: Schedule, chain: list[dict[str, Any]]) -> store.ClockRow:
    return store.ClockRow(
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
        stage=event.stage,
    )


def _distinct_leads(events: list[LeadAssigned]) -> list[list[LeadAssigned]]:
    """Split events, in order, into runs in which no lead appears twice."""
    runs: list[list[LeadAssigned]] = []
    seen: set[str] = set()
    for event in events:
        key = _lead_key(event)
        if not runs or key in seen:
            runs.append([])
            seen = set()
        runs[-1].append(event)
        seen.add(key)
    return runs


def _lead_key(event: LeadAssigned) -> str:
    """The lead id as PostgreSQL writes a uuid back (lower case, hyphens), whatever its case."""
    return str(uuid.UUID(event.lead_id))
