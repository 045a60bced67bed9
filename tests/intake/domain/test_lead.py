"""Canonical lead fields from mapped values: contact rules, consent, minimisation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.intake.domain.errors import NoUsableContact
from services.intake.domain.lead import CanonicalFields, build_lead_fields
from services.intake.domain.mapping import RawLead, map_payload


def build(
    values: dict[str, object], consent: object = None, wording: str | None = None
) -> CanonicalFields:
    return build_lead_fields(RawLead(values=values, consent=consent, consent_wording=wording))


def test_full_form_lead() -> None:
    fields = build(
        {
            "email": " Jane.Doe@ACME.com ",
            "phone": "030 1234567",
            "country": "Germany",
            "first_name": "JANE",
            "last_name": "van der berg",
            "title": "  VP   Sales ",
            "company": " Acme  GmbH ",
            "website": "https://www.acme-group.com",
            "message": "  Hello,\n\nplease call me.  ",
            "company_size": "1,000+",
            "industry": "Manufacturing",
            "demo_request": "on",
            "pricing_page": "false",
            "pages_viewed": "/pricing, /demo\n/pricing",
            "content_downloaded": ["whitepaper-2026.pdf"],
            "utm_source": "linkedin",
            "utm_campaign": "q4",
            "answers.budget": 50000,
            "answers.timeline": ["This quarter"],
            "extra.referrer": "partner-x",
        },
        consent="yes",
        wording="I agree to be contacted by Example about its products.",
    )
    c = fields.contact
    assert c.email == "jane.doe@acme.com" and c.email_kind == "business"
    assert c.phone == "+49301234567" and c.country == "DE"
    assert (c.first_name, c.last_name) == ("Jane", "Van der Berg")
    assert c.title == "VP Sales" and c.seniority == "vp"
    assert c.company == "Acme GmbH" and c.company_domain == "acme.com"
    assert fields.message == "Hello,\n\nplease call me."
    assert fields.company_size == 1000 and fields.industry == "Manufacturing"
    assert fields.engagement.demo_request is True and fields.engagement.pricing_page is False
    assert fields.engagement.pages_viewed == ("/pricing", "/demo")
    assert fields.engagement.content_downloaded == ("whitepaper-2026.pdf",)
    assert dict(fields.utm) == {"utm_source": "linkedin", "utm_campaign": "q4"}
    assert dict(fields.answers) == {"budget": "50000", "timeline": "This quarter"}
    assert dict(fields.extra) == {"referrer": "partner-x"}
    assert fields.consent.marketing_opt_in is True
    assert fields.consent.wording == "I agree to be contacted by Example about its products."
    assert fields.warnings == ()


def test_to_dict_matches_lead_model_shape() -> None:
    d = build({"email": "a@acme.com", "pages_viewed": ["/a"]}).to_dict()
    assert set(d) == {
        "contact", "consent", "message", "utm", "engagement",
        "company_size", "industry", "answers", "extra",
    }  # fmt: skip
    assert set(d["contact"]) == {
        "email", "phone", "first_name", "last_name", "title", "seniority",
        "company", "company_domain", "country", "email_kind",
    }  # fmt: skip
    assert d["consent"] == {"marketing_opt_in": False, "at": None, "wording": None}
    assert d["engagement"]["pages_viewed"] == ["/a"]


def test_no_contact_at_all() -> None:
    with pytest.raises(NoUsableContact) as info:
        build({"first_name": "Jane"})
    assert info.value.status == 422
    assert {f["name"] for f in info.value.fields} == {"email", "phone"}


def test_invalid_email_and_invalid_phone_is_no_usable_contact_without_values() -> None:
    with pytest.raises(NoUsableContact) as info:
        build({"email": "jane(at)acme.com", "phone": "12"})
    assert "jane" not in str(info.value) and "jane" not in repr(info.value.fields)
    assert info.value.fields == [
        {"name": "email", "message": "email is invalid"},
        {"name": "phone", "message": "phone is invalid"},
    ]
    with pytest.raises(NoUsableContact) as info:
        build({"phone": "12"})
    assert [f["message"] for f in info.value.fields] == ["email is missing", "phone is invalid"]


def test_phone_only_lead_is_usable() -> None:
    fields = build({"phone": "+1 (415) 555-2671", "email": ""})
    assert fields.contact.phone == "+14155552671"
    assert fields.contact.email is None and fields.contact.email_kind is None


def test_invalid_phone_dropped_with_warning_when_email_valid() -> None:
    fields = build({"email": "jane@acme.com", "phone": "call me maybe"})
    assert fields.contact.phone is None
    assert [(w.name, w.message) for w in fields.warnings] == [("phone", "not a valid phone number")]


def test_local_phone_uses_lead_country() -> None:
    assert build({"phone": "020 7946 0958", "country": "uk"}).contact.phone == "+442079460958"
    with pytest.raises(NoUsableContact):
        build({"phone": "020 7946 0958"})  # no country: the local number is unusable


def test_free_mail_does_not_become_company_domain() -> None:
    fields = build({"email": "jane@gmail.com", "website": "www.acme.com"})
    assert fields.contact.email_kind == "free" and fields.contact.company_domain == "acme.com"
    fields = build({"email": "jane@gmail.com"})
    assert fields.contact.company_domain is None
    fields = build({"email": "jane@yopmail.com", "company_domain": "https://Acme.io"})
    assert fields.contact.email_kind == "disposable" and fields.contact.company_domain == "acme.io"


@pytest.mark.parametrize("consent", [None, "", "no", "off", False, 0, "false"])
def test_consent_is_false_unless_given(consent: object) -> None:
    fields = build({"email": "a@acme.com", "consent_at": "2026-11-27T10:00:00Z"}, consent)
    assert fields.consent.marketing_opt_in is False
    assert fields.consent.at is None


def test_consent_time_and_wording() -> None:
    fields = build(
        {"email": "a@acme.com", "consent_at": "2026-11-27T11:00:00+01:00"}, "on", "Wording v2"
    )
    assert fields.consent.marketing_opt_in is True
    assert fields.consent.at == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert fields.consent.wording == "Wording v2"
    fields = build({"email": "a@acme.com", "consent_at": "1764237850000"}, True)
    assert fields.consent.at == datetime.fromtimestamp(1764237850, tz=UTC)
    fields = build({"email": "a@acme.com", "consent_at": "tuesday"}, True)
    assert fields.consent.at is None and fields.warnings[0].name == "consent_at"


def test_mapped_consent_wording_used_when_source_has_none() -> None:
    fields = build({"email": "a@acme.com", "consent_wording": "Shown text"}, True, None)
    assert fields.consent.wording == "Shown text"


@pytest.mark.parametrize(
    ("raw", "size"),
    [(850, 850), ("51-200", 51), ("1.000", 1000), ("approx. 40", 40), (12.7, 12), ("many", None),
     (True, None), (-5, None)],
)  # fmt: skip
def test_company_size(raw: object, size: int | None) -> None:
    assert build({"email": "a@acme.com", "company_size": raw}).company_size == size


def test_unknown_country_dropped_with_warning() -> None:
    fields = build({"email": "a@acme.com", "country": "Atlantis"})
    assert fields.contact.country is None
    assert fields.warnings[0].name == "country" and "Atlantis" not in fields.warnings[0].message


def test_unknown_canonical_field_is_ignored_with_warning() -> None:
    fields = build({"email": "a@acme.com", "shoe_size": "44"})
    assert "44" not in repr(fields.to_dict())
    assert fields.warnings[0].name == "shoe_size"


def test_control_characters_and_overlong_values_are_cleaned() -> None:
    fields = build({"email": "a@acme.com", "company": "Ac\x00me\u200b Corp" + "x" * 500})
    assert fields.contact.company is not None
    assert fields.contact.company.startswith("Acme Corp") and len(fields.contact.company) == 200


def test_line_breaks_in_single_line_fields_become_spaces() -> None:
    fields = build(
        {"email": "a@acme.com", "answers.need": "Leads wait.\nFor days.", "message": "a\nb"}
    )
    assert fields.answers["need"] == "Leads wait. For days."
    assert fields.message == "a\nb"  # multi-line text keeps its lines


def test_typeform_payload_end_to_end() -> None:
    payload = {
        "event_type": "form_response",
        "form_response": {
            "token": "tok",
            "hidden": {"utm_source": "google"},
            "answers": [
                {"type": "email", "email": "Max@Beispiel.DE",
                 "field": {"id": "1", "type": "email", "ref": "email"}},
                {"type": "choice", "choice": {"label": "Head of IT"},
                 "field": {"id": "2", "type": "multiple_choice", "ref": "role"}},
                {"type": "boolean", "boolean": False,
                 "field": {"id": "3", "type": "yes_no", "ref": "optin"}},
            ],
        },
    }  # fmt: skip
    raw = map_payload(
        payload,
        {
            "email": "ref:email",
            "title": "ref:role",
            "utm_source": "form_response.hidden.utm_source",
        },
        consent_field="ref:optin",
        consent_wording="Yes, send me news.",
    )
    fields = build_lead_fields(raw)
    assert fields.contact.email == "max@beispiel.de"
    assert fields.contact.seniority == "director"
    assert fields.consent.marketing_opt_in is False
    assert dict(fields.utm) == {"utm_source": "google"}


def test_to_dict_validates_as_shared_lead_event() -> None:
    """The API layer builds the event as Lead(lead_id=..., ..., **fields.to_dict())."""
    from shared.events import Lead

    fields = build(
        {"email": "jane@acme.com", "title": "CTO", "pages_viewed": "/pricing",
         "consent_at": "2026-11-27T10:00:00Z", "answers.budget": "50k"},
        consent="on",
        wording="I agree.",
    )  # fmt: skip
    lead = Lead(
        lead_id="0b7d3e8e-8f5c-4f4e-9d59-3b1c2f6a7e10",
        received_at=datetime(2026, 11, 27, 10, 0, 1, tzinfo=UTC),
        source="website-demo",
        channel="form",
        **fields.to_dict(),
    )
    assert lead.contact.seniority == "c_level" and lead.consent.marketing_opt_in is True
    assert lead.engagement.pages_viewed == ["/pricing"] and lead.answers == {"budget": "50k"}
