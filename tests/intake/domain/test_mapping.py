"""Mapping vendor payloads (as Typeform and HubSpot document them) to canonical paths."""

from __future__ import annotations

from typing import Any

import pytest

from services.intake.domain.mapping import extract, honeypot_filled, map_payload

# Shape of Typeform's `form_response` webhook body (trimmed, values made up).
TYPEFORM: dict[str, Any] = {
    "event_id": "01HXYZEVENT",
    "event_type": "form_response",
    "form_response": {
        "form_id": "lT4Z3j",
        "token": "a3a12ec67a1365927098a606107fac15",
        "submitted_at": "2026-11-27T10:04:10Z",
        "landed_at": "2026-11-27T10:02:41Z",
        "hidden": {"utm_source": "linkedin", "utm_campaign": "q4-demo"},
        "definition": {"id": "lT4Z3j", "title": "Book a demo", "fields": []},
        "answers": [
            {
                "type": "email",
                "email": "jane.doe@acme.com",
                "field": {"id": "SMEUb7VJz92Q", "type": "email", "ref": "work_email"},
            },
            {
                "type": "text",
                "text": "Jane",
                "field": {"id": "JwWggjAKtOkA", "type": "short_text", "ref": "first_name"},
            },
            {
                "type": "phone_number",
                "phone_number": "+4930123456",
                "field": {"id": "Q7M2k1", "type": "phone_number", "ref": "phone"},
            },
            {
                "type": "number",
                "number": 850,
                "field": {"id": "KoJxDM3c6x8h", "type": "number", "ref": "employees"},
            },
            {
                "type": "boolean",
                "boolean": True,
                "field": {"id": "gFFf3xAkJKsr", "type": "yes_no", "ref": "consent"},
            },
            {
                "type": "choice",
                "choice": {"id": "c1", "label": "This quarter"},
                "field": {"id": "k6TP9oLGgHjl", "type": "multiple_choice", "ref": "timeline"},
            },
            {
                "type": "choices",
                "choices": {"ids": ["a", "b"], "labels": ["Routing", "SLA"], "other": "API"},
                "field": {"id": "PNe8ZKBK8C2Q", "type": "multiple_choice", "ref": "needs"},
            },
            {
                "type": "date",
                "date": "2026-12-01",
                "field": {"id": "dd1", "type": "date", "ref": "start"},
            },
            {
                "type": "url",
                "url": "https://acme.com",
                "field": {"id": "u1", "type": "website", "ref": "site"},
            },
            {
                "type": "file_url",
                "file_url": "https://api.typeform.com/responses/files/x/cv.pdf",
                "field": {"id": "f1", "type": "file_upload", "ref": "cv"},
            },
        ],
    },
}

# Shape of HubSpot's forms submission body (Forms API v3 submit / forms webhook).
HUBSPOT: dict[str, Any] = {
    "submittedAt": "1764237850000",
    "fields": [
        {"objectTypeId": "0-1", "name": "email", "value": "max@beispiel.de"},
        {"objectTypeId": "0-1", "name": "firstname", "value": "Max"},
        {"objectTypeId": "0-1", "name": "interests", "value": "routing"},
        {"objectTypeId": "0-1", "name": "interests", "value": "reporting"},
    ],
    "context": {
        "hutk": "60c2ccdfe4892f0fa0593940b12c11aa",
        "pageUri": "https://www.example.com/demo",
        "pageName": "Book a demo",
    },
    "legalConsentOptions": {
        "consent": {
            "consentToProcess": True,
            "text": "I agree to allow Example Company to store and process my personal data.",
            "communications": [
                {"value": True, "subscriptionTypeId": 999, "text": "I agree to receive marketing."}
            ],
        }
    },
}


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("ref:work_email", "jane.doe@acme.com"),
        ("ref:first_name", "Jane"),
        ("ref:phone", "+4930123456"),
        ("ref:employees", 850),
        ("ref:consent", True),
        ("ref:timeline", "This quarter"),
        ("ref:needs", ["Routing", "SLA", "API"]),
        ("ref:start", "2026-12-01"),
        ("ref:site", "https://acme.com"),
        ("ref:cv", None),  # file uploads are never taken
        ("ref:unknown", None),
        ("form_response.hidden.utm_source", "linkedin"),
        ("form_response.answers.1.text", "Jane"),
        ("form_response.answers.99.text", None),
        ("form_response.token.x", None),
    ],
)
def test_typeform_extract(location: str, expected: object) -> None:
    assert extract(TYPEFORM, location) == expected


