"""The router app on the real stack: policy reload by endpoint and SIGHUP, versions on events."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from sqlalchemy import text

from shared.events import Lead, make_event
from shared.kafka import make_producer
from shared.settings import Settings
from tests.conftest import ROOT, EventReader
from tests.router.conftest import RouterKit, running_router

pytestmark = pytest.mark.integration
TOKEN = "router-test-admin-token"


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
async def app_client(
    kafka_settings: Settings, kit: RouterKit, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Path]]:
    policy = kit.policy_data()
    async with running_router(kafka_settings, policy, tmp_path / "p.yaml", token=TOKEN) as r:
        yield r.app, r.client, r.policy_path


async def _send(settings: Settings, lead: Lead) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        event = make_event(
            type="lead.received", source="/test", subject=lead.lead_id, data=lead, id=lead.lead_id
        )
        await producer.send_and_wait(
            settings.topics.leads_received, event.to_bytes(), key=lead.lead_id.encode()
        )
    finally:
        await producer.stop()


async def _version(client: httpx.AsyncClient) -> str:
    resp = await client.get("/v1/admin/policy")
    assert resp.status_code == 200, resp.text
    return str(resp.json()["version"])


async def test_reload_swaps_policy_and_every_decision_carries_its_version(
    app_client: tuple[FastAPI, httpx.AsyncClient, Path], kafka_settings: Settings, kit: RouterKit
) -> None:
    _, client, path = app_client
    v1 = await _version(client)
    topics = kafka_settings.topics
    async with EventReader(kafka_settings, topics.leads_assigned) as reader:
        first = kit.lead()
        await _send(kafka_settings, first)
        got1 = await reader.wait_for(lambda e: e.subject == first.lead_id, timeout=30)

        # an invalid file: 422 naming the field, and the old policy stays live
        bad = kit.policy_data()
        bad["teams"][0]["reps"][1]["timezone"] = "Europe/Pariss"
        _write(path, bad)
        resp = await client.post("/v1/admin/policy/reload")
        assert resp.status_code == 422
        assert resp.headers["content-type"].startswith("application/problem+json")
        problem = resp.json()
        assert problem["type"].endswith("/invalid-policy")
        assert "teams[0].reps[1].timezone: unknown time zone 'Europe/Pariss'" in problem["detail"]
        assert problem["errors"] == [
            {"name": "teams[0].reps[1].timezone", "message": "unknown time zone 'Europe/Pariss'"}
        ]
        assert await _version(client) == v1

        # a valid new version: swapped, reported, used by the next decision
        _write(path, kit.policy_data(lambda d: d.update(version="second")))
        resp = await client.post("/v1/admin/policy/reload")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        v2 = body["version"]
        assert body["previous_version"] == v1 and v2 != v1 and body["label"] == "second"
        assert await _version(client) == v2

        second = kit.lead()
        await _send(kafka_settings, second)
        got2 = await reader.wait_for(lambda e: e.subject == second.lead_id, timeout=30)

    assert (got1.type, got1.data["policy_version"]) == ("lead.assigned", v1)
    assert (got2.type, got2.data["policy_version"]) == ("lead.assigned", v2)
    for lead, version in ((first, v1), (second, v2)):
        resp = await client.get(f"/v1/leads/{lead.lead_id}/decisions")
        assert resp.status_code == 200, resp.text
        trail = resp.json()
        assert trail["status"] == "assigned"
        assert [(d["kind"], d["policy_version"]) for d in trail["decisions"]] == [
            ("assigned", version)
        ]
        [row] = await kit.assignments(lead.lead_id)
        assert row["policy_version"] == version

    metrics = (await client.get("/metrics")).text
    assert 'baton_policy_reloads_total{result="invalid"} 1.0' in metrics
    assert 'baton_policy_reloads_total{result="ok"} 1.0' in metrics
    assert 'baton_team_eligible_reps{team="direct"} 3.0' in metrics
    assert 'baton_team_eligible_reps{team="closed"} 0.0' in metrics
    # one policy-version series, the live one; the build names its service itself
    assert [ln for ln in metrics.splitlines() if ln.startswith("baton_policy_info{")] == [
        f'baton_policy_info{{version="{v2}"}} 1.0'
    ]
    assert re.search(r'^baton_build_info\{service="router",version="[^"]+"\} 1\.0$', metrics, re.M)

    unauthenticated = await client.post("/v1/admin/policy/reload", headers={"Authorization": ""})
    assert unauthenticated.status_code == 401


async def test_sighup_reloads_and_an_invalid_file_keeps_the_old_policy(
    app_client: tuple[FastAPI, httpx.AsyncClient, Path], kit: RouterKit
) -> None:
    _, client, path = app_client
    # if the handler were missing, SIGHUP's default action would end the test run
    assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    v1 = await _version(client)

    bad = kit.policy_data()
    bad["rules"][0]["team"] = "nobody"
    _write(path, bad)
    os.kill(os.getpid(), signal.SIGHUP)
    await asyncio.sleep(0.3)  # nothing observable changes; give the handler its turn
    assert await _version(client) == v1

    _write(path, kit.policy_data(lambda d: d.update(version="hup")))
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(100):
        if await _version(client) != v1:
            break
        await asyncio.sleep(0.05)
    resp = await client.get("/v1/admin/policy")
    assert resp.json()["label"] == "hup"
    assert resp.json()["version"] != v1


def test_invalid_policy_at_start_up_stops_the_service_naming_the_field(
    tmp_path: Path, kit: RouterKit
) -> None:
    bad = kit.policy_data()
    bad["teams"][0]["reps"][1]["timezone"] = "Europe/Pariss"
    path = tmp_path / "policy.yaml"
    _write(path, bad)
    env = {**os.environ, "POLICY_PATH": str(path), "ROUTER_PORT": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "ops.cli", "serve", "router"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "teams[0].reps[1].timezone: unknown time zone 'Europe/Pariss'" in err


async def test_simulate_endpoint_replays_history_through_a_proposed_policy(
    app_client: tuple[FastAPI, httpx.AsyncClient, Path], kit: RouterKit
) -> None:
    _, client, _ = app_client
    lead = kit.lead()
    assert await kit.receive(kit.service(), lead) == "assigned"
    before = await kit.rows("SELECT count(*) AS n FROM router.assignments")

    proposed = yaml.safe_dump(kit.policy_data(lambda d: d.update(version="proposed")))
    resp = await client.post(
        "/v1/admin/simulate?since=1h",
        content=proposed,
        headers={"Content-Type": "application/yaml"},
    )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["policy"]["label"] == "proposed"
    assert report["leads"] >= 1
    assert sum(t["simulated"] for t in report["teams"].values()) >= 1
    after = await kit.rows("SELECT count(*) AS n FROM router.assignments")
    assert after == before, "a simulation must write nothing"

    bad = kit.policy_data()
    bad["rules"][0]["team"] = "nowhere"
    resp = await client.post("/v1/admin/simulate", content=yaml.safe_dump(bad))
    assert resp.status_code == 422
    assert "rules[0].team" in resp.json()["detail"]
    resp = await client.post("/v1/admin/simulate", content=proposed, headers={"Authorization": ""})
    assert resp.status_code == 401


async def test_admin_reps_lead_history_and_route_preview(
    app_client: tuple[FastAPI, httpx.AsyncClient, Path], kit: RouterKit
) -> None:
    _, client, _ = app_client
    reps = (await client.get("/v1/admin/reps")).json()["reps"]
    by_id = {r["id"]: r for r in reps}
    assert by_id[kit.rep("a")]["eligible"] is True
    assert by_id[kit.rep("z")]["eligible"] is False and by_id[kit.rep("z")]["reason"] == "inactive"
    assert {"capacity", "open_leads", "on_duty", "out_of_office"} <= set(by_id[kit.rep("a")])

    before = await kit.rows("SELECT count(*) AS n FROM router.leads")
    lead = kit.lead(company_size=800)
    body = {
        "contact": lead.contact.model_dump(mode="json"),
        "company_size": 800,
        "engagement": {"demo_request": True},
    }
    resp = await client.post("/v1/route/preview", json=body)
    assert resp.status_code == 200, resp.text
    preview = resp.json()
    assert preview["outcome"] == "assigned" and preview["owner_id"]
    assert any(r["rule_id"] == "demo" and r["matched"] for r in preview["breakdown"])
    assert preview["sla"]["window_seconds"] > 0 and preview["explanation"]
    assert await kit.rows("SELECT count(*) AS n FROM router.leads") == before, "preview wrote"
    bad = await client.post("/v1/route/preview", json={"contact": {}, "bogus": 1})
    assert bad.status_code == 422 and "bogus" in bad.json()["detail"]

    assert await kit.receive(kit.service(), lead) == "assigned"
    resp = await client.get(f"/v1/leads/{lead.lead_id}")
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert got["status"] == "assigned" and [a["seq"] for a in got["assignments"]] == [1]
    assert [d["kind"] for d in got["decisions"]] == ["assigned"]
    missing = await client.get("/v1/leads/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert (await client.get("/v1/admin/reps", headers={"Authorization": ""})).status_code == 401


async def test_the_routers_connections_plan_each_statement_afresh(
    app_client: tuple[FastAPI, httpx.AsyncClient, Path],
) -> None:
    """The decision read must not stay on a generic plan costed on a nearly empty table
    (`shared.db.CUSTOM_PLANS`); JIT stays off as for every service."""
    app, _, _ = app_client
    async with app.state.runtime.sessions() as session:
        mode = await session.scalar(text("SHOW plan_cache_mode"))
        jit = await session.scalar(text("SHOW jit"))
    assert (mode, jit) == ("force_custom_plan", "off")


@pytest.mark.parametrize(
    ("contact", "field"),
    [
        ({"email": "a\u0000b@example.com"}, "contact.email"),
        ({"email": "a@example.com", "phone": "+49\ud800"}, "contact.phone"),
    ],
    ids=["nul", "lone-surrogate"],
)
async def test_preview_refuses_text_postgresql_cannot_store(
    app_client: tuple[FastAPI, httpx.AsyncClient, Path], contact: dict[str, str], field: str
) -> None:
    """JSON carries NUL and lone surrogates; PostgreSQL cannot store either. A 422 naming the
    field, not a 500 from the query (found by schemathesis on the running router)."""
    _, client, _ = app_client
    body = json.dumps({"contact": contact})  # ASCII, with the escapes a sender would send
    headers = {"Content-Type": "application/json"}
    resp = await client.post("/v1/route/preview", content=body, headers=headers)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert [e["name"] for e in resp.json()["errors"]] == [field]
