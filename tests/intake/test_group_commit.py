"""Group commit: concurrent webhooks share one transaction, and still get 202 only after COMMIT.

Duplicates inside one batch and against the table resolve to the first lead; a failed flush
answers 503 to every request in it; with the batcher off, each request has its own transaction.
Also: a sender hanging up mid-body is a counted outcome, not an ASGI error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message

from services.intake import store
from services.intake.store import NewLead
from shared.settings import Settings
from tests.conftest import EventReader
from tests.intake.conftest import (
    JSON,
    Intake,
    chat_payload,
    running_intake,
    standard_headers,
    unique_email,
    website_form,
)

pytestmark = pytest.mark.integration

NOTHING_LISTENS = "postgresql+asyncpg://baton@127.0.0.1:1/baton"


def _metric(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _chat(it: Intake, email: str, msg_id: str | None = None) -> Any:
    secret = it.secrets["BATON_SECRET_CHAT_WIDGET"].split()[0]
    body = json.dumps(chat_payload(email)).encode()
    return await it.post("chat-widget", body, JSON, standard_headers(secret, body, msg_id=msg_id))


async def test_concurrent_webhooks_share_a_commit_and_duplicates_get_the_first_lead(
    kafka_settings: Settings, intake_env: dict[str, str]
) -> None:
    # a long window so the concurrent requests below surely meet in one batch
    settings = kafka_settings.model_copy(
        update={"intake_group_commit_window_ms": 300.0, "intake_group_commit_max": 100}
    )
    async with running_intake(settings, intake_env) as it:
        earlier_key = uuid.uuid4().hex
        earlier = await it.website(website_form(unique_email()), **{"Idempotency-Key": earlier_key})
        assert earlier.status_code == 202
        earlier_lead = earlier.json()["lead_id"]
        commits_before = _metric((await it.client.get("/metrics")).text, "baton_intake_commits_")

        emails = [unique_email("brightpath.io") for _ in range(5)]
        dup_email, dup_msg = unique_email("brightpath.io"), f"msg_{uuid.uuid4().hex}"
        form_email, form_key = unique_email(), uuid.uuid4().hex
        resps = await asyncio.gather(
            *(_chat(it, e) for e in emails),
            *(_chat(it, dup_email, dup_msg) for _ in range(3)),
            *(it.website(website_form(form_email), **{"Idempotency-Key": form_key}) for _ in "ab"),
            it.website(website_form(unique_email()), **{"Idempotency-Key": earlier_key}),
        )
        assert [r.status_code for r in resps] == [202] * 11, [r.text for r in resps]
        ids = [r.json()["lead_id"] for r in resps]
        assert len(set(ids[:5])) == 5
        assert len(set(ids[5:8])) == 1  # three copies in one batch: one lead
        assert ids[8] == ids[9]
        assert ids[10] == earlier_lead  # a key committed earlier still wins
        new_leads = [*ids[:5], ids[5], ids[8]]

        for email in (*emails, dup_email, form_email):
            assert await it.leads_with_email(email) == 1
        commits = _metric((await it.client.get("/metrics")).text, "baton_intake_commits_")
        assert 1 <= commits - commits_before < len(new_leads)  # shared transactions

        async with EventReader(settings, settings.topics.leads_received) as reader:
            for lead_id in new_leads:
                await reader.wait_for(lambda e, lid=lead_id: e.id == lid)
            await reader.drain(1.0)
            seen = [s[1].id for s in reader.seen]
        for lead_id in new_leads:
            assert seen.count(lead_id) == 1, lead_id
        assert earlier_lead not in new_leads


async def test_per_request_transactions_when_group_commit_is_off(
    kafka_settings: Settings, intake_env: dict[str, str]
) -> None:
    settings = kafka_settings.model_copy(update={"intake_group_commit": False})
    async with running_intake(settings, intake_env) as it:
        assert it.app.state.committer is None
        email, msg_id = unique_email("brightpath.io"), f"msg_{uuid.uuid4().hex}"
        both = await asyncio.gather(_chat(it, email, msg_id), _chat(it, email, msg_id))
        assert [r.status_code for r in both] == [202, 202]
        assert both[0].json()["lead_id"] == both[1].json()["lead_id"]
        again = await _chat(it, email, msg_id)
        assert again.json()["lead_id"] == both[0].json()["lead_id"]
        assert await it.lead_row(both[0].json()["lead_id"]) is not None
        assert await it.leads_with_email(email) == 1
        assert _metric((await it.client.get("/metrics")).text, "baton_intake_commits_") == 0


async def test_a_failed_flush_answers_503_to_every_request_in_it(
    kafka_settings: Settings, intake_env: dict[str, str]
) -> None:
    settings = kafka_settings.model_copy(
        update={"database_url": NOTHING_LISTENS, "intake_group_commit_window_ms": 200.0}
    )
    async with running_intake(settings, intake_env) as it:
        resps = await asyncio.gather(*(_chat(it, unique_email()) for _ in range(4)))
        assert [r.status_code for r in resps] == [503] * 4
        assert all(int(r.headers["retry-after"]) >= 1 for r in resps)
        assert all(r.json()["type"].endswith("/unavailable") for r in resps)


async def test_a_sender_hanging_up_mid_body_is_counted_not_an_error(
    kafka_settings: Settings, intake_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    async with running_intake(kafka_settings, intake_env) as it:
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": b'{"email": "x', "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[Message] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/webhooks/chat-widget",
            "raw_path": b"/v1/webhooks/chat-widget",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"test"), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 40000),
            "server": ("test", 80),
        }
        with caplog.at_level(logging.INFO):
            await it.app(scope, receive, send)  # raised ClientDisconnect before the fix
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        metrics = (await it.client.get("/metrics")).text
        assert 'baton_webhooks_disconnected_total{source="chat-widget"} 1.0' in metrics
        assert 'baton_webhooks_total{source="chat-widget",status="499"} 1.0' in metrics


# --- the store's statements, on PostgreSQL only -----------------------------------------------


def _new(key: str | None, source: str = "chat-widget") -> NewLead:
    lead_id = str(uuid.uuid4())
    return NewLead(
        source=source,
        channel="chat",
        key=key,
        lead_id=lead_id,
        received_at=datetime.now(UTC),
        lead=b'{"contact": {}}',
        topic="t.leads.received",
        payload=b"{}",
    )


async def _written(db: AsyncSession, lead_ids: list[str]) -> tuple[int, int]:
    ids = {"ids": lead_ids}
    leads = await db.scalar(
        text("SELECT count(*) FROM intake.leads WHERE lead_id = ANY(CAST(:ids AS uuid[]))"), ids
    )
    events = await db.scalar(
        text("SELECT count(*) FROM intake.outbox WHERE event_id = ANY(CAST(:ids AS text[]))"), ids
    )
    return int(leads or 0), int(events or 0)


async def test_record_leads_resolves_duplicates_in_the_batch_and_against_the_table(
    db: AsyncSession,
) -> None:
    held = _new(uuid.uuid4().hex)
    assert await store.record_leads(db, [held]) == [None]
    k = uuid.uuid4().hex
    batch = [
        _new(None),
        _new(k),
        _new(k),
        _new(held.key),
        _new(k, source="website-demo"),  # same key, other source: another webhook
        _new(None),
    ]
    out = await store.record_leads(db, batch)
    assert out == [None, None, batch[1].lead_id, held.lead_id, None, None]
    written = [b.lead_id for b, o in zip(batch, out, strict=True) if o is None]
    assert await _written(db, written) == (4, 4)
    assert await _written(db, [batch[2].lead_id, batch[3].lead_id]) == (0, 0)


async def test_record_lead_is_one_statement_with_the_same_outcomes(db: AsyncSession) -> None:
    first, copy, unkeyed = _new(uuid.uuid4().hex), None, _new(None)
    assert await store.record_lead(db, first) is None
    copy = _new(first.key)
    assert await store.record_lead(db, copy) == first.lead_id
    assert await store.record_lead(db, unkeyed) is None
    assert await _written(db, [first.lead_id, unkeyed.lead_id]) == (2, 2)
    assert await _written(db, [copy.lead_id]) == (0, 0)
