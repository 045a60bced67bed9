"""Routing rules, accounts, dedupe and retention."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from shared.policy.base import Name, _at, _check_name, _Model
from shared.policy.conditions import Condition

# --- routing, accounts, dedupe ------------------------------------------------------

# "nurture" is never written: a rule with `nurture: true` has it (and no team).
Strategy = Literal["account_owner", "round_robin", "least_loaded", "fixed", "nurture"]
_WRITTEN_STRATEGIES = ("account_owner", "round_robin", "least_loaded", "fixed")


class RoutingRule(_Model):
    """One routing rule: to a team by a strategy, or (``nurture: true``) to no team at all,
    keeping the lead with marketing until a new touch or its re-engagement date."""

    id: Name
    when: Condition | None = None
    default: bool = False
    team: str = ""  # required unless nurture (checked below, so the error can say so)
    strategy: Strategy = "nurture"
    owner: str | None = None
    require_working_hours: bool = False
    nurture: bool = False

    _id = field_validator("id")(_check_name)

    @field_validator("strategy", mode="before")
    @classmethod
    def _written(cls, v: Any) -> Any:
        if v == "nurture":
            raise ValueError("to nurture, write nurture: true (with no team or strategy)")
        if v not in _WRITTEN_STRATEGIES:
            raise ValueError(
                "Input should be 'account_owner', 'round_robin', 'least_loaded' or 'fixed'"
            )
        return v

    @model_validator(mode="after")
    def _shape(self) -> RoutingRule:
        if self.default and self.when is not None:
            raise _at("when", "a default rule has no condition")
        if not self.default and self.when is None:
            raise _at("when", "required unless default: true")
        if self.nurture:
            self._nurture_shape()
        elif "team" not in self.model_fields_set:
            raise _at("team", "required unless nurture: true")
        elif "strategy" not in self.model_fields_set:
            raise _at("strategy", "required unless nurture: true")
        if self.strategy == "fixed" and self.owner is None:
            raise _at("owner", "required when strategy is fixed")
        if self.strategy != "fixed" and self.owner is not None:
            raise _at("owner", "only allowed when strategy is fixed")
        return self

    def _nurture_shape(self) -> None:
        if "team" in self.model_fields_set:
            raise _at("team", "a nurture rule sends the lead to no team")
        if "strategy" in self.model_fields_set:
            raise _at("strategy", "a nurture rule has no strategy")
        if self.require_working_hours:
            raise _at("require_working_hours", "a nurture rule assigns no rep")


class Nurture(_Model):
    """The nurture track: how long a lead a rule kept with marketing waits before it is
    handed to sales anyway (followup emits `lead.reengage` on that date)."""

    reengage_after_days: int = Field(ge=1, le=3650)


class Account(_Model):
    domain: str = Field(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
    name: str = Field(min_length=1)
    owner: str

    @field_validator("domain", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v


class Dedupe(_Model):
    open_lead_days: int = Field(ge=1)


class Retention(_Model):
    lead_days: int = Field(ge=1)
