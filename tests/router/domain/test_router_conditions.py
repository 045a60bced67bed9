"""Every condition operator, missing fields, type mismatches and the plain-words description."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from services.router.domain.conditions import describe, evaluate
from shared.policy import Condition

_ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)


def cond(raw: dict[str, Any]) -> Condition:
    return _ADAPTER.validate_python(raw)


def leaf(field: str, op: str, value: Any) -> Condition:
    return cond({"field": field, "op": op, "value": value})


FACTS: dict[str, object] = {
    "company_size": 500,
    "country": "DE",
    "industry": "Software",
    "demo_request": True,
    "pricing_page": False,
    "pages_viewed": ["/pricing", "/Docs"],
    "company_domain": "acme.com",
    "answers.budget": "50,000",
    "consent_at": datetime(2026, 1, 1, tzinfo=UTC),
}


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("country", "eq", "DE", True),
        ("country", "eq", "de", True),
        ("country", "eq", "FR", False),
        ("company_size", "eq", 500, True),
        ("company_size", "eq", 500.0, True),
        ("demo_request", "eq", True, True),
        ("pricing_page", "eq", False, True),
        ("demo_request", "eq", 1, False),  # bool is not a number
        ("country", "ne", "FR", True),
        ("country", "ne", "de", False),
        ("country", "in", ["FR", "de"], True),
        ("country", "in", ["FR", "AT"], False),
        ("country", "not_in", ["FR", "AT"], True),
        ("country", "not_in", ["DE"], False),
        ("pages_viewed", "in", ["/docs"], True),
        ("company_size", "gt", 499, True),
        ("company_size", "gt", 500, False),
        ("company_size", "gte", 500, True),
        ("company_size", "gte", 501, False),
        ("company_size", "lt", 501, True),
        ("company_size", "lt", 500, False),
        ("company_size", "lte", 500, True),
        ("company_size", "lte", 499.5, False),
        ("answers.budget", "gte", 10000, True),  # numeric text from a form counts as a number
        ("industry", "contains", "soft", True),
        ("industry", "contains", "hardware", False),
        ("pages_viewed", "contains", "/docs", True),
        ("pages_viewed", "contains", "/doc", False),  # list membership, not substring
        ("country", "exists", True, True),
        ("country", "exists", False, False),
        ("company_domain", "matches", r"^acme\.(com|de)$", True),
        ("company_domain", "matches", "ACME", True),
        ("company_domain", "matches", r"^rival\.", False),
        ("pages_viewed", "matches", "^/pri", True),
        ("company_size", "matches", "^5", True),
    ],
)
def test_leaf_operators(field: str, op: str, value: Any, expected: bool) -> None:
    assert evaluate(leaf(field, op, value), FACTS) is expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "x", False),
        ("ne", "x", True),
        ("in", ["x"], False),
        ("not_in", ["x"], True),
        ("gt", 1, False),
        ("gte", 1, False),
        ("lt", 1, False),
        ("lte", 1, False),
        ("contains", "x", False),
        ("matches", ".*", False),
        ("exists", True, False),
        ("exists", False, True),
    ],
)
def test_missing_field_only_negative_tests_hold(op: str, value: Any, expected: bool) -> None:
    for facts in ({}, {"title": None}, {"title": ""}, {"title": "   "}):
        assert evaluate(leaf("title", op, value), facts) is expected


def test_empty_list_counts_as_missing() -> None:
    assert evaluate(leaf("pages_viewed", "exists", True), {"pages_viewed": []}) is False


@pytest.mark.parametrize(
    ("field", "op", "value"),
    [
        ("industry", "gt", 3),  # text vs number
        ("demo_request", "gte", 0),  # bool vs number
        ("consent_at", "lt", 5),  # datetime vs number
        ("company_size", "contains", "5"),  # number has no substrings
        ("pages_viewed", "gt", 1),  # list vs number
        ("demo_request", "matches", "True"),  # bools are not text
        ("company_size", "eq", "500x"),
    ],
)
def test_type_mismatch_is_false_not_an_error(field: str, op: str, value: Any) -> None:
    assert evaluate(leaf(field, op, value), FACTS) is False


def test_all_any_not() -> None:
    big = {"field": "company_size", "op": "gte", "value": 500}
    fr = {"field": "country", "op": "eq", "value": "FR"}
    assert evaluate(cond({"all": [big, {"field": "country", "op": "eq", "value": "DE"}]}), FACTS)
    assert not evaluate(cond({"all": [big, fr]}), FACTS)
    assert evaluate(cond({"any": [fr, big]}), FACTS)
    assert not evaluate(cond({"any": [fr, {"not": big}]}), FACTS)
    assert evaluate(cond({"not": fr}), FACTS)
    assert evaluate(cond({"not": {"any": [fr, {"all": [{"not": big}]}]}}), FACTS)


def test_describe_plain_words() -> None:
    assert describe(leaf("company_size", "gte", 500)) == "company_size ≥ 500"
    assert describe(leaf("country", "in", ["DE", "FR"])) == "country in [DE, FR]"
    assert describe(leaf("demo_request", "eq", True)) == "demo_request"
    assert describe(leaf("consent", "eq", False)) == "not consent"
    assert describe(leaf("title", "exists", False)) == "title is absent"
    both = cond(
        {
            "all": [
                {"field": "company_size", "op": "lt", "value": 50},
                {"any": [{"field": "country", "op": "eq", "value": "DE"},
                         {"not": {"field": "industry", "op": "contains", "value": "gov"}}]},
            ]
        }
    )  # fmt: skip
    assert describe(both) == "company_size < 50 and (country = DE or not (industry contains gov))"


_fact_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=3),
    st.datetimes(timezones=st.just(UTC)),
)
_ops_values = st.sampled_from(
    [
        ("eq", "x"), ("eq", 3), ("eq", True), ("ne", 2.5), ("in", ["a", 1]),
        ("not_in", [True]), ("gt", 0), ("gte", 1.5), ("lt", -3), ("lte", 10),
        ("contains", "a"), ("exists", True), ("exists", False), ("matches", "^a.*b$"),
    ]
)  # fmt: skip


@given(value=_fact_values, op_value=_ops_values)
def test_evaluate_never_raises_and_negations_are_consistent(
    value: object, op_value: tuple[str, Any]
) -> None:
    op, expected = op_value
    facts = {"industry": value}
    result = evaluate(leaf("industry", op, expected), facts)
    assert isinstance(result, bool)
    negated = evaluate(cond({"not": {"field": "industry", "op": op, "value": expected}}), facts)
    assert negated is not result
    if op == "eq":
        assert evaluate(leaf("industry", "ne", expected), facts) is not result
