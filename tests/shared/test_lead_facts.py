"""shared.lead_facts beyond what intake's own tests cover: one domain form for e-mail and
website (IDNA 2008), so the company domain of a contact does not depend on where it came from."""

from __future__ import annotations

import pytest

from shared.lead_facts import derive_contact, normalise_email, website_domain


@pytest.mark.parametrize(
    ("email", "website"),
    [
        ("anna@Straße.de", "https://www.Straße.de/kontakt"),
        ("nikos@ελληνικός.gr", "ελληνικός.gr"),
        ("jorg@xn--bcher-kva.de", "https://bücher.de"),
    ],
)
def test_website_and_email_give_one_domain(email: str, website: str) -> None:
    assert website_domain(website) == normalise_email(email).domain


def test_a_free_mail_contacts_company_domain_from_an_idn_website() -> None:
    derived = derive_contact(email="anna@gmail.com", website="https://www.straße.de")
    assert derived.contact.company_domain == "xn--strae-oqa.de"
    assert derived.usable and derived.warnings == ()


@pytest.mark.parametrize(
    "website", ["http://☃.com", "http://[::1]/", "localhost", "http://a_b.com"]
)
def test_hosts_idna_2008_refuses_are_no_company_domain(website: str) -> None:
    assert website_domain(website) is None
