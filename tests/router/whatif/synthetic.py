"""A year of synthetic leads with known scores and outcomes, and the policy they are routed by.

Scores are planted bit by bit: six scoring rules worth 1, 2, 4, 8, 16 and 32 points test
``extra.b1`` .. ``extra.b32``, so every score 0..63 is reachable and each lead's score is known
without scoring it. Outcomes follow a planted threshold: only leads scoring ``THRESHOLD`` or
more ever convert. Seeded, so the same arguments give the same leads. Not a test module.
"""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from shared.policy import Policy, parse_policy

THRESHOLD = 37
BITS = (1, 2, 4, 8, 16, 32)
YEAR_START = datetime(2021, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2022, 1, 1, tzinfo=UTC)
WEEKDAYS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
ALWAYS = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
REASONS = ("No budget", "wrong contact person", "Already a customer", "no budget")
SOURCES = ("web", "chat", "events")
COSTS = {"web": 20.0, "chat": 8.0}


def _source(name: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "kind": "chat" if name == "chat" else "form",
        "auth": {
            "scheme": "none",
            "allowed_origins": ["https://www.example.com"],
            "honeypot_field": "website_url",
        },
        "rate_limit": {"requests": 60, "per_seconds": 60},
        "fields": {"email": "email"},
    }
    if name in COSTS:
        out["cost_per_lead"] = COSTS[name]
    return out


def _rep(rep_id: str, hours: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": rep_id,
        "name": f"Rep {rep_id.split('-')[0].upper()} {rep_id.split('-')[1].upper()}",
        "email": f"{rep_id}@example.com",
        "timezone": "Europe/Berlin",
        "working_hours": copy.deepcopy(hours),
        "weight": 1,
        "capacity": 1000,
        **extra,
    }


def policy_data(tag: str) -> dict[str, Any]:
    """Account owners, round robin in working hours with small capacities, least loaded, a
    24/7 fallback desk: every path of choose_owner gets traffic over a year."""

    def r(name: str) -> str:
        return f"{name}-{tag}"

    return {
        "version": f"whatif-{tag}",
        "sources": [_source(s) for s in SOURCES],
        "qualification": {
            "framework": {"name": "BANT", "questions": ["budget"]},
            "rules": [
                {"id": f"b{p}", "category": "fit" if p < 8 else "intent", "points": p,
                 "when": {"field": f"extra.b{p}", "op": "eq", "value": "y"}}
                for p in BITS
            ],
            "disqualify": [
                {"id": "competitor", "reason": "competitor",
                 "when": {"field": "company_domain", "op": "in", "value": [f"rival-{tag}.com"]}},
                {"id": "student", "reason": "student",
                 "when": {"field": "title", "op": "contains", "value": "student"}},
            ],
            "stages": [{"name": "sql", "min_score": 48}, {"name": "mql", "min_score": 24}],
            "tiers": [
                {"name": "hot", "min_score": 48},
                {"name": "warm", "min_score": 24},
                {"name": "cold", "min_score": 0},
            ],
        },
        "teams": [
            {"id": "ent", "name": "Enterprise",
             "manager": {"name": "Ent Manager", "email": "ent@example.com"},
             "reps": [_rep(r("ent-a"), WEEKDAYS, weight=2, capacity=6),
                      _rep(r("ent-b"), WEEKDAYS, capacity=4)]},
            {"id": "smb", "name": "SMB",
             "manager": {"name": "Smb Manager", "email": "smb@example.com"},
             "reps": [_rep(r("smb-a"), WEEKDAYS, capacity=8), _rep(r("smb-b"), ALWAYS, capacity=8),
                      _rep(r("smb-c"), WEEKDAYS, capacity=8, active=False)]},
            {"id": "desk", "name": "Inbound desk",
             "manager": {"name": "Desk Manager", "email": "desk@example.com"},
             "reps": [_rep(r("desk-a"), ALWAYS), _rep(r("desk-b"), ALWAYS, weight=3)]},
        ],
        "rules": [
            {"id": "accounts", "when": {"field": "account_owner", "op": "exists", "value": True},
             "team": "ent", "strategy": "account_owner"},
            {"id": "enterprise", "when": {"field": "company_size", "op": "gte", "value": 500},
             "team": "ent", "strategy": "round_robin", "require_working_hours": True},
            {"id": "smb", "when": {"field": "company_size", "op": "gte", "value": 1},
             "team": "smb", "strategy": "least_loaded"},
            {"id": "default", "default": True, "team": "desk", "strategy": "round_robin"},
        ],
        "fallback_team": "desk",
        "accounts": [{"domain": f"listed-{tag}.com", "name": "Listed", "owner": r("ent-b")}],
        "sla": {"tiers": {
            "hot": {"window_seconds": 3600, "clock": "business"},
            "warm": {"window_seconds": 14400, "clock": "business"},
            "cold": {"window_seconds": 86400, "clock": "wall"},
        }},
        "escalation": [
            {"level": 1, "action": "remind_owner", "after_seconds": 0},
            {"level": 2, "action": "reassign", "after_seconds": 1800},
        ],
        "dedupe": {"open_lead_days": 30},
        "retention": {"lead_days": 730},
    }  # fmt: skip


