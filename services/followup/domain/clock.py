"""SLA clock decisions, pure: when the next escalation fires and what an activity does.

A clock snapshots the escalation chain it started with, so a policy reload never changes an
escalation already in flight. Escalation delays are wall-clock seconds after the deadline; the
deadline itself comes from the router (already business-hours aware). A last level with
`repeat_every_seconds` fires again every that many seconds until someone acts, each
repetition numbered from its level's first firing, so its event id is derived, not random.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

ClockStatus = Literal["open", "met", "breached", "exhausted", "closed", "nurture", "rejected"]


@dataclass(frozen=True, slots=True)
class Step:
    level: int
    action: str
    after_seconds: int
    repeat_every_seconds: int | None = None  # only on the last level (checked at load)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Where a clock stands: the next level to fire and when (None when nothing is left)."""

    next_level: int | None
    next_fire_at: datetime | None


def first_fire(due_at: datetime, chain: list[Step]) -> Schedule:
    """The lowest level of the chain, `after_seconds` after the deadline."""
    if not chain:
        return Schedule(None, None)
    first = min(chain, key=lambda s: s.level)
    return Schedule(first.level, due_at + timedelta(seconds=first.after_seconds))


def level_starts_at(due_at: datetime, chain: list[Step], level: int) -> datetime:
    """When `level` first fires: never earlier than a level before it, even if the chain's
    delays are not monotonic."""
    return due_at + timedelta(seconds=max(s.after_seconds for s in chain if s.level <= level))


def after_firing(
    due_at: datetime,
    chain: list[Step],
    fired_level: int,
    *,
    fire_at: datetime | None = None,
    now: datetime | None = None,
) -> Schedule:
    """The level after `fired_level`, the same level again when it repeats, or nothing left
    (the chain is exhausted). A repetition is the first one on the level's grid after `now`:
    a tick that comes late (followup was down) fires the level once, not once per missed
    repetition."""
    later = [s for s in chain if s.level > fired_level]
    if not later:
        step = next((s for s in chain if s.level == fired_level), None)
        if step is None or not step.repeat_every_seconds:
            return Schedule(None, None)
        base = fire_at or level_starts_at(due_at, chain, fired_level)
        every = step.repeat_every_seconds
        behind = max(0.0, ((now or base) - base).total_seconds())
        return Schedule(fired_level, base + timedelta(seconds=every * (int(behind // every) + 1)))
    nxt = min(later, key=lambda s: s.level)
    return Schedule(nxt.level, level_starts_at(due_at, chain, nxt.level))


def repetition(due_at: datetime, chain: list[Step], level: int, fire_at: datetime) -> int:
    """Which firing of `level` is due at `fire_at`: 0 the first, n the n-th repetition."""
    step = next(s for s in chain if s.level == level)
    if not step.repeat_every_seconds:
        return 0
    since = (fire_at - level_starts_at(due_at, chain, level)).total_seconds()
    return max(0, round(since / step.repeat_every_seconds))


@dataclass(frozen=True, slots=True)
class Firing:
    """One due level of a clock, decided before any write: the tick writes a batch of these."""

    step: Step
    seconds_late: float
    then: Schedule  # the clock after this level
    repetition: int = 0  # 0 the level's first firing, n its n-th repetition

    @property
    def status(self) -> ClockStatus:
        return "open" if self.then.next_level is not None else "exhausted"


def fire(
    *, due_at: datetime, chain: list[Step], level: int, fire_at: datetime, now: datetime
) -> Firing:
    """Fire `level` (due at `fire_at`) at `now`: its step, how late it is, what comes next."""
    step = next(s for s in chain if s.level == level)
    late = max(0.0, (now - fire_at).total_seconds())
    then = after_firing(due_at, chain, level, fire_at=fire_at, now=now)
    return Firing(step, late, then, repetition(due_at, chain, level, fire_at))


def belongs_to_clock(*, assignment_seq: int, started_at: datetime, at: datetime) -> bool:
    """An activity counts for the assignment that was current at its time.

    Anything before a reassignment belongs to the previous owner's clock, so a late-arriving
    old activity never stops the new clock; before the first assignment there is no earlier
    clock, so it counts for the first (sales tools' clocks may run a little behind ours).
    """
    return assignment_seq == 1 or at >= started_at


@dataclass(frozen=True, slots=True)
class ActivityOutcome:
    """What an activity does to a clock and the lead's nurture track."""

    status: ClockStatus | None  # new status, or None when the clock's status does not change
    speed_to_lead_seconds: float | None = None
    met: bool | None = None
    reengage_at: datetime | None = None
    cancel_reengagement: bool = False

    @property
    def stops_clock(self) -> bool:
        """The rep acted on the lead: the window counts as touched at the activity's time."""
        return self.status is not None


NOTHING = ActivityOutcome(None)


def apply_activity(
    *,
    status: str,
    assignment_seq: int,
    started_at: datetime,
    due_at: datetime,
    activity_type: str,
    at: datetime,
    reengage_at: datetime | None,
) -> ActivityOutcome:
    """First `contacted` stops the clock; outcome types close it; `not_ready` moves to nurture.

    `not_ready` schedules re-engagement even after the clock stopped (the usual case: the rep
    called, the lead asked to be called back later), so no lead silently disappears.
    """
    if not belongs_to_clock(assignment_seq=assignment_seq, started_at=started_at, at=at):
        return NOTHING
    is_open = status == "open"
    if activity_type == "not_ready":
        return ActivityOutcome("nurture" if is_open else None, reengage_at=reengage_at)
    if activity_type in ("disqualified", "converted"):
        return ActivityOutcome("closed" if is_open else None, cancel_reengagement=True)
    if not is_open:
        return NOTHING
    if activity_type == "contacted":
        met = at <= due_at
        speed = max(0.0, (at - started_at).total_seconds())
        return ActivityOutcome("met" if met else "breached", speed_to_lead_seconds=speed, met=met)
    if activity_type == "rejected":
        return ActivityOutcome("rejected")  # the router reassigns; its lead.assigned restarts
    return NOTHING  # accepted: recorded, the clock keeps running until contact


def completion_ratio(touched_in_time: int, windows: int) -> float:
    """Share of closed windows touched in time; NaN when no window closed (nothing to judge)."""
    return touched_in_time / windows if windows else float("nan")
