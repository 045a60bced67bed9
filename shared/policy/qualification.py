"""Qualification: the written definition of a qualified lead (scores, stages, tiers)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from shared.policy.base import SCORED_FIELDS, Name, _at, _check_name, _Model
from shared.policy.conditions import Condition, condition_fields

# --- qualification ---------------------------------------------------------------------------


class Framework(_Model):
    name: str = Field(min_length=1)
    questions: tuple[str, ...] = ()


class ScoreRule(_Model):
    id: Name
    category: Literal["fit", "intent"]
    points: int
    when: Condition

    _id = field_validator("id")(_check_name)


class DisqualifyRule(_Model):
    id: Name
    reason: str = Field(min_length=1)
    when: Condition

    _id = field_validator("id")(_check_name)


class Threshold(_Model):
    name: Name
    min_score: int

    _name = field_validator("name")(_check_name)


def _descending(items: tuple[Threshold, ...], what: str) -> None:
    for i in range(1, len(items)):
        if items[i].min_score >= items[i - 1].min_score:
            raise _at(f"{what}[{i}].min_score", "must be lower than the one before it")


class Qualification(_Model):
    framework: Framework
    rules: tuple[ScoreRule, ...] = Field(min_length=1)
    disqualify: tuple[DisqualifyRule, ...] = ()
    stages: tuple[Threshold, ...] = ()
    tiers: tuple[Threshold, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _thresholds(self) -> Qualification:
        _descending(self.stages, "stages")
        _descending(self.tiers, "tiers")
        if self.tiers[-1].min_score > 0:
            raise _at("tiers", "the lowest tier must have min_score 0 so every score gets a tier")
        return self

    @model_validator(mode="after")
    def _no_scored_fields(self) -> Qualification:
        """Scoring and disqualify rules decide the score: they cannot test it."""
        whens = [(f"rules[{i}]", r.when) for i, r in enumerate(self.rules)]
        whens += [(f"disqualify[{i}]", r.when) for i, r in enumerate(self.disqualify)]
        for where, when in whens:
            for at, field in condition_fields(when):
                if field in SCORED_FIELDS:
                    raise _at(
                        f"{where}.when{at}",
                        f"'{field}' is known only after scoring: test it in routing rules",
                    )
        return self

    def stage_for_score(self, score: int) -> str:
        """First stage whose threshold the score reaches, else "lead"."""
        return next((s.name for s in self.stages if score >= s.min_score), "lead")

    def tier_for_score(self, score: int) -> str:
        """First tier whose threshold the score reaches (the lowest tier catches the rest)."""
        return next((t.name for t in self.tiers if score >= t.min_score), self.tiers[-1].name)
