"""What the dispatcher hands a channel and what a channel answers: the one seam between
notify's delivery loop (ticker.py) and the ways it reaches people and tools (webhook, Slack,
e-mail). A sender never raises for a bad answer from the remote side; it reports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Outcome = Literal["delivered", "retry", "gone", "rejected"]
"""delivered: the remote accepted it. retry: try again later (timeouts, 5xx, 429, connection
errors). gone: the target says it no longer exists (HTTP 410, Slack channel_not_found...);
the dispatcher disables the endpoint or drops the message. rejected: the remote will never
accept this message (4xx other than 408/409/425/429); dead-lettered at once."""


@dataclass(frozen=True)
class Outgoing:
    """One message to send. `message_id` is the notify.messages row key, stable across
    attempts; `event_id` is the CloudEvent that caused it (a webhook sends it as `webhook-id`,
    so a receiver that dedupes by it sees each event once per endpoint)."""

    message_id: str
    event_id: str
    channel: str  # "webhook" | "slack" | "email"
    target: str  # endpoint name, Slack channel or user id, or an e-mail address
    body: dict[str, Any]  # channel-specific content, rendered when the message was planned


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    status: int | None = None  # HTTP status or SMTP reply code, when there was one
    retry_after_seconds: float | None = None  # from Retry-After (429/503), when given
    error: str | None = None  # short, with no personal data and no secret


class Sender(Protocol):
    async def send(self, out: Outgoing) -> AttemptResult: ...
