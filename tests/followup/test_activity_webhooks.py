"""Activity webhooks from sales tools, on the real followup app, PostgreSQL and Kafka.

Requests are signed the way the tools sign them: Standard Webhooks with the `standardwebhooks`
reference library, HubSpot v3 computed as HubSpot documents it (base64 HMAC-SHA256 of
method + full URI + body + millisecond timestamp, with the app's client secret). The sources
are the example policy's `activity_sources`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from services.followup.app import create_app
from shared.auth import hash_token
from shared.events import utcnow
from shared.policy import PolicyError
from shared.settings import Settings
from tests.conftest import EventReader
from tests.followup.conftest import assigned, new_lead

pytestmark = pytest.mark.integration

BASE = "http://test"
CRM = "/v1/activity-webhooks/crm-activities"
HUBSPOT = "/v1/activity-webhooks/hubspot-activities"


class App:
    def __init__(self, client: httpx.AsyncClient, app: Any, token: str, env: dict[str, str]):
        self.client, self.app, self.env = client, app, env
        self.auth = {"Authorization": f"Bearer {token}"}

    async def assign(self, lead: str, *, owner: str = "rep-a", at: datetime | None = None) -> None:
        async with self.app.state.runtime.sessions() as s, s.begin():
            await self.app.state.followup.on_assigned(
                s, event=assigned(lead, owner=owner, at=at or utcnow())
            )

    async def sla(self, lead: str) -> dict[str, Any]:
        resp = await self.client.get(f"/v1/leads/{lead}/sla", headers=self.auth)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def activity_rows(self, lead: str) -> list[tuple[str, str, str]]:
        async with self.app.state.runtime.sessions() as s:
            rows = await s.execute(
                text(
                    "SELECT activity_id, type, state FROM followup.activities "
                    "WHERE lead_id = :l ORDER BY at"
                ),
                {"l": lead},
            )
            return [(r[0], r[1], r[2]) for r in rows]

    def metric(self, **labels: str) -> float:
        registry = self.app.state.runtime.metrics.registry
        return float(registry.get_sample_value("baton_activity_webhooks_total", labels) or 0.0)

    async def crm(
        self,
        payload: dict[str, Any] | bytes,
        *,
        msg_id: str | None = None,
        secret: str | None = None,
        at: datetime | None = None,
        content_type: str = "application/json",
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        at = at or datetime.now(tz=UTC)
        headers = {
            "content-type": content_type,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret or self.env["BATON_SECRET_CRM_ACTIVITIES"]).sign(
                msg_id, at, body.decode()
            ),
        }
        return await self.client.post(CRM, content=body, headers=headers)

    async def hubspot(
        self, payload: dict[str, Any], *, secret: str | None = None, ts_ms: int | None = None
    ) -> httpx.Response:
        body = orjson.dumps(payload)
        ts = str(ts_ms if ts_ms is not None else int(time.time() * 1000))
        signed = b"POST" + f"{BASE}{HUBSPOT}".encode() + body + ts.encode()
        key = (secret or self.env["BATON_SECRET_HUBSPOT"]).encode()
        signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        headers = {
            "content-type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": ts,
        }
        return await self.client.post(HUBSPOT, content=body, headers=headers)


@pytest.fixture
async def app(
    kafka_settings: Settings, env_secrets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[App]:
    for name, value in env_secrets.items():
        monkeypatch.setenv(name, value)
    token = secrets.token_urlsafe(16)
    settings = kafka_settings.model_copy(update={"api_tokens": f"t:read:{hash_token(token)}"})
    fastapi_app = create_app(settings)
    async with fastapi_app.router.lifespan_context(fastapi_app):
        transport = httpx.ASGITransport(app=fastapi_app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield App(client, fastapi_app, token, env_secrets)


def crm_payload(lead: str, kind: str = "call_logged", **extra: Any) -> dict[str, Any]:
    data = {
        "id": f"evt_{uuid.uuid4().hex[:12]}",
        "external_ref": lead,
        "kind": kind,
        "occurred_at": (utcnow() + timedelta(seconds=30)).isoformat(),
        "user": "rep-a",
        "summary": "Spoke to the lead, demo next week",
    }
    return {"type": "activity.logged", "data": {**data, **extra}}


def problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


async def test_a_signed_crm_call_stops_the_clock_once_however_often_it_is_delivered(
    app: App, kafka_settings: Settings
) -> None:
    lead = new_lead()
    await app.assign(lead)
    payload = crm_payload(lead)
    async with EventReader(kafka_settings, kafka_settings.topics.leads_activity) as reader:
        first = await app.crm(payload, msg_id="msg_call_1")
        assert first.status_code == 202, first.text
        activity_id = f"crm-activities:{payload['data']['id']}"
        assert first.json() == {"activity_id": activity_id, "status": "recorded"}
        published = await reader.wait_for(lambda e: e.subject == lead, timeout=30)
        assert published.id == activity_id and published.data["type"] == "contacted"

        # redelivered (a new attempt: new timestamp and signature, same ids)
        again = await app.crm(payload, msg_id="msg_call_1")
        assert again.status_code == 202 and again.json()["activity_id"] == activity_id
        later = await reader.drain(1.0)
    assert sum(1 for e in later if e.subject == lead) == 1

    sla = await app.sla(lead)
    assert sla["status"] == "met" and sla["escalations"] == []
    assert [(a["activity_id"], a["type"], a["actor"]) for a in sla["activities"]] == [
        (activity_id, "contacted", "rep-a")
    ]
    assert sla["activities"][0]["note"] == "Spoke to the lead, demo next week"
    assert app.metric(source="crm-activities", outcome="accepted", status="202") == 2


async def test_a_hubspot_v3_workflow_webhook_stops_the_clock_with_the_owner_mapped(
    app: App,
) -> None:
    lead = new_lead()
    await app.assign(lead, owner="rep-anna")
    contacted_ms = int((utcnow() + timedelta(seconds=20)).timestamp() * 1000)
    payload = {
        "baton_lead_id": lead,
        "notes_last_contacted": str(contacted_ms),
        "hubspot_owner_id": "61234567",
        "email": "someone@example.org",  # a property the mapping does not read
    }
    resp = await app.hubspot(payload)
    assert resp.status_code == 202, resp.text
    again = await app.hubspot(payload)  # HubSpot retrying the same request: the same activity
    assert again.status_code == 202 and again.json() == resp.json()

    sla = await app.sla(lead)
    assert sla["status"] == "met"
    (act,) = sla["activities"]
    assert act["type"] == "contacted" and act["actor"] == "rep-anna"
    assert act["other_owner"] is False
    assert datetime.fromisoformat(act["at"]) == datetime.fromtimestamp(contacted_ms / 1000, UTC)
    assert act["activity_id"].startswith("hubspot-activities:")


async def test_the_tools_types_map_to_activity_types(app: App) -> None:
    lead = new_lead()
    await app.assign(lead)
    follow_up = (utcnow() + timedelta(days=90)).replace(microsecond=0)
    resp = await app.crm(crm_payload(lead, "not_now", follow_up_on=follow_up.isoformat()))
    assert resp.status_code == 202, resp.text
    sla = await app.sla(lead)
    assert sla["status"] == "nurture"
    assert [a["type"] for a in sla["activities"]] == ["not_ready"]


async def test_bad_or_stale_signatures_are_401_and_record_nothing(app: App) -> None:
    lead = new_lead()
    await app.assign(lead)
    wrong = "whsec_" + base64.b64encode(b"not-the-configured-secret-123456").decode()
    bad = problem(await app.crm(crm_payload(lead), secret=wrong), 401)
    assert bad["type"].endswith("/invalid-signature")
    assert [e["name"] for e in bad["errors"]] == ["webhook-signature"]

    stale_at = datetime.now(tz=UTC) - timedelta(minutes=6)
    stale = problem(await app.crm(crm_payload(lead), at=stale_at), 401)
    assert [e["name"] for e in stale["errors"]] == ["webhook-timestamp"]

    payload = {"baton_lead_id": lead, "hubspot_owner_id": "61234567"}
    hs_bad = problem(await app.hubspot(payload, secret="wrong-client-secret"), 401)
    assert [e["name"] for e in hs_bad["errors"]] == ["X-HubSpot-Signature-v3"]
    six_minutes_ago = int((time.time() - 360) * 1000)
    hs_stale = problem(await app.hubspot(payload, ts_ms=six_minutes_ago), 401)
    assert [e["name"] for e in hs_stale["errors"]] == ["X-HubSpot-Request-Timestamp"]

    unsigned = await app.client.post(CRM, json=crm_payload(lead))
    assert problem(unsigned, 401)["errors"]

    assert await app.activity_rows(lead) == []
    assert (await app.sla(lead))["status"] == "open"
    assert app.metric(source="crm-activities", outcome="rejected", status="401") == 3
    assert app.metric(source="hubspot-activities", outcome="rejected", status="401") == 2


async def test_an_unknown_source_is_404_and_counted_under_one_label(app: App) -> None:
    resp = await app.client.post(
        "/v1/activity-webhooks/no-such-tool", json={"a": 1}, headers={"webhook-id": "x"}
    )
    assert problem(resp, 404)["type"].endswith("/unknown-source")
    assert app.metric(source="unknown", outcome="rejected", status="404") == 1
    assert app.metric(source="no-such-tool", outcome="rejected", status="404") == 0


async def test_a_payload_the_mapping_cannot_read_is_422_naming_the_payload_location(
    app: App,
) -> None:
    lead = new_lead()
    await app.assign(lead)
    cases = [
        (crm_payload(lead, "voicemail_left"), "data.kind"),  # not in the source's types
        (crm_payload(lead, external_ref=None), "data.external_ref"),  # no lead id
        (crm_payload(lead, external_ref="HS-1234"), "data.external_ref"),  # not a lead id
        (crm_payload(lead, "not_now"), "data.follow_up_on"),  # not_ready without a date
        (crm_payload(lead, occurred_at="yesterday"), "data.occurred_at"),
        (crm_payload(lead, user=None), "data.user"),
    ]
    for payload, location in cases:
        body = problem(await app.crm(payload), 422)
        assert body["type"].endswith("/unmapped-activity")
        assert [e["name"] for e in body["errors"]] == [location], body
    assert await app.activity_rows(lead) == []
    assert app.metric(source="crm-activities", outcome="rejected", status="422") == len(cases)

    form = await app.crm(b"kind=call", content_type="application/x-www-form-urlencoded")
    assert problem(form, 415)["errors"][0]["name"] == "content-type"
    assert problem(await app.crm(b"{not json"), 400)["errors"][0]["name"] == "body"
    assert problem(await app.crm(b"[1, 2]"), 400)["errors"][0]["name"] == "body"


async def test_an_activity_before_its_assignment_is_kept_and_applied_when_it_arrives(
    app: App,
) -> None:
    """Unknown lead: not 404 (the tool cannot act on it, the assignment may be on its way):
    kept pending, as on Kafka, applied when lead.assigned arrives (dead-lettered otherwise)."""
    lead = new_lead()
    assigned_at = utcnow()
    payload = crm_payload(lead, occurred_at=(assigned_at + timedelta(seconds=5)).isoformat())
    resp = await app.crm(payload)
    assert resp.status_code == 202, resp.text
    activity_id = resp.json()["activity_id"]
    assert await app.activity_rows(lead) == [(activity_id, "contacted", "pending")]

    await app.assign(lead, at=assigned_at)
    assert await app.activity_rows(lead) == [(activity_id, "contacted", "applied")]
    assert (await app.sla(lead))["status"] == "met"


async def test_followup_refuses_to_start_without_an_activity_sources_secret(
    kafka_settings: Settings, env_secrets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env_secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BATON_SECRET_CRM_ACTIVITIES")
    with pytest.raises(PolicyError) as info:
        create_app(kafka_settings)
    assert str(info.value).startswith(
        "activity_sources[1].auth.secret_env (BATON_SECRET_CRM_ACTIVITIES): no secret"
    )
    monkeypatch.setenv("BATON_SECRET_CRM_ACTIVITIES", "not-a-whsec-secret!")
    with pytest.raises(PolicyError, match=r"activity_sources\[1\].*whsec_"):
        create_app(kafka_settings)
