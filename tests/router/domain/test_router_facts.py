"""flatten_lead: the nested canonical lead becomes the field paths conditions are written on."""

from __future__ import annotations

from datetime import UTC, datetime

from services.router.domain.facts import flatten_lead
from shared.events import Consent, Contact, Engagement, Lead


def test_flatten_canonical_lead() -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    lead = Lead(
        lead_id="3f1c6a52-6b61-4a57-8d4e-0d6b1f1f8a11",
        received_at=at,
        source="website-demo",
        channel="form",
        contact=Contact(
            email="jo@acme.com", phone="+4930123456", first_name="Jo", title="CTO",
            seniority="c_level", company="Acme", company_domain="acme.com", country="DE",
            email_kind="business",
        ),
        consent=Consent(marketing_opt_in=True, at=at, wording="I agree."),
        message="Need a demo",
        utm={"utm_source": "google", "utm_campaign": "q4"},
        engagement=Engagement(demo_request=True, pages_viewed=["/pricing"]),
        company_size=800,
        industry="Software",
        answers={"budget": "50000"},
        extra={"website": "https://acme.com", "plan": "pro"},
    )  # fmt: skip
    facts = flatten_lead(lead.model_dump())
    assert facts["email"] == "jo@acme.com"
    assert facts["seniority"] == "c_level"
    assert facts["email_kind"] == "business"
    assert facts["consent"] is True
    assert facts["consent_wording"] == "I agree."
    assert facts["consent_at"] == at
    assert facts["demo_request"] is True
    assert facts["pricing_page"] is False
    assert facts["pages_viewed"] == ["/pricing"]
    assert facts["content_downloaded"] == []
    assert facts["utm_source"] == "google"
    assert facts["utm_campaign"] == "q4"
    assert "utm_term" not in facts
    assert facts["company_size"] == 800
    assert facts["answers.budget"] == "50000"
    assert facts["extra.plan"] == "pro"
    assert facts["website"] == "https://acme.com"
    assert facts["source"] == "website-demo"
    assert facts["channel"] == "form"
    assert "last_name" not in facts  # None values are left out: missing means missing


def test_flatten_minimal_json_lead() -> None:
    facts = flatten_lead({"source": "chat", "channel": "chat", "contact": {"phone": "+1555"}})
    assert facts == {
        "phone": "+1555", "consent": False, "source": "chat", "channel": "chat",
    }  # fmt: skip
