"""Token-bucket rate limit per source, pure: the caller passes the clock."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """`capacity` requests per `period` seconds, refilled continuously."""

    capacity: int
    period: float
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.capacity)

    def take(self, now: float) -> float:
        """0.0 when allowed; otherwise the seconds until one token is available."""
        rate = self.capacity / self.period
        if self.updated is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate


def retry_after_seconds(wait: float) -> int:
    """Retry-After is whole seconds; never tell a client 0 when it must wait."""
    return max(1, math.ceil(wait))
