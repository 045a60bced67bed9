"""Activity sources: followup's signed activity webhooks and their field mapping."""

from __future__ import annotations

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from shared.events import ActivityType
from shared.policy.base import Name, _at, _check_name, _Model
from shared.policy.sources import AuthConfig

# --- activity sources (followup's signed activity webhooks) -----------------------------------

ACTIVITY_FIELDS = ("activity_id", "lead_id", "type", "at", "actor", "note", "reengage_at", "reason")
_SIGNED_ACTIVITY_SCHEMES = ("standard-webhooks", "hubspot-v3")


class ActivitySource(_Model):
    """A sales tool that posts activities (a logged call, an e-mail) to followup.

    ``fields`` maps each activity field to where its value sits in the tool's payload (a dot
    path, list indexes allowed); ``types`` maps the tool's values to activity types, or
    ``type`` fixes one for a tool that only sends one kind; ``actors`` maps the tool's user ids
    to rep ids (others pass through unchanged).
    """

    name: Name
    auth: AuthConfig
    fields: dict[str, str] = Field(min_length=1)
    type: ActivityType | None = None
    types: dict[str, ActivityType] = {}
    actors: dict[str, str] = {}

    _name = field_validator("name")(_check_name)

    @field_validator("fields")
    @classmethod
    def _mapping(cls, v: dict[str, str]) -> dict[str, str]:
        for target, location in v.items():
            if target not in ACTIVITY_FIELDS:
                known = ", ".join(ACTIVITY_FIELDS)
                raise ValueError(f"unknown activity field '{target}' (one of {known})")
            if not location.strip() or " " in location:
                raise ValueError(f"{target}: '{location}' is not a payload location")
        for required in ("lead_id", "actor"):
            if required not in v:
                raise ValueError(f"{required}: field required")
        return v

    @model_validator(mode="after")
    def _shape(self) -> ActivitySource:
        if self.auth.scheme not in _SIGNED_ACTIVITY_SCHEMES:
            signed = ", ".join(_SIGNED_ACTIVITY_SCHEMES)
            raise _at("auth.scheme", f"activity sources are signed: use one of {signed}")
        mapped = "type" in self.fields
        if mapped == (self.type is not None):
            raise _at("type", "give fields.type (read through types) or a fixed type, one of them")
        if self.types and not mapped:
            raise _at("types", "only used with fields.type")
        return self


# --- feedback from sales: why a lead was rejected or disqualified -------------------------------

OTHER_REASON = "other"
"""Where a reason code off the list lands on the Kafka path (an event cannot be refused)."""
REASON_ACTIVITIES = ("rejected", "disqualified")


class Feedback(_Model):
    """The reason codes `rejected` and `disqualified` activities carry (`reason`), so the
    calibration report can say why leads were lost ("did this lead meet the definition?")."""

    reasons: tuple[Name, ...] = Field(min_length=1)

    @field_validator("reasons")
    @classmethod
    def _codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for code in v:
            try:
                _check_name(code)
            except ValueError as exc:
                raise ValueError(f"'{code}': {exc}") from None
            if v.count(code) > 1:
                raise ValueError(f"'{code}' is listed twice")
        return v

    def accepts(self, code: str | None) -> bool:
        return code is not None and (code in self.reasons or code == OTHER_REASON)
