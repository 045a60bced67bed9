"""Clean single values at the door, so routing and dedupe compare like with like.

Every function is total over strings: it returns a clean value, None for "nothing usable",
or raises InvalidField (email only) — never a library exception.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from .errors import InvalidField
from .maildomains import (
    DISPOSABLE_BRANDS,
    DISPOSABLE_DOMAINS,
    FREE_MAIL_BRANDS,
    FREE_MAIL_DOMAINS,
)

EmailKind = Literal["business", "free", "disposable"]
Seniority = Literal["c_level", "vp", "director", "manager", "ic"]

MAX_PHONE_INPUT = 64
MAX_NAME_LENGTH = 200
_COUNTRY_TLD = re.compile(r"^(?:(?:co|com|net|org)\.)?[a-z]{2,3}$")


@dataclass(frozen=True, slots=True)
class NormalisedEmail:
    email: str
    domain: str  # ASCII (punycode) form, lower case
    kind: EmailKind


# --- email ----------------------------------------------------------------------------------


def _brand_match(domain: str, brands: frozenset[str]) -> bool:
    label, _, rest = domain.partition(".")
    return label in brands and bool(_COUNTRY_TLD.match(rest))


def email_kind(domain: str) -> EmailKind:
    """Classify an ASCII e-mail domain; sub-domains of throwaway services count as throwaway."""
    domain = domain.lower()
    labels = domain.split(".")
    suffixes = (".".join(labels[i:]) for i in range(len(labels)))  # the domain and its parents
    if _brand_match(domain, DISPOSABLE_BRANDS) or any(s in DISPOSABLE_DOMAINS for s in suffixes):
        return "disposable"
    if domain in FREE_MAIL_DOMAINS or _brand_match(domain, FREE_MAIL_BRANDS):
        return "free"
    return "business"


def normalise_email(raw: str) -> NormalisedEmail:
    """Validate syntax (no DNS), lower-case it all, keep the domain in ASCII/punycode form.

    Punycode keeps `bücher.de` and `xn--bcher-kva.de` the same lead and the same account.
    """
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidField("email", "not a valid e-mail address") from exc
    domain = result.ascii_domain.lower()
    local = unicodedata.normalize("NFC", result.local_part.lower())
    email = f"{local}@{domain}"
    return NormalisedEmail(email=email, domain=domain, kind=email_kind(domain))


# --- phone ----------------------------------------------------------------------------------


def normalise_phone(raw: str, country: str | None) -> str | None:
    """E.164, reading local numbers in the lead's country; None when not a valid number."""
    text = raw.strip()
    if not text or len(text) > MAX_PHONE_INPUT:
        return None
    region = country.upper() if country and country.upper() in _ALPHA2 else None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164


# --- names ----------------------------------------------------------------------------------

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


# --- job title ------------------------------------------------------------------------------

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


# --- company domain -------------------------------------------------------------------------

_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")


def website_domain(website: str) -> str | None:
    """Host of a website field, lower-case, punycode, without `www.`; None if not a host."""
    text = website.strip()
    if not text:
        return None
    if "://" not in text:
        text = "http://" + text
    try:
        host = urlsplit(text).hostname
        if host is None:
            return None
        host = host.rstrip(".").encode("idna").decode("ascii").lower()
    except (ValueError, UnicodeError):
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


# --- country & booleans ---------------------------------------------------------------------

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


_TRUE = frozenset({"on", "yes", "y", "true", "t", "1", "checked", "ja", "oui", "si", "sí"})


def to_bool(value: object) -> bool:
    """Form flags arrive as 'on', 'yes', 'true', '1', true, 1 or a list from a checkbox group."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    if isinstance(value, list):
        return any(to_bool(v) for v in value)
    return False
