"""SLA clock decisions, pure: when the next escalation fires and what an activity does.

A clock snapshots the escalation chain it started with, so a policy reload never changes an
escalation already in flight.
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


@dataclass(frozen=True, slots=True)
class Schedule:
    """Where a clock stands: the next level to fire and when (None when nothing is left)."""

    next_level: int | None
    next_fire_at: datetime | None


def first_fire(due_at: datetime, chain: list[Step]) -> Schedule:
    if not chain:
        return Schedule(None, None)
    return Schedule(chain[0].level, due_at + timedelta(seconds=chain[0].after_seconds))


def after_firing(due_at: datetime, chain: list[Step], fired_level: int) -> Schedule:
    """The level after `fired_level`, or nothing left (the chain is exhausted)."""
    later = [s for s in chain if s.level > fired_level]
    if not later:
        return Schedule(None, None)
    nxt = min(later, key=lambda s: s.level)
    return Schedule(nxt.level, due_at + timedelta(seconds=nxt.after_seconds))


@dataclass(frozen=True, slots=True)
class ActivityOutcome:
    """What an activity does to an open clock."""

    status: ClockStatus | None  # new status, or None when the clock keeps running
    speed_to_lead_seconds: float | None = None
    met: bool | None = None
    reengage_at: datetime | None = None


def apply_activity(
    *,
    status: str,
    started_at: datetime,
    due_at: datetime,
    activity_type: str,
    at: datetime,
    reengage_at: datetime | None,
) -> ActivityOutcome:
    """First `contacted` stops the clock; outcome types close it; `not_ready` moves to nurture."""
    if status != "open":
        return ActivityOutcome(None)
    if activity_type == "contacted":
        met = at <= due_at
        speed = max(0.0, (at - started_at).total_seconds())
        return ActivityOutcome("met" if met else "breached", speed_to_lead_seconds=speed, met=met)
    if activity_type in ("disqualified", "converted"):
        return ActivityOutcome("closed")
    if activity_type == "rejected":
        return ActivityOutcome("rejected")
    if activity_type == "not_ready":
        return ActivityOutcome("nurture", reengage_at=reengage_at)
    return ActivityOutcome(None)  # accepted: recorded, the clock keeps running until contact
