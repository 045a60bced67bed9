"""The preview derives a contact's facts exactly as intake does (unit: no servers)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.domain.errors import NoUsableContact as IntakeNoUsableContact
from services.intake.domain.lead import build_lead_fields
from services.intake.domain.mapping import RawLead
from services.router.views import NoUsableContact, derive_facts
from shared.events import Contact, Lead

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
FIELDS = ("email", "phone", "first_name", "last_name", "title", "company", "country")


def _lead(contact: Mapping[str, str | None]) -> Lead:
    return Lead(
        lead_id="00000000-0000-4000-8000-000000000001",
        source="preview",
        channel="form",
        received_at=NOW,
        contact=Contact(**contact),
    )


def test_a_contact_as_typed_gets_intakes_facts() -> None:
    lead, warnings = derive_facts(
        _lead(
            {
                "email": " Max.Weber@EU.Acme.com ",
                "phone": "030 1234567",
                "country": "Germany",
                "first_name": "MAX",
                "title": "VP  Sales",
                "seniority": "ic",  # a sender's claim: derived afresh from the title
                "email_kind": "free",
            }
        ),
        website=None,
    )
    c = lead.contact
    assert (c.email, c.email_kind, c.company_domain) == (
        "max.weber@eu.acme.com",
        "business",
        "eu.acme.com",
    )
    assert (c.seniority, c.country, c.phone, c.first_name) == ("vp", "DE", "+49301234567", "Max")
    assert warnings == []


def test_free_mail_takes_the_website_and_bad_values_are_dropped_with_a_warning() -> None:
    lead, warnings = derive_facts(
        _lead({"email": "x@gmail.com", "phone": "12", "country": "Atlantis"}),
        website="https://www.Globex.com/about",
    )
    assert (lead.contact.email_kind, lead.contact.company_domain) == ("free", "globex.com")
    assert lead.contact.phone is None and lead.contact.country is None
    assert [w["name"] for w in warnings] == ["contact.country", "contact.phone"]


def test_nobody_to_call_is_a_422_naming_both_fields() -> None:
    with pytest.raises(NoUsableContact) as caught:
        derive_facts(_lead({"email": "not-an-address", "phone": " "}), website=None)
    assert caught.value.status == 422
    assert caught.value.fields == [
        {"name": "contact.email", "message": "email is invalid"},
        {"name": "contact.phone", "message": "phone is missing"},
    ]


_text = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "Anna@Straße.de", "A.B+x@GMail.com", "x@eu.acme.com", "bad@", "030 1234567",
            "+44 20 7946 0958", "DE", "Germany", "uk", "VP Sales", "Head of IT", "student",
            "ANNA", "van der berg", "  ", "https://www.acme.co.uk", "acme.com",
        ]
    ),
    st.text(max_size=30),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({name: _text for name in (*FIELDS, "website", "company_domain")}))
def test_preview_facts_equal_intakes_for_any_contact(values: dict[str, str | None]) -> None:
    """One rule: whatever a form sends, the preview's contact is intake's contact."""
    sent = {k: v for k, v in values.items() if v is not None and "\x00" not in v}
    raw: dict[str, object] = dict(sent)
    try:
        intake = build_lead_fields(RawLead(values=raw)).contact
    except IntakeNoUsableContact:
        intake = None
    contact = {k: v for k, v in sent.items() if k in (*FIELDS, "company_domain")}
    try:
        lead, _ = derive_facts(_lead(contact), website=sent.get("website"))
    except NoUsableContact:
        assert intake is None
        return
    assert intake is not None
    assert lead.contact.model_dump() == Contact(**vars_of(intake)).model_dump()


def vars_of(contact: object) -> dict[str, object]:
    return {name: getattr(contact, name) for name in Contact.model_fields}
