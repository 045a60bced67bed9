"""A message notify has decided to send: the one shape the planners (webhooks in plan.py,
people in people.py) produce and the store turns into `notify.messages` rows. Pure data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

Channel = str  # "webhook" | "slack" | "email"
Kind = str  # "event" (webhook) | "assignment" | "escalation" | "reassignment" | "acknowledgement"

_NAMESPACE = uuid.UUID("6a1f4c3e-2b8d-5e7f-9a0b-1c2d3e4f5a6b")


@dataclass(frozen=True)
class Planned:
    """One message caused by one consumed event.

    `target` names where it goes (a configured endpoint's name, a Slack channel or user id, an
    e-mail address); `body` is what the channel's sender needs, rendered now so a policy
    reload never changes a message already planned. Secrets never go into a body: a webhook
    sender looks its endpoint's URL and secrets up by name at send time."""

    channel: Channel
    target: str
    kind: Kind
    body: dict[str, Any] = field(default_factory=dict)
    delay_seconds: float = 0.0
    key: str = ""  # tells apart two messages of one event to one target (rarely needed)

    def message_id(self, event_id: str) -> str:
        """The row's key: stable across redeliveries of the event, so planning twice stores
        one row, and distinct per target, so two endpoints get two rows. (What a webhook
        receiver dedupes by is the `webhook-id` header, which is the CloudEvent id itself.)"""
        name = f"{event_id}|{self.channel}|{self.target}|{self.kind}|{self.key}"
        return str(uuid.uuid5(_NAMESPACE, name))
