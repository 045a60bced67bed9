"""One canonical form of an e-mail address and a domain, for every place that compares them.

Why: intake stores a lead's address with its domain in IDNA 2008 (UTS 46, non-transitional)
ASCII form, while erasure used Python's IDNA 2003 codec, so `Anna@Straße.de` was stored as
`anna@xn--strae-oqa.de` and looked up as `anna@strasse.de`: never erased. Every comparison of
addresses and domains goes through these functions instead.

Two forms of an address:
- `canonical_email`: what is stored and shown (lower case, NFC, ASCII domain). Exact.
- `matching_email`: the key that says "same mailbox" (also without a `+tag` sub-address and,
  at Gmail, without dots, `googlemail.com` read as `gmail.com`). Never stored as the address.

Also here: which domains are free-mail or throwaway providers (`email_kind`), and the
registrable domain of a host (`registrable_domain`, from tldextract's bundled public-suffix
snapshot: no network access at run time). Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import TYPE_CHECKING, Literal

import idna

if TYPE_CHECKING:
    import tldextract

EmailKind = Literal["business", "free", "disposable"]

MAX_DOMAIN_INPUT = 1024  # idna's work grows with label length; longer input is not a domain
_DOMAIN_MAX = 253
_LDH = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class InvalidAddress(ValueError):
    """Not an e-mail address or domain; the message never contains the value."""


# --- domains -----------------------------------------------------------------------------------


def canonical_domain(domain: str) -> str:
    """A domain in IDNA 2008 / UTS 46 ASCII form: trimmed, lower-case, no trailing dot.

    `Straße.de` -> `xn--strae-oqa.de` (IDNA 2003 would say `strasse.de`, another domain),
    `xn--strae-oqa.de` stays as it is, `ΣΟΦΟΣ.gr`-style upper case folds per UTS 46.
    Raises InvalidAddress for anything that is not a host name.
    """
    text = domain.strip().rstrip(".")
    if not text or len(text) > MAX_DOMAIN_INPUT:
        raise InvalidAddress("not a domain")
    try:
        mapped = idna.uts46_remap(text, std3_rules=False, transitional=False)
        labels = mapped.split(".")
        if mapped.isascii():
            for label in labels:
                if label.startswith("xn--"):
                    idna.ulabel(label)  # a Punycode label must decode to a valid U-label
        else:
            labels = [idna.alabel(label).decode("ascii") for label in labels]
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise InvalidAddress("not a domain") from exc
    out = ".".join(labels).lower()
    if len(out) > _DOMAIN_MAX or not all(_LDH.match(label) for label in labels):
        raise InvalidAddress("not a domain")
    return out


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # suffix_list_urls=() and no cache dir: the snapshot bundled with the package, never
    # a download at run time, never a file written. Imported on first use (it pulls in
    # requests), so a service that never asks pays nothing at start-up.
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@functools.lru_cache(maxsize=65_536)  # ~9 µs a lookup uncached; a router asks per decision
def registrable_domain(domain: str) -> str | None:
    """The domain a company registered, under its public suffix: `eu.acme.com` -> `acme.com`,
    `shop.acme.co.uk` -> `acme.co.uk`; None for a bare suffix (`co.uk`), an IP or a host
    without a known suffix. Input is canonical (`canonical_domain`) or is made so."""
    try:
        host = canonical_domain(domain)
    except InvalidAddress:
        return None
    found = _extractor()(host).top_domain_under_public_suffix
    return found or None


# --- mail providers ----------------------------------------------------------------------------

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "live.com", "msn.com", "icloud.com",
        "me.com", "mac.com", "aol.com", "web.de", "t-online.de", "freenet.de", "posteo.de",
        "mailbox.org", "proton.me", "protonmail.com", "protonmail.ch", "pm.me", "tutanota.com",
        "tuta.io", "zoho.com", "zohomail.com", "mail.com", "email.com", "mail.ru", "inbox.ru",
        "list.ru", "bk.ru", "rambler.ru", "qq.com", "163.com", "126.com", "yeah.net", "sina.com",
        "sohu.com", "naver.com", "daum.net", "hanmail.net", "rediffmail.com", "orange.fr",
        "wanadoo.fr", "free.fr", "sfr.fr", "laposte.net", "libero.it", "virgilio.it",
        "alice.it", "tiscali.it", "seznam.cz", "wp.pl", "o2.pl", "onet.pl", "interia.pl",
        "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "bellsouth.net", "cox.net",
        "btinternet.com", "sky.com", "virginmedia.com", "ntlworld.com", "bigpond.com",
        "shaw.ca", "rogers.com", "sympatico.ca", "hey.com", "fastmail.com", "fastmail.fm",
        "hushmail.com", "ukr.net", "abv.bg", "gmx.com", "gmx.net", "ymail.com", "rocketmail.com",
    }
)  # fmt: skip

# Brands that match under any country TLD (`yahoo.co.uk`, `gmx.at`).
FREE_MAIL_BRANDS: frozenset[str] = frozenset(
    {"yahoo", "hotmail", "gmx", "yandex", "outlook", "live", "windowslive", "aim"}
)

DISPOSABLE_DOMAINS: frozenset[str] = frozenset(
    {
        "mailinator.com", "mailinator.net", "mailinator2.com", "10minutemail.com",
        "10minutemail.net", "20minutemail.com", "tempmail.com", "tempmail.net", "temp-mail.org",
        "temp-mail.io", "tempmailo.com", "tempmail.plus", "tempr.email", "yopmail.com",
        "yopmail.fr", "yopmail.net", "trashmail.com", "trashmail.de", "trashmail.net",
        "trashmail.me", "trash-mail.com", "sharklasers.com", "grr.la", "guerrillamailblock.com",
        "pokemail.net", "spam4.me", "dispostable.com", "maildrop.cc", "mailnesia.com",
        "mintemail.com", "mohmal.com", "getnada.com", "nada.email", "throwawaymail.com",
        "fakeinbox.com", "emailondeck.com", "mailcatch.com", "mytemp.email", "moakt.com",
        "spamgourmet.com", "mailpoof.com", "burnermail.io", "discard.email", "tempinbox.com",
        "33mail.com", "inboxkitten.com", "emailfake.com", "fakemail.net", "mvrht.com",
        "dropmail.me", "spambox.us", "wegwerfmail.de", "wegwerfmail.net", "einrot.com",
        "mailforspam.com", "jetable.org", "tempail.com", "minuteinbox.com", "luxusmail.org",
    }
)  # fmt: skip

DISPOSABLE_BRANDS: frozenset[str] = frozenset(
    {"guerrillamail", "trashmail", "tempmail", "temp-mail", "mailinator", "yopmail"}
)

_COUNTRY_TLD = re.compile(r"^(?:(?:co|com|net|org)\.)?[a-z]{2,3}$")
# Providers that deliver `first.last` and `firstlast` to one mailbox.
_DOTLESS = frozenset({"gmail.com", "googlemail.com"})


def _brand_match(domain: str, brands: frozenset[str]) -> bool:
    label, _, rest = domain.partition(".")
    return label in brands and bool(_COUNTRY_TLD.match(rest))


def email_kind(domain: str) -> EmailKind:
    """Classify an ASCII e-mail domain; sub-domains of throwaway services count as throwaway.

    A free-mail or throwaway address says nothing about the lead's company, so it must never
    be used as the company domain or matched to an account.
    """
    domain = domain.lower()
    labels = domain.split(".")
    suffixes = (".".join(labels[i:]) for i in range(len(labels)))  # the domain and its parents
    if _brand_match(domain, DISPOSABLE_BRANDS) or any(s in DISPOSABLE_DOMAINS for s in suffixes):
        return "disposable"
    if domain in FREE_MAIL_DOMAINS or _brand_match(domain, FREE_MAIL_BRANDS):
        return "free"
    return "business"


# --- addresses ---------------------------------------------------------------------------------


def canonical_email(address: str) -> str:
    """`local@domain` as stored: trimmed, local part lower-case NFC, domain canonical.

    Checks the shape only (one local part, one domain); syntax validation is intake's
    (email-validator), this is the comparison form. Raises InvalidAddress.
    """
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        raise InvalidAddress("not an e-mail address")
    return f"{unicodedata.normalize('NFC', local.lower())}@{canonical_domain(domain)}"


def matching_email(address: str) -> str:
    """The key for "same mailbox": canonical, without a `+tag` sub-address; at Gmail also
    without dots and with `googlemail.com` read as `gmail.com`. For matching only: the lead
    keeps the address the person gave."""
    local, _, domain = canonical_email(address).rpartition("@")
    base = local.split("+", 1)[0] or local  # "+tag@..." alone is not a sub-address
    if domain in _DOTLESS:
        base = base.replace(".", "") or base
        domain = "gmail.com"
    return f"{base}@{domain}"


# --- phones ------------------------------------------------------------------------------------

# International call prefixes people write instead of `+`: `00` (most of the world) and `011`
# (the North American plan). phonenumbers strips only the prefix of the region it is given,
# so `001 201 555 0123` from a US lead (whose prefix is 011) or from a lead without a country
# is not read; `+1 201 555 0123` is, under any region.
_CALL_PREFIX = re.compile(r"^\s*(?:\(?0{2}\)?|011)[\s.-]*(?=[1-9])")


def plus_form(raw: str) -> str | None:
    """A number written with an international call prefix, in `+` form (`0049 30 1234` ->
    `+49 30 1234`, `011 44 20 …` -> `+44 20 …`); None when it has none. Parse the result as
    usual: a number that then is not valid is still not one."""
    found = _CALL_PREFIX.match(raw)
    return "+" + raw[found.end() :] if found else None
