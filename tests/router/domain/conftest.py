"""Fixtures: small routing policies built with the real loader, and a fixed now (no clock reads).

With --import-mode=importlib test modules cannot import helpers, so everything is a fixture.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from shared.policy import Policy, parse_policy

WEEKDAYS = {day: ["09:00", "17:30"] for day in ("mon", "tue", "wed", "thu", "fri")}

# Wednesday 2 December 2026, 10:00 UTC = 11:00 in Berlin, 05:00 in New York.
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def rep(rep_id: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": rep_id,
        "name": f"Rep {rep_id}",
        "email": f"{rep_id}@example.com",
        "timezone": "Europe/Berlin",
        "working_hours": copy.deepcopy(WEEKDAYS),
        "weight": 1,
        "capacity": 10,
        "active": True,
    }
    base.update(overrides)
    return base


BASE: dict[str, Any] = {
    "version": "test.1",
    "sources": [
        {
            "name": "website-demo",
            "kind": "form",
            "auth": {
                "scheme": "none",
                "allowed_origins": ["https://www.example.com"],
                "honeypot_field": "website_url",
            },
            "rate_limit": {"requests": 60, "per_seconds": 60},
            "fields": {"email": "email"},
        }
    ],
    "qualification": {
        "framework": {"name": "BANT", "questions": ["budget", "authority", "need", "timeline"]},
        "rules": [
            {"id": "enterprise-size", "category": "fit", "points": 25,
             "when": {"field": "company_size", "op": "gte", "value": 500}},
            {"id": "senior", "category": "fit", "points": 10,
             "when": {"field": "seniority", "op": "in", "value": ["c_level", "vp", "director"]}},
            {"id": "demo", "category": "intent", "points": 40,
             "when": {"field": "demo_request", "op": "eq", "value": True}},
            {"id": "pricing", "category": "intent", "points": 5,
             "when": {"field": "pricing_page", "op": "eq", "value": True}},
        ],
        "disqualify": [
            {"id": "competitor", "reason": "competitor",
             "when": {"field": "company_domain", "op": "in", "value": ["rival.com"]}},
            {"id": "student", "reason": "student",
             "when": {"field": "email", "op": "matches", "value": r"\.edu$"}},
        ],
        "stages": [{"name": "sql", "min_score": 70}, {"name": "mql", "min_score": 40}],
        "tiers": [
            {"name": "hot", "min_score": 70},
            {"name": "warm", "min_score": 40},
            {"name": "cold", "min_score": 0},
        ],
    },
    "teams": [
        {
            "id": "emea",
            "name": "EMEA Sales",
            "manager": {"name": "Mia Manager", "email": "mia@example.com"},
            "reps": [rep("rep-anna", weight=2), rep("rep-ben")],
        },
        {
            "id": "inbound",
            "name": "Inbound",
            "manager": {"name": "Ian Manager", "email": "ian@example.com"},
            "reps": [
                rep("rep-carl", timezone="America/New_York"),
                rep("rep-dora", timezone="America/New_York"),
            ],
        },
    ],
    "rules": [
        {"id": "accounts", "when": {"field": "company_domain", "op": "exists", "value": True},
         "team": "emea", "strategy": "account_owner"},
        {"id": "enterprise-emea",
         "when": {"all": [{"field": "company_size", "op": "gte", "value": 500},
                          {"field": "country", "op": "in", "value": ["DE", "FR"]}]},
         "team": "emea", "strategy": "round_robin"},
        {"id": "default", "default": True, "team": "inbound", "strategy": "least_loaded"},
    ],
    "fallback_team": "inbound",
    "accounts": [{"domain": "acme.com", "name": "Acme Corp", "owner": "rep-anna"}],
    "sla": {
        "tiers": {
            "hot": {"window_seconds": 3600, "clock": "business"},
            "warm": {"window_seconds": 14400, "clock": "business"},
            "cold": {"window_seconds": 86400, "clock": "wall"},
        }
    },
    "escalation": [
        {"level": 1, "action": "remind_owner", "after_seconds": 0},
        {"level": 2, "action": "notify_manager", "after_seconds": 1800},
    ],
    "dedupe": {"open_lead_days": 30},
    "retention": {"lead_days": 730},
}  # fmt: skip


PolicyFactory = Callable[..., Policy]


def build_policy(change: Callable[[dict[str, Any]], None] | None = None) -> Policy:
    """BASE, edited by ``change``, dumped to YAML and parsed by the real loader."""
    data = copy.deepcopy(BASE)
    if change is not None:
        change(data)
    return parse_policy(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="session")
def make_policy() -> PolicyFactory:
    """``make_policy(change)``: BASE edited in place by ``change(data)``, then loaded."""
    return build_policy


@pytest.fixture(scope="session")
def rep_spec() -> Callable[..., dict[str, Any]]:
    """``rep_spec(rep_id, **overrides)``: a rep entry for the policy file."""
    return rep


@pytest.fixture
def policy() -> Policy:
    return build_policy()


@pytest.fixture(scope="session")
def now() -> datetime:
    return NOW
