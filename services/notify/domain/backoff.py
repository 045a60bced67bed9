"""When to try a message again: the retry schedule, its jitter, and Retry-After. Pure.

The schedule lists the wait after each failed attempt (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
10 h by default: about a day in all); once it is used up the message is dead. Jitter spreads
the retries of many messages that failed together (an endpoint's outage) so they do not come
back as one burst. A 429/503 Retry-After is honoured as a lower bound on the wait.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Backoff:
    schedule: tuple[float, ...]
    jitter: float = 0.2  # each wait is scaled by a factor in [1 - jitter, 1 + jitter]
    retry_after_max: float = 36000.0

    def delay(
        self, step: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait after the failed attempt number `step` (0-based position in the
        schedule), or None when the schedule is used up (dead)."""
        if step >= len(self.schedule):
            return None
        base = self.schedule[step]
        factor = 1.0 + (rng or random).uniform(-self.jitter, self.jitter)
        wait = max(0.0, base * factor)
        if retry_after is not None:
            wait = max(wait, min(max(0.0, retry_after), self.retry_after_max))
        return wait


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3); None if absent
    or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
