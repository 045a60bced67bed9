"""POST /v1/webhooks/{source} through the real app, PostgreSQL and Kafka (fresh topics per test).

What an integrator relies on: each example source accepted when signed the vendor's way and
mapped into one canonical lead; the event on `leads.received` equal to the stored row; unmapped
fields kept out of both; retries answered with the first lead id and published once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from shared.events import CloudEvent
from shared.settings import Settings
from tests.conftest import EventReader
from tests.intake.conftest import (
    FORM,
    JSON,
    ORIGIN,
    Intake,
    chat_payload,
    hubspot_headers,
    hubspot_payload,
    multipart,
    new_whsec,
    running_intake,
    source_of,
    standard_headers,
    typeform_headers,
    typeform_payload,
    unique_email,
    wait_for_leads,
    website_form,
    write_policy,
)

pytestmark = pytest.mark.integration

Send = Callable[[Intake, str], Awaitable[httpx.Response]]


async def _website_urlencoded(it: Intake, email: str) -> httpx.Response:
    return await it.website(website_form(email))


async def _website_multipart(it: Intake, email: str) -> httpx.Response:
    body, content_type = multipart(website_form(email))
    return await it.post("website-demo", body, content_type, {"origin": ORIGIN})


async def _chat_json(it: Intake, email: str) -> httpx.Response:
    return await it.chat(chat_payload(email))


async def _chat_urlencoded(it: Intake, email: str) -> httpx.Response:
    # A widget posting flat form keys: "visitor.email" matches the mapping's dot path as is.
    body = f"visitor.email={email}&visitor.first_name=ada&conversation.first_message=Hi".encode()
    secret = it.secrets["BATON_SECRET_CHAT_WIDGET"]
    return await it.post("chat-widget", body, FORM, standard_headers(secret, body))


async def _typeform_json(it: Intake, email: str) -> httpx.Response:
    return await it.typeform(typeform_payload(email))


async def _hubspot_json(it: Intake, email: str) -> httpx.Response:
    return await it.hubspot(hubspot_payload(email))


CASES: dict[str, tuple[Send, str, dict[str, Any]]] = {
    "website-demo urlencoded": (
        _website_urlencoded,
        "northwind-logistics.de",
        {"source": "website-demo", "channel": "form", "phone": "+49301234567", "country": "DE"},
    ),
    "website-demo multipart": (
        _website_multipart,
        "northwind-logistics.de",
        {"source": "website-demo", "channel": "form", "phone": "+49301234567", "country": "DE"},
    ),
    "chat-widget json": (
        _chat_json,
        "brightpath.io",
        {"source": "chat-widget", "channel": "chat", "phone": "+442079460958", "country": "GB"},
    ),
    "chat-widget urlencoded": (
        _chat_urlencoded,
        "brightpath.io",
        {"source": "chat-widget", "channel": "chat", "phone": None, "country": None},
    ),
    "typeform json": (
        _typeform_json,
        "fabbrica-digitale.it",
        {
            "source": "typeform-contact",
            "channel": "form",
            "phone": "+390212345678",
            "country": "IT",
        },
    ),
    "hubspot json": (
        _hubspot_json,
        "meridian-health.com",
        {"source": "hubspot-forms", "channel": "form", "phone": "+14155550132", "country": "US"},
    ),
}


def _count(reader: EventReader, lead_id: str) -> int:
    return sum(1 for _, e, _ in reader.seen if e.subject == lead_id)


async def _sentinel_then_drain(it: Intake, reader: EventReader) -> list[CloudEvent]:
    """Post one good lead and wait for it: anything published before it has arrived by then
    (one relay, publishing in commit order); drain a little longer for other partitions."""
    resp = await it.chat(chat_payload(unique_email("brightpath.io")))
    assert resp.status_code == 202, resp.text
    sentinel = resp.json()["lead_id"]
    await wait_for_leads(reader, sentinel)
    events = await reader.drain(1.0)
    return [e for e in events if e.subject != sentinel]


@pytest.mark.parametrize("case", list(CASES))
async def test_example_source_accepted_mapped_and_published(intake: Intake, case: str) -> None:
    send, domain, expected = CASES[case]
    email = unique_email(domain)
    resp = await send(intake, email.upper())  # e-mail is lower-cased at the door
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "accepted"
    lead_id = body["lead_id"]
    assert str(uuid.UUID(lead_id)) == lead_id

    row = await intake.lead_row(lead_id)  # durable before the 202
    assert row is not None
    async with EventReader(intake.settings, intake.settings.topics.leads_received) as reader:
        await wait_for_leads(reader, lead_id)
    event = next(e for _, e, _ in reader.seen if e.subject == lead_id)

    assert event.type == "lead.received"
    assert event.id == lead_id and event.subject == lead_id
    _, _, msg = next(item for item in reader.seen if item[1].subject == lead_id)
    assert msg.key == lead_id.encode()  # key = lead id: per-lead order
    assert event.data == row["lead"]  # the event is exactly the stored lead
    lead = event.data
    assert (row["source"], row["channel"]) == (expected["source"], expected["channel"])
    assert lead["source"] == expected["source"] and lead["channel"] == expected["channel"]
    contact = lead["contact"]
    assert contact["email"] == email
    assert contact["phone"] == expected["phone"]
    assert contact["country"] == expected["country"]
    assert contact["company_domain"] == domain
    assert contact["email_kind"] == "business"


async def test_example_payloads_map_every_documented_field(intake: Intake) -> None:
    """The samples in deploy/examples carry consent, UTM, answers and engagement through."""
    resp = await intake.typeform(typeform_payload(unique_email("fabbrica-digitale.it")))
    assert resp.status_code == 202, resp.text
    row = await intake.lead_row(resp.json()["lead_id"])
    assert row is not None
    lead = row["lead"]
    assert lead["contact"]["first_name"] == "Sofia" and lead["contact"]["last_name"] == "Rossi"
    assert lead["contact"]["seniority"] == "director"
    assert lead["company_size"] == 850
    assert lead["engagement"]["demo_request"] is True
    assert lead["answers"] == {
        "budget": "EUR 25k-50k per year",
        "authority": "true",
        "need": "Leads from trade fairs sit in spreadsheets for days. We need an owner within "
        "the hour.",
        "timeline": "Within 3 months",
    }
    assert lead["utm"] == {
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "nov-digest",
    }
    assert lead["consent"]["marketing_opt_in"] is True
    assert lead["consent"]["wording"].startswith("I'd like to receive news")

    resp = await intake.chat(chat_payload(unique_email("brightpath.io")))
    assert resp.status_code == 202, resp.text
    row = await intake.lead_row(resp.json()["lead_id"])
    assert row is not None
    engagement = row["lead"]["engagement"]
    assert engagement["pricing_page"] is True and engagement["chat_message"] is True
    assert engagement["pages_viewed"] == ["/", "/product/routing", "/pricing", "/docs/sla"]


# --- errors ---------------------------------------------------------------------------------


def _problem(resp: httpx.Response, status: int, *fields: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    names = [e["name"] for e in body.get("errors", [])]
    for name in fields:
        assert name in names, (name, body)
    return body


async def test_every_error_is_a_problem_naming_the_field_and_publishes_nothing(
    intake: Intake,
) -> None:
    chat_secret = intake.secrets["BATON_SECRET_CHAT_WIDGET"]
    emails: list[str] = []

    def chat_body() -> bytes:
        email = unique_email("brightpath.io")
        emails.append(email)
        return json.dumps(chat_payload(email)).encode()

    # 400: malformed JSON, correctly signed; urlencoded body that is not UTF-8
    bad_json = b'{"visitor": {"email": '
    resp = await intake.post("chat-widget", bad_json, JSON, standard_headers(chat_secret, bad_json))
    _problem(resp, 400, "body")
    resp = await intake.post("website-demo", b"email=\xff\xfe", FORM, {"origin": ORIGIN})
    _problem(resp, 400, "body")

    # 401: missing, wrong and stale Standard Webhooks signatures
    body = chat_body()
    resp = await intake.post("chat-widget", body, JSON)
    _problem(resp, 401, "webhook-id", "webhook-timestamp", "webhook-signature")
    resp = await intake.post("chat-widget", body, JSON, standard_headers(new_whsec(), body))
    _problem(resp, 401, "webhook-signature")
    stale = datetime.fromtimestamp(datetime.now(UTC).timestamp() - 6 * 60, UTC)
    resp = await intake.post(
        "chat-widget", body, JSON, standard_headers(chat_secret, body, at=stale)
    )
    _problem(resp, 401, "webhook-timestamp")
    tampered = body.replace(b"VP Revenue", b"CEO Revenue")
    resp = await intake.post("chat-widget", tampered, JSON, standard_headers(chat_secret, body))
    _problem(resp, 401, "webhook-signature")

    # 401: Typeform and HubSpot signed with the wrong secret, or stale / for another URL
    email = unique_email("fabbrica-digitale.it")
    emails.append(email)
    tf_body = json.dumps(typeform_payload(email)).encode()
    resp = await intake.post("typeform-contact", tf_body, JSON)
    _problem(resp, 401, "Typeform-Signature")
    resp = await intake.post("typeform-contact", tf_body, JSON, typeform_headers("nope", tf_body))
    _problem(resp, 401, "Typeform-Signature")
    email = unique_email("meridian-health.com")
    emails.append(email)
    hs_body = json.dumps(hubspot_payload(email)).encode()
    hs_secret = intake.secrets["BATON_SECRET_HUBSPOT"]
    uri = "http://test/v1/webhooks/hubspot-forms"
    old_ms = int((datetime.now(UTC).timestamp() - 6 * 60) * 1000)
    resp = await intake.post(
        "hubspot-forms", hs_body, JSON, hubspot_headers(hs_secret, hs_body, uri=uri, at_ms=old_ms)
    )
    _problem(resp, 401, "X-HubSpot-Request-Timestamp")
    other = hubspot_headers(hs_secret, hs_body, uri="http://test/v1/webhooks/other")
    resp = await intake.post("hubspot-forms", hs_body, JSON, other)
    _problem(resp, 401, "X-HubSpot-Signature-v3")

    # 403: browser form from a foreign or missing Origin
    email = unique_email()
    emails.append(email)
    resp = await intake.website(website_form(email), origin="https://evil.example")
    _problem(resp, 403, "origin")
    resp = await intake.post("website-demo", b"email=" + email.encode(), FORM)
    _problem(resp, 403, "origin")

    # 404: unknown source
    resp = await intake.post("no-such-source", chat_body(), JSON)
    _problem(resp, 404)

    # 413: declared too large, and streamed (chunked, no Content-Length) too large
    big = b'{"pad": "' + b"x" * (intake.settings.max_body_bytes + 10) + b'"}'
    resp = await intake.post("chat-widget", big, JSON, standard_headers(chat_secret, big))
    _problem(resp, 413, "body")

    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 8192

    resp = await intake.client.post(
        "/v1/webhooks/website-demo",
        content=chunks(),
        headers={"content-type": FORM, "origin": ORIGIN},
    )
    _problem(resp, 413, "body")

    # 415: a body type intake does not read
    resp = await intake.post("website-demo", b"email=a@b.c", "text/plain", {"origin": ORIGIN})
    _problem(resp, 415, "content-type")
    resp = await intake.post("website-demo", b"email=a@b.c", None, {"origin": ORIGIN})
    _problem(resp, 415, "content-type")

    # 422: neither a valid e-mail nor a valid phone
    resp = await intake.website(website_form("not-an-email", phone="12"))
    body422 = _problem(resp, 422, "email", "phone")
    assert "not-an-email" not in resp.text  # names fields, never echoes values
    assert body422["type"].endswith("/no-usable-contact")

    async with EventReader(intake.settings, intake.settings.topics.leads_received) as reader:
        assert await _sentinel_then_drain(intake, reader) == []
    for email in emails:
        assert await intake.leads_with_email(email) == 0


async def test_rate_limit_answers_429_with_retry_after(
    kafka_settings: Settings, intake_env: dict[str, str], tmp_path: Path
) -> None:
    def tight(policy: dict[str, Any]) -> None:
        source_of(policy, "website-demo")["rate_limit"] = {"requests": 2, "per_seconds": 3600}

    settings = kafka_settings.model_copy(update={"policy_path": write_policy(tmp_path, tight)})
    async with running_intake(settings, intake_env) as it:
        for _ in range(2):
            assert (await it.website(website_form(unique_email()))).status_code == 202
        email = unique_email()
        resp = await it.website(website_form(email))
        _problem(resp, 429)
        assert int(resp.headers["retry-after"]) >= 1
        assert await it.leads_with_email(email) == 0
        # other sources have their own budget
        assert (await it.chat(chat_payload(unique_email("brightpath.io")))).status_code == 202


# --- honeypot and data minimisation --------------------------------------------------------


async def test_filled_honeypot_looks_accepted_but_nothing_is_stored_or_published(
    intake: Intake,
) -> None:
    email = unique_email()
    resp = await intake.website(website_form(email, website_url="http://cheap-pills.example"))
    assert resp.status_code == 202  # bots learn nothing
    lead_id = resp.json()["lead_id"]
    assert await intake.lead_row(lead_id) is None
    assert await intake.leads_with_email(email) == 0
    async with EventReader(intake.settings, intake.settings.topics.leads_received) as reader:
        assert await _sentinel_then_drain(intake, reader) == []


async def test_unmapped_fields_never_reach_the_row_or_the_event(intake: Intake) -> None:
    marker = f"UNMAPPED-{uuid.uuid4().hex}"
    payload = chat_payload(unique_email("brightpath.io"))
    payload["visitor"]["ip"] = marker
    payload["visitor"]["national_id"] = marker
    payload["internal_notes"] = {"text": marker}
    payload["session"]["utm"]["gclid"] = marker
    resp = await intake.chat(payload)
    assert resp.status_code == 202, resp.text
    lead_id = resp.json()["lead_id"]

    form = website_form(unique_email(), password=marker, tracking_cookie=marker)
    resp = await intake.website(form)
    assert resp.status_code == 202, resp.text
    form_lead = resp.json()["lead_id"]

    async with EventReader(intake.settings, intake.settings.topics.leads_received) as reader:
        await wait_for_leads(reader, lead_id, form_lead)
        for lid in (lead_id, form_lead):
            row = await intake.lead_row(lid)
            assert row is not None
            assert marker not in json.dumps(row["lead"])
        raw = [msg.value for _, e, msg in reader.seen if e.subject in (lead_id, form_lead)]
    assert len(raw) == 2
    assert all(marker.encode() not in value for value in raw)
    # the sample's own unmapped data (visitor IP, user agent) is dropped too
    assert all(b"203.0.113.42" not in value and b"Mozilla" not in value for value in raw)
    leftovers = await intake.rows(
        "SELECT count(*) AS n FROM intake.leads WHERE lead::text LIKE :m", m=f"%{marker}%"
    )
    assert leftovers[0]["n"] == 0


# --- idempotency and key rotation ----------------------------------------------------------


async def test_retries_return_the_first_lead_and_publish_once(intake: Intake) -> None:
    secret = intake.secrets["BATON_SECRET_CHAT_WIDGET"]
    email = unique_email("brightpath.io")
    body = json.dumps(chat_payload(email)).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    first = await intake.post(
        "chat-widget", body, JSON, standard_headers(secret, body, msg_id=msg_id)
    )
    # the sender retries later: same webhook-id, freshly signed timestamp
    again = await intake.post(
        "chat-widget", body, JSON, standard_headers(secret, body, msg_id=msg_id)
    )
    assert first.status_code == again.status_code == 202
    chat_lead = first.json()["lead_id"]
    assert again.json() == {"lead_id": chat_lead, "status": "accepted"}

    # concurrent copies of one webhook: one lead, both answered with it
    body2 = json.dumps(chat_payload(unique_email("brightpath.io"))).encode()
    msg2 = f"msg_{uuid.uuid4().hex}"
    both = await asyncio.gather(
        *(
            intake.post("chat-widget", body2, JSON, standard_headers(secret, body2, msg_id=msg2))
            for _ in range(2)
        )
    )
    assert [r.status_code for r in both] == [202, 202]
    concurrent_lead = both[0].json()["lead_id"]
    assert both[1].json()["lead_id"] == concurrent_lead

    # a browser form with an Idempotency-Key header
    form_email = unique_email()
    key = uuid.uuid4().hex
    f1 = await intake.website(website_form(form_email), **{"Idempotency-Key": key})
    f2 = await intake.website(website_form(form_email), **{"Idempotency-Key": key})
    form_lead = f1.json()["lead_id"]
    assert f2.json()["lead_id"] == form_lead

    # Typeform re-delivers the same form_response (same token)
    tf = typeform_payload(unique_email("fabbrica-digitale.it"))
    t1, t2 = await intake.typeform(tf), await intake.typeform(tf)
    tf_lead = t1.json()["lead_id"]
    assert t2.json()["lead_id"] == tf_lead

    # the same key on another source is another webhook
    other = await intake.website(website_form(unique_email()), **{"Idempotency-Key": msg_id})
    assert other.json()["lead_id"] != chat_lead

    assert await intake.leads_with_email(email) == 1
    assert await intake.leads_with_email(form_email) == 1
    async with EventReader(intake.settings, intake.settings.topics.leads_received) as reader:
        await _sentinel_then_drain(intake, reader)
        for lead_id in (chat_lead, concurrent_lead, form_lead, tf_lead):
            assert _count(reader, lead_id) == 1, lead_id


async def test_idempotency_key_expires_after_24_hours(intake: Intake) -> None:
    key = uuid.uuid4().hex
    first = await intake.website(website_form(unique_email()), **{"Idempotency-Key": key})
    first_lead = first.json()["lead_id"]
    # age the key as if the first delivery was 25 hours ago
    async with intake.app.state.runtime.sessions() as session, session.begin():
        await session.execute(
            text(
                "UPDATE intake.idempotency SET created_at = now() - interval '25 hours' "
                "WHERE source = 'website-demo' AND key = :k"
            ),
            {"k": key},
        )
    later = await intake.website(website_form(unique_email()), **{"Idempotency-Key": key})
    assert later.status_code == 202
    assert later.json()["lead_id"] != first_lead
    assert await intake.lead_row(later.json()["lead_id"]) is not None


async def test_key_rotation_accepts_every_configured_secret(
    kafka_settings: Settings, intake_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = new_whsec(), new_whsec()
    monkeypatch.setenv("BATON_SECRET_CHAT_WIDGET", f"{old} {new}")
    monkeypatch.setenv("BATON_SECRET_TYPEFORM", "typeform-old typeform-new")
    secrets = {**intake_env, "BATON_SECRET_CHAT_WIDGET": old}
    async with running_intake(kafka_settings, secrets) as it:
        for secret in (old, new):
            body = json.dumps(chat_payload(unique_email("brightpath.io"))).encode()
            resp = await it.post("chat-widget", body, JSON, standard_headers(secret, body))
            assert resp.status_code == 202, resp.text
        # a sender mid-rotation sends several signatures in one header; any valid one will do
        body = json.dumps(chat_payload(unique_email("brightpath.io"))).encode()
        headers = standard_headers(new, body)
        unknown = standard_headers(new_whsec(), body, msg_id=headers["webhook-id"])
        ts = headers["webhook-timestamp"]
        assert unknown["webhook-timestamp"] == ts
        headers["webhook-signature"] = (
            f"{unknown['webhook-signature']} {headers['webhook-signature']}"
        )
        assert (await it.post("chat-widget", body, JSON, headers)).status_code == 202
        # a retired secret is refused
        body = json.dumps(chat_payload(unique_email("brightpath.io"))).encode()
        resp = await it.post("chat-widget", body, JSON, standard_headers(new_whsec(), body))
        assert resp.status_code == 401
        for secret, status in (("typeform-old", 202), ("typeform-new", 202), ("retired", 401)):
            tf_body = json.dumps(typeform_payload(unique_email("fabbrica-digitale.it"))).encode()
            headers = typeform_headers(secret, tf_body)
            resp = await it.post("typeform-contact", tf_body, JSON, headers)
            assert resp.status_code == status, (secret, resp.text)
