"""Hostile requests against intake: the in-process app on the real PostgreSQL and Kafka for
bodies and fields, and a real uvicorn process for what only the HTTP server sees (huge
headers, CR/LF in the request line and headers, slow senders)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import Settings
from tests.conftest import ROOT, EventReader, topic_env
from tests.e2e.conftest import free_port, wait_ready
from tests.intake.conftest import FORM, JSON, ORIGIN, Intake, unique_email, urlencoded, website_form

pytestmark = pytest.mark.integration

HOSTILE = (
    "Robert'); DROP TABLE intake.leads;-- <script>alert(document.cookie)</script> "
    '" OR 1=1 -- {{7*7}} ${jndi:ldap://x} \\x00 %0d%0aSet-Cookie: pwn=1'
)
TEXT_FIELDS = (
    "first_name", "last_name", "job_title", "company", "industry", "message", "budget",
    "timeline", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
)  # fmt: skip


async def count_leads(intake: Intake) -> int:
    rows = await intake.rows("SELECT count(*) AS n FROM intake.leads")
    return int(rows[0]["n"])


def assert_problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.headers["x-content-type-options"] == "nosniff"
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    return body


# --- bodies ----------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413_declared_or_streamed(intake: Intake) -> None:
    before = await count_leads(intake)
    limit = intake.settings.max_body_bytes
    big = urlencoded(website_form(unique_email(), message="x" * (limit + 10)))
    assert_problem(await intake.post("website-demo", big, FORM, {"origin": ORIGIN}), 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(limit // 4096 + 2):
            yield b"a" * 4096

    resp = await intake.client.post(
        "/v1/webhooks/website-demo",
        content=chunks(),
        headers={"content-type": FORM, "origin": ORIGIN},
    )
    assert_problem(resp, 413)
    lying = await intake.client.post(  # a declared size smaller than what is sent
        "/v1/webhooks/website-demo",
        content=chunks(),
        headers={"content-type": FORM, "origin": ORIGIN, "content-length": "10"},
    )
    assert lying.status_code in (400, 413)
    assert await count_leads(intake) == before


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 30000 + b"]" * 30000,  # deeper than any parser stack
        ('{"email": "a@b.co", "x": ' + '{"a": ' * 25 + "1" + "}" * 25 + "}").encode(),
        ('{"email": "a@b.co", "x": ' + "[" * 5000 + "]" * 5000 + "}").encode(),
    ],
    ids=["array-30000", "object-25", "array-5000-inside"],
)
async def test_deeply_nested_json_is_400(intake: Intake, body: bytes) -> None:
    resp = await intake.post("website-demo", body, JSON, {"origin": ORIGIN})
    detail = assert_problem(resp, 400)["detail"]
    assert "JSON" in detail


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (JSON, b'{"email": "caf\xe9@example.com"}'),
        (JSON, b'{"email": "\xed\xa0\x80@example.com"}'),  # an encoded lone surrogate
        (FORM, b"email=caf%C3%A9%40example.com&first_name=\xff\xfe"),
        (FORM, b"email=x%FF%FEy%40example.com"),
    ],
    ids=["json-latin1", "json-surrogate", "form-raw-bytes", "form-percent-encoded"],
)
async def test_invalid_utf8_is_400(intake: Intake, content_type: str, body: bytes) -> None:
    before = await count_leads(intake)
    assert_problem(await intake.post("website-demo", body, content_type, {"origin": ORIGIN}), 400)
    assert await count_leads(intake) == before


async def test_sql_and_script_text_in_every_field_is_stored_as_text(intake: Intake) -> None:
    """Stored verbatim (parameterised SQL, never executed), never reflected in the answer."""
    email = f"o'brien-{uuid.uuid4().hex[:8]}@bobby-tables.com"
    tables_before = await intake.rows(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'intake'"
    )
    fields = {**{f: HOSTILE for f in TEXT_FIELDS}, "email": email, "consent": "yes"}
    key = "key'; DELETE FROM intake.idempotency;--" + uuid.uuid4().hex
    async with EventReader(intake.settings, intake.settings.topics.leads_received) as reader:
        resp = await intake.website(fields, **{"Idempotency-Key": key})
        assert resp.status_code == 202, resp.text
        assert set(resp.json()) == {"lead_id", "status"}
        assert "<script>" not in resp.text and "DROP" not in resp.text
        lead_id = resp.json()["lead_id"]
        event = await reader.wait_for(lambda e: e.subject == lead_id)

    row = await intake.lead_row(lead_id)
    assert row is not None
    lead = row["lead"]
    assert lead["message"] == HOSTILE  # free text is kept exactly as sent
    assert lead["utm"]["utm_campaign"] == HOSTILE and lead["answers"]["budget"] == HOSTILE
    assert lead["contact"]["email"] == email
    assert event.data["message"] == HOSTILE
    assert (
        await intake.rows(
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'intake'"
        )
        == tables_before
    )
    stored_key = await intake.rows(
        "SELECT lead_id::text AS id FROM intake.idempotency WHERE key = :k", k=key
    )
    assert stored_key == [{"id": lead_id}]

    # The same text as JSON, on the JSON path of the same source.
    body = json.dumps({**fields, "email": unique_email()}).encode()
    resp = await intake.post("website-demo", body, JSON, {"origin": ORIGIN})
    assert resp.status_code == 202, resp.text
    row = await intake.lead_row(resp.json()["lead_id"])
    assert row is not None and row["lead"]["message"] == HOSTILE


async def test_hostile_source_name_is_a_404_that_no_browser_renders(intake: Intake) -> None:
    for source in ("<script>alert(1)<%2Fscript>", "x'%20OR%20'1'%3D'1", "a%0d%0aSet-Cookie:%20x=1"):
        resp = await intake.client.post(
            f"/v1/webhooks/{source}", content=b"{}", headers={"content-type": JSON}
        )
        assert resp.status_code in (404, 422), resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert "set-cookie" not in resp.headers


async def test_headers_over_32_kib_are_431_and_ordinary_ones_pass(intake: Intake) -> None:
    before = await count_leads(intake)
    for headers in (
        {"x-big": "b" * 40_000},
        {f"x-filler-{i}": "v" * 200 for i in range(200)},
    ):
        resp = await intake.website(website_form(unique_email()), **headers)
        assert_problem(resp, 431)
    assert await count_leads(intake) == before
    ordinary = {f"x-filler-{i}": "v" * 100 for i in range(50)}
    resp = await intake.website(website_form(unique_email()), **ordinary)
    assert resp.status_code == 202, resp.text


# --- the real HTTP server --------------------------------------------------------------------


@pytest.fixture
def intake_server(
    kafka_settings: Settings, env_secrets: dict[str, str], tmp_path: Path
) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {
        **os.environ,
        **env_secrets,
        **topic_env(kafka_settings),
        "DATABASE_URL": kafka_settings.database_url,
        "POLICY_PATH": str(ROOT / "deploy" / "policy.example.yaml"),
        "INTAKE_PORT": str(port),
    }
    log = (tmp_path / "intake.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "serve", "intake"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def raw(addr: tuple[str, int], request: bytes, *, timeout: float = 10.0) -> bytes:
    """Send bytes exactly as given and read the whole answer (or what came before a close)."""
    with socket.create_connection(addr, timeout=timeout) as sock:
        sock.sendall(request)
        chunks: list[bytes] = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def form_request(body: bytes, *extra: bytes, path: bytes = b"/v1/webhooks/website-demo") -> bytes:
    head = [
        b"POST " + path + b" HTTP/1.1",
        b"Host: test",
        b"Origin: " + ORIGIN.encode(),
        b"Content-Type: " + FORM.encode(),
        b"Content-Length: " + str(len(body)).encode(),
        b"Connection: close",
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def test_real_server_refuses_huge_headers_and_stays_up(intake_server: tuple[str, int]) -> None:
    body = urlencoded(website_form(unique_email()))
    for extra in (
        [b"X-Big: " + b"a" * 1_000_000],
        [b"X-Filler-%d: %s" % (i, b"b" * 100) for i in range(20_000)],
    ):
        answer = raw(intake_server, form_request(body, *extra))
        assert status_of(answer) == 431, answer[:200]
    ok = raw(intake_server, form_request(body))
    assert status_of(ok) == 202, ok[:300]


def test_real_server_refuses_crlf_injection(intake_server: tuple[str, int]) -> None:
    body = urlencoded(website_form(unique_email()))
    for extra in (
        b"Idempotency-Key: a\rSet-Cookie: pwn=1",  # bare CR inside a value
        b"Idempotency-Key: a\nX-Injected: 1\r\nX-Other: 2",  # bare LF splitting a header
        b"Idempotency-Key: a\x00b",  # NUL
        b"Bad Header: x",  # space in a field name
    ):
        answer = raw(intake_server, form_request(body, extra))
        assert status_of(answer) in (0, 400), answer[:300]
    answer = raw(
        intake_server,
        form_request(body, path=b"/v1/webhooks/x%0d%0aSet-Cookie:%20pwn=1"),
    )
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert status_of(answer) == 404 and b"set-cookie" not in head, answer[:300]


def test_slow_sender_does_not_hold_up_anyone_else(intake_server: tuple[str, int]) -> None:
    """A sender trickling a body keeps its own connection only; uvicorn has no body timeout
    (docs/privacy.md: put a proxy with a client body timeout in front)."""
    body = urlencoded(website_form(unique_email()))
    slow = [socket.create_connection(intake_server, timeout=10) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(form_request(body)[: -len(body) + 5])  # headers + 5 body bytes
        started = time.monotonic()
        resp = httpx.post(
            f"http://{intake_server[0]}:{intake_server[1]}/v1/webhooks/website-demo",
            content=body,
            headers={"content-type": FORM, "origin": ORIGIN},
            timeout=20,
        )
        assert resp.status_code == 202, resp.text
        assert time.monotonic() - started < 15  # generous: it must not wait for the slow ones
    finally:
        for sock in slow:
            sock.close()