def to_policy(data: dict[str, Any]) -> Policy:
    text = yaml.safe_dump(data, sort_keys=False)
    return parse_policy(text)


@dataclass
class Synth:
    """One generated lead: the canonical lead dict, its planted score and outcome."""

    lead: dict[str, Any]
    score: int
    disqualified: bool
    outcome: str  # converted | disqualified | rejected | not_ready | open
    closed_at: datetime | None
    activities: list[tuple[str, datetime, str | None]] = field(default_factory=list)

    @property
    def lead_id(self) -> str:
        return str(self.lead["lead_id"])

    @property
    def received_at(self) -> datetime:
        return datetime.fromisoformat(self.lead["received_at"])


def generate(
    n: int,
    *,
    tag: str,
    seed: int = 7,
    start: datetime = YEAR_START,
    end: datetime = YEAR_END,
) -> list[Synth]:
    """``n`` leads spread over ``[start, end)``, in received order, ids derived from the seed."""
    rng = random.Random(f"{seed}-{tag}")
    span = (end - start).total_seconds()
    times = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(n))
    out: list[Synth] = []
    domains = [f"co{k}-{tag}.com" for k in range(max(4, n // 15))]
    for i, at in enumerate(times):
        bits = [p for p in BITS if rng.random() < 0.45]
        score = sum(bits)
        roll = rng.random()
        recent = [s for s in out[-40:] if s.lead["contact"]["email"]]
        if recent and roll < 0.06:  # the same contact again, often inside the open window
            email = rng.choice(recent).lead["contact"]["email"]
            kind = "business"
        elif roll < 0.20:
            email, kind = f"p{i}.{tag}@gmail.com", "free"
        else:
            email, kind = None, "business"
        size = rng.choice((None, None, 12, 40, 120, 700, 2500))
        domain = rng.choice(domains)
        if rng.random() < 0.05:
            domain = f"listed-{tag}.com"
        title = "VP Sales"
        dq_roll = rng.random()
        if dq_roll < 0.02:
            domain = f"rival-{tag}.com"
        elif dq_roll < 0.04:
            title = "Student"
        if email is None:
            email = f"p{i}.{tag}@{domain}"
        company_domain = domain if kind == "business" else "gmail.com"
        lead = {
            "lead_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "received_at": at.isoformat(),
            "source": rng.choice(SOURCES),
            "channel": "form",
            "contact": {
                "email": email,
                "phone": None,
                "first_name": "Test",
                "last_name": "Person",
                "title": title,
                "seniority": "vp",
                "company": "Example",
                "company_domain": company_domain,
                "country": "DE",
                "email_kind": kind,
            },
            "consent": {"marketing_opt_in": True, "at": None, "wording": "ok"},
            "message": None,
            "utm": {},
            "engagement": {
                "demo_request": False,
                "pricing_page": False,
                "pages_viewed": [],
                "content_downloaded": [],
                "chat_message": False,
            },
            "company_size": size,
            "industry": None,
            "answers": {},
            "extra": {f"b{p}": "y" for p in bits},
        }
        disqualified = domain == f"rival-{tag}.com" or title == "Student"
        outcome, closed_at, acts = _outcome(rng, score, at)
        out.append(Synth(lead, score, disqualified, outcome, closed_at, acts))
    return out


def _outcome(
    rng: random.Random, score: int, at: datetime
) -> tuple[str, datetime | None, list[tuple[str, datetime, str | None]]]:
    later = at + timedelta(hours=rng.uniform(2, 24 * 20))
    contacted = ("contacted", at + timedelta(minutes=rng.uniform(5, 600)), None)
    roll = rng.random()
    if score >= THRESHOLD and roll < 0.45:
        return "converted", later, [contacted, ("converted", later, "signed")]
    if roll < 0.35:
        reason = rng.choice(REASONS)
        # a rejected lead is then closed by a disqualification from the next rep
        return (
            "rejected",
            later,
            [contacted, ("rejected", later - timedelta(hours=1), reason),
             ("disqualified", later, None)],
        )  # fmt: skip
    if roll < 0.65:
        return "disqualified", later, [contacted, ("disqualified", later, "not a fit")]
    if roll < 0.80:
        return "not_ready", later, [contacted, ("not_ready", later, None)]
    return "open", None, [contacted] if roll < 0.90 else []
