"""Fixtures for the router's service tests against the real PostgreSQL (and Kafka topics).

Each test gets a ``RouterKit`` with a unique tag: its rep ids, domains and emails carry the tag,
so tests sharing the session's database never see each other's rep loads, round-robin state,
accounts or open leads. Decisions are committed like in production (one transaction each).
With --import-mode=importlib test modules cannot import helpers, so the kit is a fixture.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import pytest
import yaml
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.router.app import create_app
from services.router.metrics import RouterMetrics
from services.router.service import PolicyHolder, RouterService
from shared.db import Outbox, make_engine, make_sessionmaker
from shared.events import Consent, Contact, Engagement, Lead, utcnow
from shared.kafka import ensure_topics
from shared.policy import Policy, parse_policy
from shared.settings import Settings
from tests.conftest import delete_topics, unique_topics

ALWAYS = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _rep(rep_id: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": rep_id,
        "name": f"Rep {rep_id}",
        "email": f"{rep_id}@example.com",
        "timezone": "Europe/Berlin",
        "working_hours": copy.deepcopy(ALWAYS),
        "weight": 1,
        "capacity": 1000,
    }
    base.update(overrides)
    return base


def base_policy(tag: str) -> dict[str, Any]:
    """A small complete policy; every rep is on duty around the clock (tests never hit hours)."""

    def r(name: str) -> str:
        return f"{name}-{tag}"

    return {
        "version": f"router-test-{tag}",
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
            "framework": {"name": "BANT", "questions": ["budget", "timeline"]},
            "rules": [
                {"id": "enterprise-size", "category": "fit", "points": 25,
                 "when": {"field": "company_size", "op": "gte", "value": 500}},
                {"id": "business-email", "category": "fit", "points": 10,
                 "when": {"field": "email_kind", "op": "eq", "value": "business"}},
                {"id": "demo", "category": "intent", "points": 40,
                 "when": {"field": "demo_request", "op": "eq", "value": True}},
            ],
            "disqualify": [
                {"id": "competitor", "reason": "competitor",
                 "when": {"field": "company_domain", "op": "in", "value": [f"rival-{tag}.com"]}},
                {"id": "student", "reason": "student",
                 "when": {"field": "title", "op": "contains", "value": "student"}},
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
                "id": "direct",
                "name": "Direct Sales",
                "manager": {"name": "Mia Manager", "email": "mia@example.com"},
                "reps": [
                    _rep(r("a"), weight=1),
                    _rep(r("b"), weight=2),
                    _rep(r("c"), weight=3, manager_email="eric@example.com"),
                ],
            },
            {
                "id": "closed",
                "name": "Closed Desk",
                "manager": {"name": "Cleo Manager", "email": "cleo@example.com"},
                "reps": [_rep(r("z"), active=False)],
            },
            {
                "id": "reserve",
                "name": "Reserve Desk",
                "manager": {"name": "Ray Manager", "email": "ray@example.com"},
                "reps": [_rep(r("r"))],
            },
        ],
        "rules": [
            {"id": "accounts", "when": {"field": "account_owner", "op": "exists", "value": True},
             "team": "direct", "strategy": "account_owner"},
            {"id": "closed-desk", "when": {"field": "utm_campaign", "op": "eq", "value": "closed"},
             "team": "closed", "strategy": "round_robin"},
            {"id": "default", "default": True, "team": "direct", "strategy": "round_robin"},
        ],
        "fallback_team": "reserve",
        "accounts": [
            {"domain": f"listed-{tag}.com", "name": "Listed Corp", "owner": r("c")},
            {"domain": "gmail.com", "name": "Not A Company", "owner": r("a")},
        ],
        "sla": {
            "tiers": {
                "hot": {"window_seconds": 3600, "clock": "business"},
                "warm": {"window_seconds": 7200, "clock": "wall"},
                "cold": {"window_seconds": 86400, "clock": "wall"},
            }
        },
        "escalation": [
            {"level": 1, "action": "remind_owner", "after_seconds": 0},
            {"level": 2, "action": "notify_manager", "after_seconds": 900},
            {"level": 3, "action": "reassign", "after_seconds": 1800},
        ],
        "dedupe": {"open_lead_days": 30},
        "retention": {"lead_days": 730},
    }  # fmt: skip


@dataclass
class RouterKit:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    _n: int = 0

    def rep(self, name: str) -> str:
        return f"{name}-{self.tag}"

    def policy_data(self, change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        data = base_policy(self.tag)
        if change is not None:
            change(data)
        return data

    def policy(self, change: Callable[[dict[str, Any]], None] | None = None) -> Policy:
        return parse_policy(yaml.safe_dump(self.policy_data(change), sort_keys=False))

    def service(
        self, policy: Policy | None = None, registry: CollectorRegistry | None = None
    ) -> RouterService:
        return RouterService(
            holder=PolicyHolder(policy or self.policy()),
            outbox=Outbox("router"),
            metrics=RouterMetrics(registry or CollectorRegistry()),
            assigned_topic=self.settings.topics.leads_assigned,
            erased_topic=self.settings.topics.contacts_erased,
        )

    def email(self, local: str = "lead", domain: str | None = None) -> str:
        self._n += 1
        return f"{local}.{self.tag}.{self._n}@{domain or f'company-{self.tag}.com'}"

    def lead(
        self,
        *,
        email: str | None = "",
        phone: str | None = None,
        kind: str | None = "business",
        domain: str | None = None,
        **fields: Any,
    ) -> Lead:
        """A canonical lead; a fresh business email unless ``email`` is given (None: no email)."""
        if email == "":
            email = self.email(domain=domain)
        if domain is None and email and kind == "business":
            domain = email.split("@")[1]
        contact = {
            "email": email,
            "phone": phone,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "title": fields.pop("title", "VP Engineering"),
            "seniority": "vp",
            "company": "Analytical Engines",
            "company_domain": domain,
            "country": "DE",
            "email_kind": kind if email else None,
        }
        return Lead(
            lead_id=str(uuid.uuid4()),
            received_at=fields.pop("received_at", utcnow()),
            source="website-demo",
            channel="form",
            contact=Contact.model_validate(contact),
            consent=Consent(marketing_opt_in=True, wording="ok"),
            engagement=fields.pop("engagement", Engagement()),
            **fields,
        )

    async def receive(self, service: RouterService, lead: Lead, now: datetime | None = None) -> str:
        async with self.sessions() as session, session.begin():
            return await service.on_received(session, lead=lead, now=now or utcnow())

    async def rows(self, sql: str, **params: Any) -> list[Mapping[str, Any]]:
        async with self.sessions() as session:
            result = await session.execute(text(sql), params)
            return [cast(Mapping[str, Any], r._mapping) for r in result]

    async def events(self, lead_id: str) -> list[dict[str, Any]]:
        """The outbox rows for a lead, decoded, in the order they were written."""
        rows = await self.rows(
            "SELECT payload FROM router.outbox WHERE key = :k ORDER BY id", k=lead_id
        )
        return [orjson.loads(bytes(r["payload"])) for r in rows]

    async def assignments(self, lead_id: str) -> list[Mapping[str, Any]]:
        return await self.rows(
            "SELECT * FROM router.assignments WHERE lead_id = CAST(:l AS uuid) ORDER BY seq",
            l=lead_id,
        )

    async def open_leads(self, rep_id: str) -> int:
        rows = await self.rows(
            "SELECT open_leads FROM router.rep_state WHERE rep_id = :r", r=rep_id
        )
        return int(rows[0]["open_leads"]) if rows else 0


@pytest.fixture(scope="session")
async def router_settings(migrated: Settings) -> AsyncIterator[Settings]:
    """The session database with real topics, so outbox rows left behind stay publishable."""
    topics = unique_topics()
    settings = migrated.model_copy(
        update={"topics": topics, "consumer_group_prefix": topics.leads_received.split(".")[0]}
    )
    await ensure_topics(settings)
    yield settings
    await delete_topics(settings, topics.all())  # a long-lived local broker keeps no leftovers


@pytest.fixture
async def kit(router_settings: Settings) -> AsyncIterator[RouterKit]:
    engine = make_engine(router_settings.database_url, pool_size=5)
    try:
        yield RouterKit(router_settings, engine, make_sessionmaker(engine))
    finally:
        await engine.dispose()


@pytest.fixture
def new_kit(router_settings: Settings) -> Callable[[str], RouterKit]:
    """Another engine (another "instance") sharing a kit's tag; the caller disposes it."""

    def make(tag: str) -> RouterKit:
        engine = make_engine(router_settings.database_url, pool_size=5)
        return RouterKit(router_settings, engine, make_sessionmaker(engine), tag=tag)

    return make


@dataclass(frozen=True, slots=True)
class RunningRouter:
    """A router app inside its lifespan (consumer, relay, ticker) and an admin client."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    policy_path: Path


@asynccontextmanager
async def running_router(
    settings: Settings,
    policy: dict[str, Any],
    policy_path: Path,
    *,
    token: str,
    actor: str = "test",
) -> AsyncIterator[RunningRouter]:
    """The real router app on `settings` with `policy` written to `policy_path` (a reload
    re-reads it) and an httpx client carrying `token`, the admin token of `actor`."""
    await asyncio.to_thread(policy_path.write_text, yaml.safe_dump(policy, sort_keys=False))
    settings = settings.model_copy(
        update={
            "policy_path": policy_path,
            "api_tokens": f"{actor}:admin:{hashlib.sha256(token.encode()).hexdigest()}",
        }
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {token}"},
        ) as client,
    ):
        yield RunningRouter(app, client, settings, policy_path)
