"""When a parked lead's wait lapses and when a nurtured lead comes back, pure.

A parked lead has no owner, so a business clock has no one rep's hours to count in. It counts
in the team's: the wait lapses when the window has passed in the working time of the rep who
reaches it first (the earliest moment someone in the team would have been expected to act).
A team followup does not know (a newer policy than followup's) waits on the wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from shared.business_hours import Schedule


def waiting_due(
    *, parked_at: datetime, wait_seconds: int, clock: str, schedules: Sequence[Schedule]
) -> datetime:
    """When the manager is told that nobody could take the lead."""
    usable = [s for s in schedules if s.has_working_time]
    if clock == "wall" or not usable:
        return parked_at + timedelta(seconds=wait_seconds)
    return min(s.add_business_seconds(parked_at, wait_seconds) for s in usable)


def reengage_on_working_time(at: datetime, schedule: Schedule | None) -> datetime:
    """A re-engagement date that falls outside the owner's working time (a weekend, a public
    or company holiday, out of office) moves to the start of their next working time, so the
    lead does not come back to someone who is not there. No known owner: the date as given."""
    if schedule is None or not schedule.has_working_time:
        return at
    return schedule.next_working_time(at)
