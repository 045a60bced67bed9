"""The contact facts of a lead, derived once: what intake records and the route preview scores.

Why here: intake derives the seniority band, the e-mail kind and the company domain from what
a form sent, and the router's preview must score a lead on the same facts, or a preview says
65 / warm / mql with no account while intake's lead is decided 90 / hot / sql on its account.
Services never import each other, so the one rule lives in shared/: intake builds its
canonical lead with `derive_contact`, the preview re-derives the contact it is given with it.

Every function is total over strings: a clean value, None for "nothing usable", or (only
`normalise_email`) InvalidAddress — never a library exception. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from shared.events import EmailKind, Seniority
from shared.identity import (
    InvalidAddress,
    canonical_domain,
    canonical_email,
    email_kind,
    plus_form,
)

MAX_TEXT = 500
MAX_PHONE_INPUT = 64
MAX_NAME_LENGTH = 200
MAX_EMAIL = 320


# --- text ------------------------------------------------------------------------------------


def clean_text(value: object, max_len: int = MAX_TEXT, *, multiline: bool = False) -> str | None:
    """Scalar -> clean string; lists join with ', '; dicts are not text and give None."""
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, list):
        parts = [t for v in value if (t := clean_text(v, max_len)) is not None]
        return clean_text(", ".join(parts), max_len) if parts else None
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = str(value)
    if not text.isprintable():  # fast path: printable text has no control characters
        keep = "\n\t" if multiline else ""
        text = "".join(
            ch if ch in keep or unicodedata.category(ch)[0] != "C" else " " if ch.isspace() else ""
            for ch in text
        )  # control characters go; line breaks in single-line fields become spaces
    text = text.strip() if multiline else " ".join(text.split())
    return text[:max_len] or None


# --- email -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NormalisedEmail:
    email: str
    domain: str  # ASCII (punycode) form, lower case
    kind: EmailKind


def normalise_email(raw: str) -> NormalisedEmail:
    """Validate syntax (no DNS), then the canonical form (shared.identity.canonical_email).

    Punycode keeps `bücher.de` and `xn--bcher-kva.de` the same lead and the same account.
    """
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
        email = canonical_email(f"{result.local_part}@{result.ascii_domain}")
    except (EmailNotValidError, InvalidAddress) as exc:
        raise InvalidAddress("not a valid e-mail address") from exc
    domain = email.rpartition("@")[2]
    return NormalisedEmail(email=email, domain=domain, kind=email_kind(domain))


# --- phone -----------------------------------------------------------------------------------


def normalise_phone(raw: str, country: str | None) -> str | None:
    """E.164, reading local numbers in the lead's country; None when not a valid number.

    A number phonenumbers cannot read with the lead's country is read once more in `+` form
    when it starts with an international call prefix (`shared.identity.plus_form`): `001 …`
    from a US lead (whose own prefix is 011) or `0049 …` without a country."""
    text = raw.strip()
    if not text or len(text) > MAX_PHONE_INPUT:
        return None
    region = country.upper() if country and country.upper() in _ALPHA2 else None
    for spelling in (text, plus_form(text)):
        if spelling is None:
            continue
        try:
            number = phonenumbers.parse(spelling, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return e164
    return None


# --- names -----------------------------------------------------------------------------------

_PARTICLES = frozenset(
    {"van", "der", "den", "de", "del", "della", "di", "da", "dos", "das", "du", "la", "le",
     "von", "zu", "ter", "ten", "bin", "binti", "al", "el", "y"}
)  # fmt: skip


def _upper1(ch: str) -> str:
    """Upper-case one character unless its length changes ('ß' -> 'SS' would not round-trip)."""
    upper = ch.upper()
    return upper if len(upper) == 1 else ch


def _cap(part: str) -> str:
    if not part:
        return part
    if part.startswith("mc") and len(part) > 2:
        return "Mc" + _upper1(part[2]) + part[3:]
    return _upper1(part[0]) + part[1:]


def _title_word(word: str, first: bool) -> str:
    if not first and word in _PARTICLES:
        return word
    hyphenated = []
    for chunk in word.split("-"):
        pieces = chunk.split("'")
        # O'Neil, D'Angelo: capitalise after the apostrophe only for a one-letter prefix
        if len(pieces) == 2 and len(pieces[0]) == 1:
            hyphenated.append(_cap(pieces[0]) + "'" + _cap(pieces[1]))
        else:
            hyphenated.append("'".join([_cap(pieces[0]), *pieces[1:]]))
    return "-".join(hyphenated)


def normalise_name(raw: str) -> str | None:
    """Trim, collapse spaces, and fix the case only of ALL-CAPS or all-lower input.

    Mixed case is the person's own spelling (McDonald, van der Berg, DeShawn) and is kept.
    """
    cleaned = "".join(ch for ch in raw if unicodedata.category(ch)[0] != "C")
    text = unicodedata.normalize("NFC", " ".join(cleaned.split()))[:MAX_NAME_LENGTH].strip()
    if not text:
        return None
    lower = text.lower()
    if text not in (lower, text.upper()) or lower == text.upper():
        return text  # mixed case, or nothing to case (digits, CJK)
    if len(lower) != len(text) or unicodedata.normalize("NFC", lower) != lower:
        return text  # lower-casing would change length/composition: leave it alone
    return " ".join(_title_word(w, i == 0) for i, w in enumerate(lower.split(" ")))


# --- job title -------------------------------------------------------------------------------

_C_LEVEL = re.compile(
    r"\b(ceo|cto|cfo|coo|cmo|cio|ciso|cro|cpo|cdo|chief|founder|co-?founder|owner|president"
    r"|managing director|gesch[aä]ftsf[uü]hrer(in)?)\b"
)
_VP = re.compile(r"\b(vp|svp|evp|avp|vice[\s-]+president)\b")
_DIRECTOR = re.compile(r"\b(director|head|direktor(in)?|leiter(in)?)\b")
_MANAGER = re.compile(r"\b(manager|mgr|lead|team ?lead|supervisor|teamleiter(in)?)\b")


def seniority_band(title: str | None) -> Seniority | None:
    """Coarse band for scoring rules; 'head of' counts as director (it rarely means VP)."""
    if title is None or not title.strip():
        return None
    text = " ".join(title.lower().split())
    if _VP.search(text):
        return "vp"
    if _C_LEVEL.search(re.sub(r"product owner", "", text)):
        return "c_level"
    if _DIRECTOR.search(text):
        return "director"
    if _MANAGER.search(text):
        return "manager"
    return "ic"


# --- company domain --------------------------------------------------------------------------

_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")


def website_domain(website: str) -> str | None:
    """Host of a website field, canonical (IDNA 2008, as e-mail domains are: `Straße.de` is
    `xn--strae-oqa.de` from either), without `www.`; None if not a host."""
    text = website.strip()
    if not text:
        return None
    if "://" not in text:
        text = "http://" + text
    try:
        host = urlsplit(text).hostname
        if host is None:
            return None
        host = canonical_domain(host)
    except (ValueError, UnicodeError):  # InvalidAddress is a ValueError
        return None
    if host.startswith("www."):
        host = host[4:]
    return host if _HOST.match(host) else None


def company_domain(
    email_domain: str | None, email_kind: EmailKind | None, website: str | None
) -> str | None:
    """A business e-mail's domain names the company; otherwise fall back to the website."""
    if email_domain and email_kind == "business":
        return email_domain
    return website_domain(website) if website else None


