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

Strategy = Literal["account_owner", "round_robin", "least_loaded", "fixed"]


class RoutingRule(_Model):
    id: Name
    when: Condition | None = None
    default: bool = False
    team: str
    strategy: Strategy
    owner: str | None = None
    require_working_hours: bool = False

    _id = field_validator("id")(_check_name)

    @model_validator(mode="after")
    def _shape(self) -> RoutingRule:
        if self.default and self.when is not None:
            raise _at("when", "a default rule has no condition")
        if not self.default and self.when is None:
            raise _at("when", "required unless default: true")
        if self.strategy == "fixed" and self.owner is None:
            raise _at("owner", "required when strategy is fixed")
        if self.strategy != "fixed" and self.owner is not None:
            raise _at("owner", "only allowed when strategy is fixed")
        return self


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
