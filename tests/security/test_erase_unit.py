"""What erasure removes from a lead document and a decision trace, and what it keeps (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.router.erasure import InvalidContact, erase_trace, normalise_contact
from shared.events import Lead, erase_lead_data

LEAD = Lead.model_validate(
    {
        "lead_id": "5b0b8f7e-2f7a-4d7e-9a57-0d1f4b7e2c11",
        "received_at": datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
        "source": "website-demo",
        "channel": "form",
        "contact": {
            "email": "ada.lovelace@acme.com",
            "phone": "+4915123456789",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "title": "VP Engineering",
            "seniority": "vp",
            "company": "Acme Industries",
            "company_domain": "acme.com",
            "country": "DE",
            "email_kind": "business",
        },
        "consent": {"marketing_opt_in": True, "wording": "Yes, Ada, email me"},
        "message": "Call me on +49 151 23456789",
        "utm": {"utm_source": "google"},
        "engagement": {
            "demo_request": True,
            "pages_viewed": ["https://acme.example/pricing?email=ada.lovelace@acme.com#top"],
        },
        "company_size": 800,
        "industry": "manufacturing",
        "answers": {"budget": "Ada has 50k"},
        "extra": {"linkedin": "linkedin.com/in/ada"},
    }
).model_dump(mode="json")

PERSONAL = ("ada", "lovelace", "+49", "23456789", "acme industries", "vp engineering", "linkedin")


def test_erased_lead_holds_no_personal_value_and_is_still_a_lead() -> None:
    erased = erase_lead_data(LEAD)
    text = orjson.dumps(erased).decode().lower()
    for value in PERSONAL:
        assert value not in text, value
    Lead.model_validate(erased)  # replay, what-if and explain still read it


def test_erased_lead_keeps_the_facts_metrics_need() -> None:
    erased = erase_lead_data(LEAD)
    for key in ("lead_id", "received_at", "source", "channel", "utm", "company_size", "industry"):
        assert erased[key] == LEAD[key]
    assert erased["contact"] == {
        "seniority": "vp",
        "company_domain": "acme.com",
        "country": "DE",
        "email_kind": "business",
    }
    assert erased["consent"]["marketing_opt_in"] is True
    assert erased["engagement"]["demo_request"] is True
    assert erased["engagement"]["pages_viewed"] == ["https://acme.example/pricing"]


def test_erasing_twice_changes_nothing() -> None:
    once = erase_lead_data(LEAD)
    assert erase_lead_data(once) == once


def test_trace_loses_rejection_text_and_contact_shaped_values_only() -> None:
    trace: dict[str, Any] = {
        "explanation": ["Rule enterprise matched: company_size >= 500", "mail ada@acme.com"],
        "reason": "rejected by owner: spoke to Ada on +49 151 23456789, wrong person",
        "owner_id": "rep-1",
        "score": 80,
    }
    erased = erase_trace(trace)
    assert erased["reason"] == "rejected by owner"
    assert erased["explanation"][0] == trace["explanation"][0]
    assert "ada@acme.com" not in orjson.dumps(erased).decode()
    assert erased["owner_id"] == "rep-1" and erased["score"] == 80
    assert erase_trace({"reason": "SLA escalation level 3"}) == {"reason": "SLA escalation level 3"}


def test_contact_is_normalised_like_intake_stored_it() -> None:
    assert normalise_contact(" Ada.Lovelace@ACME.com ", None) == ("ada.lovelace@acme.com", None)
    assert normalise_contact(None, "+49 (151) 234-56789") == (None, "+4915123456789")
    assert normalise_contact("jürgen@bücher.de", None) == ("jürgen@xn--bcher-kva.de", None)


@pytest.mark.parametrize(
    ("email", "phone"),
    [(None, None), ("", " "), ("not-an-address", None), (None, "0151 234"), (None, "12345")],
)
def test_unusable_contact_is_422_without_echoing_it(email: str | None, phone: str | None) -> None:
    with pytest.raises(InvalidContact) as exc:
        normalise_contact(email, phone)
    assert exc.value.status == 422
    for value in (email, phone):
        if value and value.strip():
            assert value not in str(exc.value.detail) + str(exc.value.fields)
