"""What one attempt's result means for its message: delivered, tried again later, parked
(the endpoint is gone), or dead. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.notify.channels.base import AttemptResult
from services.notify.domain.backoff import Backoff


@dataclass(frozen=True)
class Next:
    status: str  # the message's status: pending | delivered | dead
    outcome: str  # the metric's outcome: delivered | retry | gone | rejected | dead
    step: int  # position in the retry schedule for the next failure
    next_attempt_at: datetime
    disable_endpoint: bool = False


def next_state(
    result: AttemptResult,
    *,
    channel: str,
    step: int,
    now: datetime,
    backoff: Backoff,
    rng: random.Random | None = None,
) -> Next:
    """A webhook endpoint answering 410 is disabled; its messages stay pending (visible in
    the admin API, sent once it is enabled again). A people channel's "gone" (a Slack channel
    or mailbox that no longer exists) concerns one target only: that message is dead."""
    if result.outcome == "delivered":
        return Next("delivered", "delivered", step, now)
    if result.outcome == "rejected":
        return Next("dead", "rejected", step, now)
    if result.outcome == "gone":
        if channel == "webhook":
            return Next("pending", "gone", step, now, disable_endpoint=True)
        return Next("dead", "gone", step, now)
    wait = backoff.delay(step, retry_after=result.retry_after_seconds, rng=rng)
    if wait is None:
        return Next("dead", "dead", step, now)
    return Next("pending", "retry", step + 1, now + timedelta(seconds=wait))
