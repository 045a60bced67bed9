"""The canonical e-mail and domain forms (IDNA 2008 / UTS 46), the matching key, the
registrable domain from the bundled public-suffix snapshot (unit tests: the network guard
fails any of them that opens a connection)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.identity import (
    InvalidAddress,
    canonical_domain,
    canonical_email,
    email_kind,
    matching_email,
    registrable_domain,
)
from shared.lead_facts import normalise_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Straße.de", "xn--strae-oqa.de"),  # IDNA 2003 would say strasse.de: another domain
        ("STRAßE.DE", "xn--strae-oqa.de"),
        ("xn--strae-oqa.de", "xn--strae-oqa.de"),
        ("ελληνικός.gr", "xn--qxaegecap6byf.gr"),  # final sigma kept (2003 maps it to sigma)
        ("xn--qxaegecap6byf.gr", "xn--qxaegecap6byf.gr"),
        ("  Bücher.DE. ", "xn--bcher-kva.de"),
        ("ACME.com", "acme.com"),
    ],
)
def test_canonical_domain_is_idna_2008(raw: str, expected: str) -> None:
    assert canonical_domain(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", ".", "a..b", "-acme.com", "ex ample.com", "xn--zz.de", "☃.com"]
)
def test_canonical_domain_refuses_what_is_not_a_host(raw: str) -> None:
    with pytest.raises(InvalidAddress):
        canonical_domain(raw)


@pytest.mark.parametrize("raw", ["Anna@Straße.de", "anna@STRAßE.DE", "anna@xn--strae-oqa.de"])
def test_erasure_form_equals_the_form_intake_stores(raw: str) -> None:
    """What erasure looks up (canonical_email) is what intake stored (normalise_email)."""
    assert canonical_email(raw) == normalise_email(raw).email == "anna@xn--strae-oqa.de"


def test_canonical_email_keeps_the_local_part_and_checks_the_shape() -> None:
    assert canonical_email(" Jörg.Müller+News@Bücher.de ") == "jörg.müller+news@xn--bcher-kva.de"
    for bad in ("no-at-sign", "@acme.com", "anna@", "anna@a..b"):
        with pytest.raises(InvalidAddress):
            canonical_email(bad)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Anna.Schmidt+newsletter@Acme.com", "anna.schmidt@acme.com"),  # dots matter here
        ("a.n.n.a+x@GoogleMail.com", "anna@gmail.com"),
        ("ANNA@gmail.com", "anna@gmail.com"),
        ("+only@acme.com", "+only@acme.com"),  # nothing before the plus: not a sub-address
        ("anna@Straße.de", "anna@xn--strae-oqa.de"),
    ],
)
def test_matching_email(raw: str, key: str) -> None:
    assert matching_email(raw) == key


def test_free_mail_and_throwaway_providers_are_known() -> None:
    assert email_kind("gmail.com") == email_kind("yahoo.co.uk") == "free"
    assert email_kind("inbox.mailinator.com") == "disposable"
    assert email_kind("acme.com") == "business"


@pytest.mark.parametrize(
    ("host", "registrable"),
    [
        ("eu.acme.com", "acme.com"),
        ("acme.com", "acme.com"),
        ("acme.co.uk", "acme.co.uk"),
        ("shop.eu.acme.co.uk", "acme.co.uk"),
        ("Sales.Straße.de", "xn--strae-oqa.de"),
        ("co.uk", None),  # a public suffix is nobody's company
        ("localhost", None),
        ("not a host", None),
    ],
)
def test_registrable_domain_from_the_bundled_snapshot(host: str, registrable: str | None) -> None:
    """Unmarked: the network guard fails this test if tldextract fetches the suffix list."""
    assert registrable_domain(host) == registrable


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_canonical_domain_is_total_and_idempotent(raw: str) -> None:
    try:
        out = canonical_domain(raw)
    except InvalidAddress:
        return
    assert out.isascii() and out == out.lower() and canonical_domain(out) == out


def test_the_suffix_list_is_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network at run time: not even a name lookup (the network guard sees connections; a
    machine without DNS fails the lookup first, and tldextract would quietly fall back)."""
    import socket

    from shared import identity

    looked_up: list[object] = []

    def no_lookup(*args: object, **kwargs: object) -> list[object]:
        looked_up.append(args[0] if args else kwargs)
        raise OSError("no name lookups in a unit test")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    identity._extractor.cache_clear()  # a fresh extractor, as in a new process
    try:
        assert registrable_domain("eu.acme.co.uk") == "acme.co.uk"
    finally:
        identity._extractor.cache_clear()
    assert looked_up == []
