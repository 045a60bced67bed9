"""The notify app in-process on the real Kafka and PostgreSQL: a lead.assigned on the topic
reaches a real loopback receiver signed (verified with standardwebhooks), once however often
Kafka delivers it; the admin API shows and replays it; a bad config refuses `baton serve`."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops.cli import main
from services.notify import store
from services.notify.app import create_app
from shared.auth import hash_token
from shared.kafka import make_producer
from shared.settings import Settings
from tests.notify.conftest import contact_erased, endpoint_yaml, lead_assigned, name, new_secret
from tests.notify.receivers import Receiver, Reply, always

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(
    kafka_settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, str, Receiver, str, Any]]:
    token = secrets.token_urlsafe(16)
    key = new_secret()
    ep = name()
    async with Receiver(always(Reply()), secret=key) as rx:
        path = tmp_path / "notify.yaml"
        path.write_text("endpoints:\n" + endpoint_yaml(ep, rx.url()))
        settings = kafka_settings.model_copy(
            update={
                "api_tokens": f"ops:admin:{hash_token(token)},tool:read:{hash_token('r' * 20)}",
                "notify_config_path": path,
            }
        )
        app = create_app(settings, env={"S": key})
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield client, token, rx, ep, settings


async def _produce(settings: Settings, topic: str, *events: Any) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic, event.to_bytes(), key=event.subject.encode())
    finally:
        await producer.stop()


async def _health_when(
    client: httpx.AsyncClient, auth: dict[str, str], ep: str, ok: Any
) -> dict[str, Any]:
    """The endpoint's health once `ok(health)` holds (the attempt is recorded just after the
    receiver answered); fails after a generous bound."""
    for _ in range(200):
        resp = await client.get("/v1/admin/endpoints", headers=auth)
        assert resp.status_code == 200
        [health] = [e for e in resp.json()["endpoints"] if e["name"] == ep]
        if ok(health):
            return dict(health)
        await asyncio.sleep(0.05)
    raise AssertionError(f"endpoint health never matched: {health}")


async def test_a_lead_assigned_on_kafka_is_delivered_once_signed_and_replayable(
    running: tuple[httpx.AsyncClient, str, Receiver, str, Settings],
) -> None:
    client, token, rx, ep, settings = running
    auth = {"Authorization": f"Bearer {token}"}
    event = lead_assigned()
    # delivered twice by Kafka (a producer retry, a rebalance): one message, one delivery
    await _produce(settings, settings.topics.leads_assigned, event, event)
    [req] = await rx.wait_for(1)
    assert req.verified and req.headers["webhook-id"] == event.id
    assert req.event() == {**event.model_dump(mode="json")}
    health = await _health_when(client, auth, ep, lambda h: h["last_success_at"] is not None)
    assert health["failing_since"] is None and health["dead"] == 0
    # the second copy went through the consumer too: still one row, one request
    await _produce(settings, settings.topics.leads_assigned, event)
    await asyncio.sleep(1.0)
    assert len(rx.requests) == 1
    resp = await client.get("/v1/admin/endpoints", headers=auth)
    [health] = [e for e in resp.json()["endpoints"] if e["name"] == ep]
    assert health["backlog"] == 0

    service = client._transport.app.state.notify  # type: ignore[attr-defined]
    [planned] = [p for p in service.plan(event) if p.channel == "webhook"]
    message_id = planned.message_id(event.id)
    resp = await client.get(f"/v1/admin/messages/{message_id}", headers=auth)
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "delivered"
    assert [a["outcome"] for a in body["attempt_log"]] == ["delivered"]
    assert body["body"]["event"]["id"] == event.id

    resp = await client.post(f"/v1/admin/messages/{message_id}/replay", headers=auth)
    assert resp.status_code == 200 and resp.json()["previous_status"] == "delivered"
    await rx.wait_for(2)
    assert rx.verified_ids() == [event.id, event.id]  # same webhook-id: the receiver dedupes


async def test_erasure_from_kafka_cancels_and_replay_refuses(
    running: tuple[httpx.AsyncClient, str, Receiver, str, Settings],
) -> None:
    client, token, rx, ep, settings = running
    auth = {"Authorization": f"Bearer {token}"}
    service = client._transport.app.state.notify  # type: ignore[attr-defined]
    erasure = contact_erased("00000000-0000-0000-0000-000000000001")
    await _produce(settings, settings.topics.contacts_erased, erasure)
    [req] = await rx.wait_for(1)
    assert req.event()["type"] == "contact.erased"
    await _health_when(client, auth, ep, lambda h: h["last_success_at"] is not None)
    resp = await client.post(
        f"/v1/admin/endpoints/{ep}/replay", params={"since": "2000-01-01T00:00:00Z"}, headers=auth
    )
    assert resp.status_code == 200 and resp.json()["replayed"] == 1
    await rx.wait_for(2)
    assert [p.target for p in service.plan(erasure)] == [ep]  # no people message for it

    # a message not yet due (a delayed one) for a lead whose contact is then erased
    lead = str(uuid.uuid4())
    waiting = store.NewMessage(
        id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), event_type="lead.assigned",
        lead_id=lead, channel="webhook", target=ep, kind="event",
        body={"event": {"data": {"contact": {"email": "ada@example.org"}}}},
        delay_seconds=3600,
    )  # fmt: skip
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessions() as session, session.begin():
        await store.insert_messages(session, [waiting])
    await _produce(settings, settings.topics.contacts_erased, contact_erased(lead))
    for _ in range(200):
        resp = await client.get(f"/v1/admin/messages/{waiting.id}", headers=auth)
        if resp.json()["status"] == "cancelled":
            break
        await asyncio.sleep(0.05)
    assert resp.json()["status"] == "cancelled" and resp.json()["body"] == {"erased": True}
    resp = await client.post(f"/v1/admin/messages/{waiting.id}/replay", headers=auth)
    assert resp.status_code == 409 and resp.json()["type"].endswith("message-erased")


async def test_admin_api_needs_the_admin_scope_and_names_fields(
    running: tuple[httpx.AsyncClient, str, Receiver, str, Settings],
) -> None:
    client, token, _rx, ep, _settings = running
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/v1/admin/endpoints")).status_code == 401
    read = {"Authorization": "Bearer " + "r" * 20}
    resp = await client.get("/v1/admin/endpoints", headers=read)
    assert resp.status_code == 403 and resp.headers["content-type"] == "application/problem+json"
    resp = await client.post(f"/v1/admin/endpoints/{ep}/replay", headers=auth)
    assert resp.status_code == 422 and resp.json()["errors"][0]["name"] == "query.since"
    resp = await client.post("/v1/admin/endpoints/nope/enable", headers=auth)
    assert resp.status_code == 404 and resp.json()["type"].endswith("endpoint-not-found")
    resp = await client.get("/v1/admin/messages/00000000-0000-0000-0000-000000000000", headers=auth)
    assert resp.status_code == 404
    resp = await client.post(f"/v1/admin/endpoints/{ep}/enable", headers=auth)
    assert resp.json() == {"name": ep, "was_disabled": False}
    assert (await client.get("/metrics")).text.count("baton_notify_deliveries_total") >= 1


def test_baton_serve_refuses_a_bad_config_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(
        "endpoints:\n"
        "  - {name: a, url: 'https://a.example.com/', events: [lead.assigned],"
        " secrets: [{env: A}]}\n"
        "  - {name: b, url: 'http://b.example.com/', events: [lead.assigned],"
        " secrets: [{env: B}]}\n"
    )
    monkeypatch.setenv("NOTIFY_CONFIG_PATH", str(path))
    assert main(["serve", "notify"]) == 2
    err = capsys.readouterr().err
    assert "baton notify: invalid notify config: endpoints[1].url: https required" in err
