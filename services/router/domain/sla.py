"""SLA deadlines: a window counted on the wall clock or in the owner's working time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.policy import Rep, SlaTier


def due_at(assigned_at: datetime, tier_sla: SlaTier, rep: Rep) -> datetime:
    """When the owner must have made first contact (aware, UTC).

    A business clock counts only the owner's own working time in their zone, so a lead that
    arrives on Friday evening in Berlin is due on Monday morning, not during the weekend; the
    owner's schedule also takes their public holidays, the company's holidays and their out of
    office away, so a lead is never due while its owner cannot work on it.
    """
    if assigned_at.tzinfo is None or assigned_at.utcoffset() is None:
        raise ValueError("assigned_at must be timezone-aware")
    if tier_sla.clock == "wall":
        return (assigned_at + timedelta(seconds=tier_sla.window_seconds)).astimezone(UTC)
    return rep.schedule().add_business_seconds(assigned_at, tier_sla.window_seconds)
