"""Retention: leads older than the policy's `retention.lead_days` lose their personal data
(`baton purge`), younger ones are untouched, and followup follows the published
`contact.erased`. Rows are backdated to 1980 so the purge never meets other tests' leads."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ops.retention import purge
from services.followup.app import create_app as followup_app
from services.router.app import create_app as router_app
from shared.events import Lead
from shared.settings import Settings
from tests.conftest import ROOT, EventReader

pytestmark = pytest.mark.integration

NOW = datetime(1982, 6, 1, 12, 0, tzinfo=UTC)  # the purge's "now": cutoff = NOW - DAYS
DAYS = 730


def lead_doc(lead_id: str, email: str, received_at: datetime) -> dict[str, Any]:
    return Lead.model_validate(
        {
            "lead_id": lead_id,
            "received_at": received_at,
            "source": "website-demo",
            "channel": "form",
            "contact": {
                "email": email,
                "phone": "+4915199887766",
                "first_name": "Quintessa",
                "last_name": "Voss",
                "company_domain": email.split("@")[1],
                "email_kind": "business",
                "country": "DE",
            },
            "message": "call Quintessa",
            "company_size": 300,
        }
    ).model_dump(mode="json")


async def seed(engine: AsyncEngine, lead_id: str, email: str, received_at: datetime) -> None:
    doc = orjson.dumps(lead_doc(lead_id, email, received_at)).decode()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO intake.leads (lead_id, source, channel, received_at, lead) "
                "VALUES (:id, 'website-demo', 'form', :at, CAST(:doc AS jsonb))"
            ),
            {"id": lead_id, "at": received_at, "doc": doc},
        )
        await conn.execute(
            text(
                "INSERT INTO router.leads (lead_id, source, received_at, email, phone, "
                "company_domain, status, owner_id, team_id, assignment_seq, score, tier, stage, "
                "policy_version, lead, closed_at) VALUES (:id, 'website-demo', :at, :email, "
                "'+4915199887766', :domain, 'converted', 'rep-x', 'team-x', 1, 42, 'warm', 'sql', "
                "'v-test-retention', CAST(:doc AS jsonb), :at)"
            ),
            {
                "id": lead_id,
                "at": received_at,
                "email": email,
                "domain": email.split("@")[1],
                "doc": doc,
            },
        )
        await conn.execute(
            text(
                "INSERT INTO router.decisions (lead_id, kind, policy_version, at, trace) VALUES "
                "(:id, 'reassigned', 'v-test', :at, CAST(:t AS jsonb))"
            ),
            {
                "id": lead_id,
                "at": received_at,
                "t": orjson.dumps({"reason": "rejected by owner: Quintessa is a student"}).decode(),
            },
        )
        await conn.execute(
            text(
                "INSERT INTO followup.activities (activity_id, lead_id, type, at, actor, note) "
                "VALUES (:a, :id, 'contacted', :at, 'rep-x', 'reached Quintessa Voss')"
            ),
            {"a": f"act-{uuid.uuid4()}", "id": lead_id, "at": received_at},
        )


async def snapshot(engine: AsyncEngine, lead_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT i.lead AS intake_lead, i.erased_at AS intake_erased, "
                    "r.email, r.phone, r.lead AS router_lead, r.erased_at AS router_erased, "
                    "r.score, r.tier, r.owner_id, r.status, "
                    "(SELECT trace FROM router.decisions d WHERE d.lead_id = r.lead_id) AS trace, "
                    "(SELECT note FROM followup.activities a WHERE a.lead_id = r.lead_id) AS note "
                    "FROM intake.leads i JOIN router.leads r USING (lead_id) "
                    "WHERE lead_id = :id"
                ),
                {"id": lead_id},
            )
        ).one()
    return dict(row._mapping)


@pytest.fixture
async def engine(migrated: Settings) -> AsyncIterator[AsyncEngine]:
    """Seeded leads are deleted afterwards: history-reading tests share the database."""
    eng = create_async_engine(migrated.database_url)
    yield eng
    async with eng.begin() as conn:
        ids = [r[0] for r in await conn.execute(text(SEEDED))]
        for table in (
            "intake.leads", "router.decisions", "router.leads", "followup.activities"
        ):  # fmt: skip
            await conn.execute(
                text(f"DELETE FROM {table} WHERE lead_id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": ids},
            )
        await conn.execute(text("DELETE FROM router.erasures WHERE erased_at = :at"), {"at": NOW})
    await eng.dispose()


SEEDED = "SELECT lead_id::text FROM router.leads WHERE policy_version = 'v-test-retention'"


async def test_purge_erases_only_expired_leads_and_followup_follows(
    kafka_settings: Settings,
    engine: AsyncEngine,
    env_secrets: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env_secrets.items():  # followup's activity sources need their secrets
        monkeypatch.setenv(name, value)
    tag = uuid.uuid4().hex[:8]
    old_id, young_id = str(uuid.uuid4()), str(uuid.uuid4())
    cutoff = NOW - timedelta(days=DAYS)
    await seed(engine, old_id, f"old-{tag}@voss-{tag}.de", cutoff - timedelta(days=1))
    await seed(engine, young_id, f"young-{tag}@voss-{tag}.de", cutoff + timedelta(days=1))

    router, followup = router_app(kafka_settings), followup_app(kafka_settings)
    async with (
        router.router.lifespan_context(router),
        followup.router.lifespan_context(followup),
        EventReader(kafka_settings, kafka_settings.topics.contacts_erased) as reader,
    ):
        intake_n, router_n = await purge(kafka_settings, days=DAYS, now=NOW)
        assert intake_n >= 1 and router_n >= 1
        event = await reader.wait_for(
            lambda e: e.type == "contact.erased" and old_id in e.data["lead_ids"], timeout=30
        )
        assert young_id not in event.data["lead_ids"] and event.data["reason"] == "retention"

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while (await snapshot(engine, old_id))["note"] is not None:  # followup consumed it
            assert loop.time() < deadline, "followup did not erase the note"
            await asyncio.sleep(0.2)

    old, young = await snapshot(engine, old_id), await snapshot(engine, young_id)
    for lead in (old["intake_lead"], old["router_lead"]):
        assert "email" not in lead["contact"] and "Quintessa" not in orjson.dumps(lead).decode()
        assert lead["company_size"] == 300 and lead["contact"]["country"] == "DE"
    assert old["email"] is None and old["phone"] is None
    assert old["intake_erased"] == old["router_erased"] == NOW
    assert old["trace"] == {"reason": "rejected by owner"}
    facts = (old["score"], old["tier"], old["owner_id"], old["status"])
    assert facts == (42, "warm", "rep-x", "converted")

    assert young["email"] == f"young-{tag}@voss-{tag}.de" and young["note"] is not None
    assert young["intake_erased"] is None and young["router_erased"] is None
    assert young["router_lead"]["contact"]["first_name"] == "Quintessa"

    # A second run finds nothing more to do.
    assert await purge(kafka_settings, days=DAYS, now=NOW) == (0, 0)


def test_baton_purge_command_runs_with_the_policy_limit(migrated: Settings) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": migrated.database_url,
        "POLICY_PATH": str(ROOT / "deploy" / "policy.example.yaml"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "ops.cli", "purge", "--days", "100000"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "purged leads older than 100000 days: intake 0, router 0" in out.stdout
