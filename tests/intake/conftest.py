"""Intake running in-process against the real PostgreSQL and Kafka, plus vendor-style signing.

Requests are signed the way each vendor documents it, independently of intake's own code:
Standard Webhooks with the spec's reference library (`standardwebhooks`), Typeform and
HubSpot v3 with plain `hmac` following their documentation. Payloads are the realistic samples
in deploy/examples/, with a unique e-mail per test (the database is shared by the session).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
import yaml
from fastapi import FastAPI
from sqlalchemy import text
from standardwebhooks import Webhook

from services.intake.app import create_app
from shared.events import CloudEvent, parse_event
from shared.settings import Settings
from tests.conftest import ROOT, EventReader

EXAMPLES = ROOT / "deploy" / "examples"
BASE_URL = "http://test"
ORIGIN = "https://www.example.com"  # allowed for website-demo in the example policy
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


# --- vendor-style signing ---------------------------------------------------------------------


def standard_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """Headers as a Standard Webhooks sender makes them, signed by the reference library."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }


def typeform_headers(secret: str, body: bytes) -> dict[str, str]:
    """Typeform: `Typeform-Signature: sha256=` + base64(HMAC-SHA256(secret, raw body))."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"Typeform-Signature": "sha256=" + base64.b64encode(digest).decode()}


def hubspot_headers(
    secret: str, body: bytes, *, uri: str, method: str = "POST", at_ms: int | None = None
) -> dict[str, str]:
    """HubSpot v3: base64(HMAC-SHA256(secret, method + uri + body + timestamp-in-ms))."""
    ts = str(at_ms if at_ms is not None else int(time.time() * 1000))
    source = method.encode() + uri.encode() + body + ts.encode()
    digest = hmac.new(secret.encode(), source, hashlib.sha256).digest()
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
        "X-HubSpot-Request-Timestamp": ts,
    }


# --- sample payloads with a unique contact --------------------------------------------------


def unique_email(domain: str = "northwind-logistics.de") -> str:
    return f"lead-{uuid.uuid4().hex[:12]}@{domain}"


def website_form(email: str, **overrides: str) -> dict[str, str]:
    fields = dict(parse_qsl((EXAMPLES / "website-demo.urlencoded").read_text(), True))
    fields.update(email=email, **overrides)
    return fields


def chat_payload(email: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EXAMPLES / "chat-widget.json").read_text())
    payload["visitor"]["email"] = email
    return payload


def typeform_payload(email: str, *, token: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EXAMPLES / "typeform-contact.json").read_text())
    response = payload["form_response"]
    response["token"] = token or uuid.uuid4().hex
    payload["event_id"] = f"evt_{uuid.uuid4().hex}"
    for answer in response["answers"]:
        if answer["field"]["ref"] == "email":
            answer["email"] = email
    return payload


def hubspot_payload(email: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EXAMPLES / "hubspot-forms.json").read_text())
    for item in payload["fields"]:
        if item["name"] == "email":
            item["value"] = email
    return payload


def urlencoded(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    """A browser-style multipart/form-data body (plus one file part, which intake skips)."""
    boundary = f"----BatonBoundary{uuid.uuid4().hex[:16]}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachment"; '
        f'filename="brief.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7 ...\r\n'.encode()
    )
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def write_policy(tmp: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """The example policy with `change` applied to its parsed YAML."""
    policy: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "policy.example.yaml").read_text())
    change(policy)
    path = tmp / f"policy-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def source_of(policy: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in policy["sources"] if s["name"] == name)
    return found


# --- reading leads.received ----------------------------------------------------------------


async def read_until(
    reader: EventReader, predicate: Callable[[list[CloudEvent]], bool], *, timeout: float = 30
) -> list[CloudEvent]:
    """Read whole batches into `reader.seen` until predicate(all events so far) holds.

    Unlike EventReader.wait_for, never returns in the middle of a fetched batch (the rest of
    which the consumer has already moved past), so counting events afterwards is exact.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        events = [e for _, e, _ in reader.seen]
        if predicate(events):
            return events
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; saw {len(events)}")
        batch = await reader.consumer.getmany(timeout_ms=200)
        for msgs in batch.values():
            for msg in msgs:
                reader.seen.append((msg.topic, parse_event(msg.value), msg))


async def wait_for_leads(reader: EventReader, *lead_ids: str) -> list[CloudEvent]:
    wanted = set(lead_ids)
    return await read_until(reader, lambda events: wanted <= {e.subject for e in events})


# --- the running app ----------------------------------------------------------------------


@dataclass
class Intake:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    secrets: dict[str, str]

    async def post(
        self,
        source: str,
        body: bytes,
        content_type: str | None = JSON,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if content_type is not None:
            all_headers["content-type"] = content_type
        return await self.client.post(f"/v1/webhooks/{source}", content=body, headers=all_headers)

    async def website(self, fields: dict[str, str], **headers: str) -> httpx.Response:
        return await self.post(
            "website-demo", urlencoded(fields), FORM, {"origin": ORIGIN, **headers}
        )

    async def chat(self, payload: dict[str, Any], **kw: Any) -> httpx.Response:
        body = json.dumps(payload).encode()
        secret = self.secrets["BATON_SECRET_CHAT_WIDGET"].split()[0]
        return await self.post("chat-widget", body, JSON, standard_headers(secret, body, **kw))

    async def typeform(self, payload: dict[str, Any]) -> httpx.Response:
        body = json.dumps(payload).encode()
        secret = self.secrets["BATON_SECRET_TYPEFORM"].split()[0]
        return await self.post("typeform-contact", body, JSON, typeform_headers(secret, body))

    async def hubspot(self, payload: dict[str, Any]) -> httpx.Response:
        body = json.dumps(payload).encode()
        secret = self.secrets["BATON_SECRET_HUBSPOT"].split()[0]
        uri = f"{BASE_URL}/v1/webhooks/hubspot-forms"
        return await self.post("hubspot-forms", body, JSON, hubspot_headers(secret, body, uri=uri))

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.app.state.runtime.sessions() as session:
            result = await session.execute(text(sql), params)
            return [dict(row._mapping) for row in result]

    async def lead_row(self, lead_id: str) -> dict[str, Any] | None:
        rows = await self.rows(
            "SELECT lead_id::text AS lead_id, source, channel, lead FROM intake.leads "
            "WHERE lead_id = CAST(:id AS uuid)",
            id=lead_id,
        )
        return rows[0] if rows else None

    async def leads_with_email(self, email: str) -> int:
        rows = await self.rows(
            "SELECT count(*) AS n FROM intake.leads WHERE lead->'contact'->>'email' = :e", e=email
        )
        return int(rows[0]["n"])


@asynccontextmanager
async def running_intake(settings: Settings, secrets: dict[str, str]) -> AsyncIterator[Intake]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=30
        ) as client,
    ):
        yield Intake(app=app, client=client, settings=settings, secrets=secrets)


@pytest.fixture
def intake_env(env_secrets: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The example policy's secrets in the environment, where create_app reads them."""
    for name, value in env_secrets.items():
        monkeypatch.setenv(name, value)
    return env_secrets


@pytest.fixture
async def intake(kafka_settings: Settings, intake_env: dict[str, str]) -> AsyncIterator[Intake]:
    async with running_intake(kafka_settings, intake_env) as running:
        yield running


def new_whsec() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()
