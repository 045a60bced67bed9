"""SLA tiers and the escalation chain a clock snapshots when it starts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.policy.base import _at, _Model
from shared.policy.people import Channels


class SlaTier(_Model):
    window_seconds: int = Field(ge=1)
    clock: Literal["business", "wall"]


class Sla(_Model):
    tiers: dict[str, SlaTier] = Field(min_length=1)


MIN_REPEAT_SECONDS = 300
"""The shortest repetition of a last level: a reminder every few seconds would be noise."""


class EscalationLevel(_Model):
    level: int = Field(ge=1)
    action: Literal["remind_owner", "notify_manager", "reassign"]
    after_seconds: int = Field(ge=0)
    channels: Channels | None = None  # default for every team; a team's or rep's notify wins
    # the last level fires again every that many seconds until someone acts on the lead
    repeat_every_seconds: int | None = Field(default=None, ge=MIN_REPEAT_SECONDS)

    @model_validator(mode="after")
    def _message_channels(self) -> EscalationLevel:
        if self.action == "reassign" and self.channels is not None:
            raise _at("channels", _REASSIGN_SENDS_NOTHING)
        return self


_REASSIGN_SENDS_NOTHING = (
    "reassign sends no message of its own (the new assignment tells both owners)"
)


def chain_errors(levels: tuple[EscalationLevel, ...]) -> list[str]:
    """Checks spanning the chain's levels: only the last level may repeat (a repeating middle
    level would never let the chain reach the levels after it)."""
    return [
        f"escalation[{i}].repeat_every_seconds: only the last level may repeat"
        for i, level in enumerate(levels[:-1])
        if level.repeat_every_seconds is not None
    ]
