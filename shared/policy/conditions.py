"""Routing and escalation conditions: field tests combined with all/any/not."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from shared.policy.base import _at, _Model, is_canonical_path

# --- conditions ------------------------------------------------------------------------------

Op = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists", "matches"]
Scalar = bool | int | float | str
ConditionValue = Scalar | list[Scalar] | None


class FieldCondition(_Model):
    """A leaf test on one lead field."""

    field: str
    op: Op
    value: ConditionValue

    @field_validator("field")
    @classmethod
    def _known_field(cls, v: str) -> str:
        if not is_canonical_path(v, derived=True):
            raise ValueError(f"unknown lead field '{v}'")
        return v

    @model_validator(mode="after")
    def _value_fits_op(self) -> FieldCondition:
        v, op = self.value, self.op
        if op in ("in", "not_in"):
            if not isinstance(v, list) or not v:
                raise _at("value", f"'{op}' needs a non-empty list")
        elif op == "exists":
            if not isinstance(v, bool):
                raise _at("value", "'exists' needs true or false")
        elif op in ("gt", "gte", "lt", "lte"):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise _at("value", f"'{op}' needs a number")
        elif op in ("contains", "matches"):
            if not isinstance(v, str):
                raise _at("value", f"'{op}' needs a string")
            if op == "matches":
                try:
                    re.compile(v)
                except re.error as exc:
                    raise _at("value", f"invalid regular expression: {exc}") from None
        elif isinstance(v, list) or v is None:
            raise _at("value", f"'{op}' needs a single value")
        return self

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled regex of a ``matches`` condition."""
        return re.compile(str(self.value))


class AllCondition(_Model):
    all: tuple[Condition, ...] = Field(min_length=1)


class AnyCondition(_Model):
    any: tuple[Condition, ...] = Field(min_length=1)


class NotCondition(_Model):
    not_: Condition = Field(alias="not")


_CONDITION_TAGS = {"all": "<all>", "any": "<any>", "not": "<not>"}
_MODEL_TAGS: dict[type[BaseModel], str] = {
    AllCondition: "<all>",
    AnyCondition: "<any>",
    NotCondition: "<not>",
}


def _condition_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        return next((tag for key, tag in _CONDITION_TAGS.items() if key in v), "<leaf>")
    if isinstance(v, BaseModel):
        return _MODEL_TAGS.get(type(v), "<leaf>")
    return None


Condition = Annotated[
    Annotated[FieldCondition, Tag("<leaf>")]
    | Annotated[AllCondition, Tag("<all>")]
    | Annotated[AnyCondition, Tag("<any>")]
    | Annotated[NotCondition, Tag("<not>")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition",
        custom_error_message="a condition is {field, op, value} or one of all/any/not",
    ),
]
_TAG_SEGMENTS = frozenset({"<leaf>", "<all>", "<any>", "<not>", "<every-level>", "<by-level>"})

for _m in (AllCondition, AnyCondition, NotCondition):
    _m.model_rebuild()


def condition_fields(cond: Condition, at: str = "") -> list[tuple[str, str]]:
    """Every leaf's field with the path of its ``field`` key below the condition
    (``.all[1].field``), so a section can refuse fields it cannot know at the leaf at fault."""
    if isinstance(cond, FieldCondition):
        return [(f"{at}.field", cond.field)]
    if isinstance(cond, AllCondition | AnyCondition):
        key, parts = ("all", cond.all) if isinstance(cond, AllCondition) else ("any", cond.any)
        return [f for i, c in enumerate(parts) for f in condition_fields(c, f"{at}.{key}[{i}]")]
    return condition_fields(cond.not_, f"{at}.not")