def test_typeform_by_ref_not_position() -> None:
    reordered = {"form_response": {"answers": list(reversed(TYPEFORM["form_response"]["answers"]))}}
    assert extract(reordered, "ref:work_email") == "jane.doe@acme.com"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("hs:email", "max@beispiel.de"),
        ("hs:firstname", "Max"),
        ("hs:interests", ["routing", "reporting"]),
        ("hs:lastname", None),
        ("context.pageUri", "https://www.example.com/demo"),
        ("legalConsentOptions.consent.communications.0.value", True),
    ],
)
def test_hubspot_extract(location: str, expected: object) -> None:
    assert extract(HUBSPOT, location) == expected


def test_extract_tolerates_wrong_shapes() -> None:
    assert extract({"fields": "nope"}, "hs:email") is None
    assert extract({"form_response": {"answers": [1, {"field": "x"}]}}, "ref:a") is None
    assert extract({"a": [1]}, "a.-1") is None
    assert extract({"a": "text"}, "a.b") is None
    assert extract({"user.email": "x@y.z"}, "user.email") == "x@y.z"


def test_map_payload_keeps_only_mapped_fields() -> None:
    raw = map_payload(
        TYPEFORM,
        {
            "email": "ref:work_email",
            "first_name": "ref:first_name",
            "company_size": "ref:employees",
            "answers.timeline": "ref:timeline",
            "utm_source": "form_response.hidden.utm_source",
            "last_name": "ref:missing",
        },
        consent_field="ref:consent",
        consent_wording="I agree to be contacted.",
    )
    assert dict(raw.values) == {
        "email": "jane.doe@acme.com",
        "first_name": "Jane",
        "company_size": 850,
        "answers.timeline": "This quarter",
        "utm_source": "linkedin",
    }
    assert raw.consent is True
    assert raw.consent_wording == "I agree to be contacted."
    # nothing else from the payload leaks through (token, phone, definition, ...)
    assert "+4930123456" not in repr(raw) and "a3a12ec6" not in repr(raw)


def test_map_payload_consent_from_mapping_when_no_consent_field() -> None:
    raw = map_payload({"c": "on", "email": "a@b.c"}, {"email": "email", "consent": "c"}, None, None)
    assert raw.consent == "on"
    raw = map_payload({"email": "a@b.c"}, {"email": "email"}, None, None)
    assert raw.consent is None


def test_hubspot_map_payload() -> None:
    raw = map_payload(
        HUBSPOT,
        {"email": "hs:email", "first_name": "hs:firstname", "pages_viewed": "context.pageUri"},
        consent_field="legalConsentOptions.consent.communications.0.value",
        consent_wording="I agree to receive marketing.",
    )
    assert raw.values["email"] == "max@beispiel.de"
    assert raw.values["pages_viewed"] == "https://www.example.com/demo"
    assert raw.consent is True


@pytest.mark.parametrize(
    ("payload", "filled"),
    [({"website_url": ""}, False), ({}, False), ({"website_url": "  "}, False),
     ({"website_url": "http://spam"}, True), ({"website_url": ["", "x"]}, True)],
)  # fmt: skip
def test_honeypot(payload: dict[str, Any], filled: bool) -> None:
    assert honeypot_filled(payload, "website_url") is filled
