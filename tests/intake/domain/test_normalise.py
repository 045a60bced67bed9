"""Value normalisation: examples plus idempotence/totality properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.domain.errors import InvalidField
from services.intake.domain.normalise import (
    company_domain,
    email_kind,
    normalise_country,
    normalise_email,
    normalise_name,
    normalise_phone,
    seniority_band,
    to_bool,
    website_domain,
)

# --- email ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "email", "domain", "kind"),
    [
        ("  Jane.Doe@ACME.com ", "jane.doe@acme.com", "acme.com", "business"),
        ("someone@GMail.com", "someone@gmail.com", "gmail.com", "free"),
        ("x@yahoo.co.uk", "x@yahoo.co.uk", "yahoo.co.uk", "free"),
        ("x@hotmail.de", "x@hotmail.de", "hotmail.de", "free"),
        ("x@gmx.at", "x@gmx.at", "gmx.at", "free"),
        ("x@proton.me", "x@proton.me", "proton.me", "free"),
        ("x@mailinator.com", "x@mailinator.com", "mailinator.com", "disposable"),
        ("x@guerrillamail.biz", "x@guerrillamail.biz", "guerrillamail.biz", "disposable"),
        ("x@inbox.mailinator.com", "x@inbox.mailinator.com", "inbox.mailinator.com", "disposable"),
        ("Jörg@Bücher.DE", "jörg@xn--bcher-kva.de", "xn--bcher-kva.de", "business"),
        ("jörg@xn--bcher-kva.de", "jörg@xn--bcher-kva.de", "xn--bcher-kva.de", "business"),
    ],
)
def test_normalise_email(raw: str, email: str, domain: str, kind: str) -> None:
    result = normalise_email(raw)
    assert (result.email, result.domain, result.kind) == (email, domain, kind)


def test_free_brand_only_matches_country_tlds() -> None:
    assert email_kind("hotmail.mycompany.com") == "business"
    assert email_kind("yahoo.com.br") == "free"
    assert email_kind("notgmail.com") == "business"


@pytest.mark.parametrize(
    "raw", ["", "plain", "a@", "@b.com", "a@b", "a b@c.com", "Jane <j@acme.com>", "a@@b.com"]
)
def test_invalid_email_is_invalid_field_without_value(raw: str) -> None:
    with pytest.raises(InvalidField) as info:
        normalise_email(raw)
    assert info.value.field == "email" and info.value.status == 422
    if raw:
        assert raw not in str(info.value)


EMAILISH = st.one_of(
    st.emails(),
    st.builds(
        "{}@{}".format,
        st.text(alphabet="abcXYZ.ü_+-ÄİßΣ\u03c31", min_size=1, max_size=12),
        st.sampled_from(["Example.COM", "bücher.de", "xn--bcher-kva.de", "GMAIL.com", "a.b"]),
    ),
    st.text(max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(EMAILISH)
def test_email_idempotent_and_total(raw: str) -> None:
    try:
        first = normalise_email(raw)
    except InvalidField:
        return
    assert normalise_email(first.email) == first
    assert first.email == first.email.lower()
    assert first.domain.isascii()


# --- phone ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("030 1234567", "DE", "+49301234567"),
        ("+49 30 1234567", None, "+49301234567"),
        ("0049 30 1234567", "DE", "+49301234567"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("(415) 555-2671", "us", "+14155552671"),
        ("(415) 555-2671", None, None),  # local number without a country is ambiguous
        ("+1 415 555 2671 ext. 12", None, "+14155552671"),
        ("12", "DE", None),
        ("not a number", "DE", None),
        ("", "DE", None),
        ("030 1234567", "ZZ", None),  # unknown country is ignored, number stays local
    ],
)
def test_normalise_phone(raw: str, country: str | None, expected: str | None) -> None:
    assert normalise_phone(raw, country) == expected


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.text(alphabet="+0123456789 ()-.", max_size=20),
        st.from_regex(r"\+[1-9][0-9]{6,13}", fullmatch=True),
    ),
    st.sampled_from([None, "DE", "US", "GB", "FR", "xx"]),
)
def test_phone_idempotent_and_total(raw: str, country: str | None) -> None:
    first = normalise_phone(raw, country)
    if first is not None:
        assert first.startswith("+") and first[1:].isdigit()
        assert normalise_phone(first, country) == first
        assert normalise_phone(first, None) == first


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  jane   doe ", "Jane Doe"),
        ("JANE", "Jane"),
        ("McDonald", "McDonald"),
        ("mcdonald", "McDonald"),
        ("van der berg", "Van der Berg"),
        ("Anna van der Berg", "Anna van der Berg"),
        ("o'neil", "O'Neil"),
        ("O'NEIL", "O'Neil"),
        ("anne-marie", "Anne-Marie"),
        ("DeShawn", "DeShawn"),
        ("李小龙", "李小龙"),
        ("jürgen müller", "Jürgen Müller"),
        ("   ", None),
        ("\x00\t", None),
    ],
)
def test_normalise_name(raw: str, expected: str | None) -> None:
    assert normalise_name(raw) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_name_idempotent_and_total(raw: str) -> None:
    first = normalise_name(raw)
    if first is not None:
        assert normalise_name(first) == first
        assert first == first.strip() and "  " not in first


# --- title, domain, country, booleans -------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "band"),
    [
        ("CEO", "c_level"),
        ("Co-Founder & CTO", "c_level"),
        ("Chief Revenue Officer", "c_level"),
        ("Owner", "c_level"),
        ("President", "c_level"),
        ("Geschäftsführer", "c_level"),
        ("Vice President, Sales", "vp"),
        ("SVP Marketing", "vp"),
        ("VP of Engineering", "vp"),
        ("Head of Sales", "director"),
        ("Sales Director EMEA", "director"),
        ("Marketing Manager", "manager"),
        ("Team Lead Support", "manager"),
        ("Product Owner", "ic"),
        ("Software Engineer", "ic"),
        ("Account Executive", "ic"),
        ("", None),
        (None, None),
    ],
)
def test_seniority_band(title: str | None, band: str | None) -> None:
    assert seniority_band(title) == band


@pytest.mark.parametrize(
    ("website", "expected"),
    [
        ("https://www.Acme.com/about?x=1", "acme.com"),
        ("acme.com", "acme.com"),
        ("www.acme.co.uk/", "acme.co.uk"),
        ("http://shop.acme.com:8080", "shop.acme.com"),
        ("https://bücher.de", "xn--bcher-kva.de"),
        ("not a website", None),
        ("localhost", None),
        ("", None),
        ("http://[::1]/", None),
    ],
)
def test_website_domain(website: str, expected: str | None) -> None:
    assert website_domain(website) == expected


def test_company_domain_prefers_business_email() -> None:
    assert company_domain("acme.com", "business", "https://other.com") == "acme.com"
    assert company_domain("gmail.com", "free", "https://www.acme.com") == "acme.com"
    assert company_domain("mailinator.com", "disposable", None) is None
    assert company_domain(None, None, "acme.io") == "acme.io"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_website_domain_total(raw: str) -> None:
    result = website_domain(raw)
    if result is not None:
        assert result == result.lower() and result.isascii() and not result.startswith("www.")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("de", "DE"),
        (" DE ", "DE"),
        ("Germany", "DE"),
        ("United States", "US"),
        ("USA", "US"),
        ("uk", "GB"),
        ("United  Kingdom", "GB"),
        ("GB", "GB"),
        ("Narnia", None),
        ("XX", None),
        ("", None),
    ],
)
def test_normalise_country(raw: str, expected: str | None) -> None:
    assert normalise_country(raw) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("on", True), ("yes", True), ("TRUE", True), ("1", True), (True, True), (1, True),
        (["", "on"], True), ("off", False), ("no", False), ("", False), ("0", False),
        (0, False), (None, False), ({"a": 1}, False), ("false", False),
    ],
)  # fmt: skip
def test_to_bool(value: object, expected: bool) -> None:
    assert to_bool(value) is expected


@given(st.one_of(st.text(max_size=20), st.text(alphabet="abcdefgDEUSGBRZ ", max_size=4)))
def test_country_idempotent_and_total(raw: str) -> None:
    result = normalise_country(raw)
    if result is not None:
        assert len(result) == 2 and result.isupper()
        assert normalise_country(result) == result
