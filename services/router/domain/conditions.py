"""Evaluate and describe policy conditions against lead facts.

Conditions are written by sales ops and meet whatever a web form sent, so evaluation never
raises: a missing field or a type that does not fit simply makes the test false (except the
negative tests ``ne``/``not_in``/``exists: false``, which are true for a missing field).
String tests ignore case, because "DE", "de" and "Acme.com" mean the same thing to people.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

from services.router.domain.facts import LeadFacts
from shared.policy import (
    AllCondition,
    AnyCondition,
    Condition,
    FieldCondition,
    NotCondition,
)

_SYMBOLS = {
    "eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
    "in": "in", "not_in": "not in", "contains": "contains", "matches": "matches",
}  # fmt: skip


def is_missing(value: object) -> bool:
    """None, an empty string and an empty list all mean "the lead did not say"."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | tuple) and not value


def _number(value: object) -> float | None:
    """A real number (not a bool); numeric strings count, since answers.* arrive as text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = float(value.strip().replace(",", ""))
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def _equal(fact: object, expected: object) -> bool:
    if isinstance(fact, bool) or isinstance(expected, bool):
        return isinstance(fact, bool) and isinstance(expected, bool) and fact is expected
    if isinstance(fact, str) and isinstance(expected, str):
        return fact.strip().casefold() == expected.strip().casefold()
    if isinstance(expected, int | float):
        number = _number(fact)
        return number is not None and number == float(expected)
    return fact == expected


def _is_in(fact: object, options: object) -> bool:
    if not isinstance(options, list | tuple):
        return False
    values = fact if isinstance(fact, list | tuple) else [fact]
    return any(_equal(v, o) for v in values for o in options)


def _compare(fact: object, expected: object, test: Callable[[float, float], bool]) -> bool:
    if isinstance(fact, datetime) or isinstance(expected, datetime):
        return False  # policy values are scalars; datetimes only appear as facts
    left, right = _number(fact), _number(expected)
    if isinstance(expected, str) or left is None or right is None:
        return False
    return test(left, right)


def _contains(fact: object, expected: object) -> bool:
    if isinstance(fact, str) and isinstance(expected, str):
        return expected.casefold() in fact.casefold()
    if isinstance(fact, list | tuple):
        return any(_equal(item, expected) for item in fact)
    return False


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _matches(fact: object, pattern: object) -> bool:
    if not isinstance(pattern, str):
        return False
    if isinstance(fact, list | tuple):
        return any(_matches(item, pattern) for item in fact)
    if isinstance(fact, bool) or not isinstance(fact, str | int | float):
        return False
    return _regex(pattern).search(str(fact)) is not None


_LEAF_TESTS: dict[str, Callable[[object, object], bool]] = {
    "eq": _equal,
    "ne": lambda f, v: not _equal(f, v),
    "in": _is_in,
    "not_in": lambda f, v: not _is_in(f, v),
    "gt": lambda f, v: _compare(f, v, lambda a, b: a > b),
    "gte": lambda f, v: _compare(f, v, lambda a, b: a >= b),
    "lt": lambda f, v: _compare(f, v, lambda a, b: a < b),
    "lte": lambda f, v: _compare(f, v, lambda a, b: a <= b),
    "contains": _contains,
    "matches": _matches,
}


def _evaluate_leaf(cond: FieldCondition, facts: LeadFacts) -> bool:
    fact = facts.get(cond.field)
    if cond.op == "exists":
        return (not is_missing(fact)) is bool(cond.value)
    if is_missing(fact):
        return cond.op in ("ne", "not_in")
    return _LEAF_TESTS[cond.op](fact, cond.value)


def evaluate(cond: Condition, facts: LeadFacts) -> bool:
    """Whether the lead's facts satisfy the condition; never raises on odd data."""
    if isinstance(cond, FieldCondition):
        return _evaluate_leaf(cond, facts)
    if isinstance(cond, AllCondition):
        return all(evaluate(c, facts) for c in cond.all)
    if isinstance(cond, AnyCondition):
        return any(evaluate(c, facts) for c in cond.any)
    if isinstance(cond, NotCondition):
        return not evaluate(cond.not_, facts)
    raise TypeError(f"not a condition: {type(cond).__name__}")


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _describe_leaf(cond: FieldCondition) -> str:
    if cond.op == "exists":
        return f"{cond.field} is {'present' if cond.value else 'absent'}"
    if cond.op == "eq" and isinstance(cond.value, bool):
        return cond.field if cond.value else f"not {cond.field}"
    return f"{cond.field} {_SYMBOLS[cond.op]} {_show(cond.value)}"


def describe(cond: Condition) -> str:
    """The condition in plain words ("company_size ≥ 500"), from the policy only, never the lead.

    Only field names and the policy's own values appear, so it is safe for events and logs.
    """
    if isinstance(cond, FieldCondition):
        return _describe_leaf(cond)
    if isinstance(cond, AllCondition):
        return _join(cond.all, " and ")
    if isinstance(cond, AnyCondition):
        return _join(cond.any, " or ")
    if isinstance(cond, NotCondition):
        return f"not ({describe(cond.not_)})"
    raise TypeError(f"not a condition: {type(cond).__name__}")


def _join(parts: tuple[Condition, ...], glue: str) -> str:
    if len(parts) == 1:
        return describe(parts[0])
    return glue.join(
        f"({describe(p)})" if isinstance(p, AllCondition | AnyCondition) else describe(p)
        for p in parts
    )