# --- country ---------------------------------------------------------------------------------

_ALPHA2: frozenset[str] = frozenset(phonenumbers.SUPPORTED_REGIONS) | {"AQ", "BV", "HM", "PN"}
_COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB", "united kingdom": "GB", "great britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "gbr": "GB",
    "usa": "US", "united states": "US", "united states of america": "US", "america": "US",
    "germany": "DE", "deutschland": "DE", "deu": "DE", "austria": "AT", "österreich": "AT",
    "switzerland": "CH", "schweiz": "CH", "suisse": "CH", "france": "FR", "fra": "FR",
    "spain": "ES", "españa": "ES", "italy": "IT", "italia": "IT", "netherlands": "NL",
    "the netherlands": "NL", "holland": "NL", "belgium": "BE", "ireland": "IE",
    "portugal": "PT", "poland": "PL", "sweden": "SE", "norway": "NO", "denmark": "DK",
    "finland": "FI", "canada": "CA", "can": "CA", "mexico": "MX", "brazil": "BR",
    "australia": "AU", "aus": "AU", "new zealand": "NZ", "india": "IN", "ind": "IN",
    "japan": "JP", "china": "CN", "singapore": "SG", "south africa": "ZA",
    "united arab emirates": "AE", "uae": "AE", "israel": "IL", "south korea": "KR",
}  # fmt: skip


def normalise_country(raw: str) -> str | None:
    """ISO 3166 alpha-2 (upper case) from a code or a handful of common names."""
    text = " ".join(raw.strip().split())
    if len(text) == 2 and text.isascii() and text.upper() in _ALPHA2:
        return text.upper()
    return _COUNTRY_ALIASES.get(text.lower())


# --- the contact -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """A lead's contact as intake records it (the shape of `shared.events.Contact`)."""

    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    seniority: Seniority | None = None
    company: str | None = None
    company_domain: str | None = None
    country: str | None = None
    email_kind: EmailKind | None = None


@dataclass(frozen=True, slots=True)
class DerivedContact:
    contact: ContactFacts
    warnings: tuple[tuple[str, str], ...]  # (field, message) for each value dropped

    @property
    def usable(self) -> bool:
        """Somebody to call: a valid e-mail address or phone number."""
        return self.contact.email is not None or self.contact.phone is not None


def derive_contact(
    *,
    email: str | None,
    phone: str | None = None,
    country: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    title: str | None = None,
    company: str | None = None,
    website: str | None = None,
    stated_domain: str | None = None,
) -> DerivedContact:
    """Normalise a contact's cleaned values and derive its facts (e-mail kind, seniority
    band, company domain). None means "not sent"; a present value that is unusable ("" for
    a value that was not text) is dropped with a warning rather than refusing the lead: a
    valid e-mail and a mistyped phone number are still worth routing."""
    warnings: list[tuple[str, str]] = []
    norm_country = None
    if country is not None:
        norm_country = normalise_country(country)
        if norm_country is None:
            warnings.append(("country", "not a known country"))
    norm_email = None
    if email is not None:
        try:
            norm_email = normalise_email(email)
        except InvalidAddress as exc:
            warnings.append(("email", str(exc)))
    norm_phone = None
    if phone is not None:
        norm_phone = normalise_phone(phone, norm_country)
        if norm_phone is None:
            warnings.append(("phone", "not a valid phone number"))
    kind = norm_email.kind if norm_email else None
    domain = company_domain(norm_email.domain if norm_email else None, kind, website)
    if domain is None and stated_domain:
        domain = website_domain(stated_domain)
    contact = ContactFacts(
        email=norm_email.email if norm_email else None,
        phone=norm_phone,
        first_name=normalise_name(first_name or ""),
        last_name=normalise_name(last_name or ""),
        title=title,
        seniority=seniority_band(title),
        company=company,
        company_domain=domain,
        country=norm_country,
        email_kind=kind,
    )
    return DerivedContact(contact=contact, warnings=tuple(warnings))
