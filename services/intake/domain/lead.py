"""Build the canonical lead fields from mapped raw values.

Everything except identity and provenance (lead_id, received_at, source, channel), which the
API layer adds. Bad optional fields are dropped with a warning rather than refusing the lead:
a lead with a valid e-mail and a mistyped phone number is still worth routing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.lead_facts import ContactFacts, clean_text, derive_contact
from shared.policy import CANONICAL_FIELDS, UTM_FIELDS

from .errors import NoUsableContact
from .mapping import RawLead
from .normalise import to_bool

_T = TypeVar("_T")
MAX_TEXT = 500
MAX_MESSAGE = 10_000
MAX_COMPANY_SIZE = 10_000_000


@dataclass(frozen=True, slots=True)
class FieldWarning:
    name: str
    message: str


ContactFields = ContactFacts  # the contact's shape, derived by shared.lead_facts


@dataclass(frozen=True, slots=True)
class ConsentFields:
    marketing_opt_in: bool = False
    at: datetime | None = None
    wording: str | None = None


@dataclass(frozen=True, slots=True)
class EngagementFields:
    demo_request: bool = False
    pricing_page: bool = False
    pages_viewed: tuple[str, ...] = ()
    content_downloaded: tuple[str, ...] = ()
    chat_message: bool = False


@dataclass(frozen=True, slots=True)
class CanonicalFields:
    contact: ContactFields
    consent: ConsentFields = field(default_factory=ConsentFields)
    message: str | None = None
    utm: Mapping[str, str] = field(default_factory=dict)
    engagement: EngagementFields = field(default_factory=EngagementFields)
    company_size: int | None = None
    industry: str | None = None
    answers: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[FieldWarning, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The shape of `shared.events.Lead` minus identity/provenance, without warnings.

        The parts hold scalars and tuples only, so a shallow copy per part is all it takes
        (`dataclasses.asdict` deep-copies every value: a fifth of the per-webhook work).
        """
        engagement = _shallow(self.engagement)
        engagement["pages_viewed"] = list(self.engagement.pages_viewed)
        engagement["content_downloaded"] = list(self.engagement.content_downloaded)
        return {
            "contact": _shallow(self.contact),
            "consent": _shallow(self.consent),
            "message": self.message,
            "utm": dict(self.utm),
            "engagement": engagement,
            "company_size": self.company_size,
            "industry": self.industry,
            "answers": dict(self.answers),
            "extra": dict(self.extra),
        }


def _shallow(part: ContactFields | ConsentFields | EngagementFields) -> dict[str, Any]:
    return {name: getattr(part, name) for name in _FIELD_NAMES[type(part)]}


_FIELD_NAMES = {
    cls: tuple(f.name for f in fields(cls))
    for cls in (ContactFields, ConsentFields, EngagementFields)
}


# --- value coercion -------------------------------------------------------------------------


_text = clean_text


def _text_list(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        text = _text(item, multiline=True)
        if text:
            out.extend(p for part in re.split(r"[,\n]", text) if (p := part.strip()))
    return tuple(dict.fromkeys(out))  # de-duplicated, order kept


def _company_size(value: object) -> int | None:
    """Head count; a range like '51-200' or '1,000+' gives its lower bound (what is certain)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        size = int(value)
    else:
        text = _text(value)
        digits = re.findall(r"\d+", text.replace(",", "").replace(".", "")) if text else []
        if not digits:
            return None
        size = int(digits[0][:9])
    return size if 0 <= size <= MAX_COMPANY_SIZE else None


def _timestamp(value: object) -> datetime | None:
    """ISO 8601 or epoch (seconds, or milliseconds as HubSpot sends); naive means UTC."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 100_000_000_000 else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        text = _text(value)
        if text is None:
            return None
        if text.isdigit():
            return _timestamp(int(text))
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# --- building -------------------------------------------------------------------------------


class _Warnings:
    def __init__(self) -> None:
        self.items: list[FieldWarning] = []

    def add(self, name: str, message: str) -> None:
        self.items.append(FieldWarning(name, message))


def _first(value: object) -> object:
    """Contact fields are single-valued; a repeated form key yields its first value."""
    return value[0] if isinstance(value, list) and value else value


def _optional(
    values: Mapping[str, object],
    name: str,
    warn: _Warnings,
    convert: Callable[[object], _T | None],
    message: str,
) -> _T | None:
    """Apply `convert` to a present value; drop it with a warning when it is unusable."""
    raw = values.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    result = convert(raw)
    if result is None:
        warn.add(name, message)
    return result


def _present(values: Mapping[str, object], name: str, max_len: int = MAX_TEXT) -> str | None:
    """A sent value as text for `derive_contact`: None when absent or blank, "" when it was
    sent but is not text (so it is dropped with a warning, not silently)."""
    raw = values.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return _text(_first(raw), max_len) or ""


def _contact(values: Mapping[str, object], warn: _Warnings) -> ContactFields:
    derived = derive_contact(
        email=_text(_first(values.get("email")), 320),
        phone=_present(values, "phone", 64),
        country=_present(values, "country"),
        first_name=_text(_first(values.get("first_name"))),
        last_name=_text(_first(values.get("last_name"))),
        title=_text(_first(values.get("title")), 200),
        company=_text(_first(values.get("company")), 200),
        website=_text(_first(values.get("website"))),
        stated_domain=_text(_first(values.get("company_domain"))),
    )
    for name, message in derived.warnings:
        warn.add(name, message)
    if not derived.usable:
        invalid = {w.name for w in warn.items}
        raise NoUsableContact(
            "the lead has neither a valid e-mail address nor a valid phone number",
            fields=[
                {"name": n, "message": f"{n} is {'invalid' if n in invalid else 'missing'}"}
                for n in ("email", "phone")
            ],
        )
    return derived.contact


def _consent(raw: RawLead, warn: _Warnings) -> ConsentFields:
    """No consent field, or a falsy one, means no marketing consent: never assumed."""
    opt_in = raw.consent is not None and to_bool(raw.consent)
    at = _optional(raw.values, "consent_at", warn, _timestamp, "not a valid timestamp")
    wording = raw.consent_wording or _text(raw.values.get("consent_wording"), 2000)
    return ConsentFields(marketing_opt_in=opt_in, at=at if opt_in else None, wording=wording)


def _prefixed(values: Mapping[str, object], prefix: str) -> dict[str, str]:
    return {
        key[len(prefix) :]: text
        for key, value in values.items()
        if key.startswith(prefix) and (text := _text(value, 1000)) is not None
    }


def build_lead_fields(raw: RawLead) -> CanonicalFields:
    """Normalise mapped values into canonical lead fields; NoUsableContact if nobody to call."""
    values = raw.values
    warn = _Warnings()
    for name in values:
        if name not in CANONICAL_FIELDS and not name.startswith(("answers.", "extra.")):
            warn.add(name, "not a canonical field; ignored")
    contact = _contact(values, warn)
    engagement = EngagementFields(
        demo_request=to_bool(values.get("demo_request")),
        pricing_page=to_bool(values.get("pricing_page")),
        pages_viewed=_text_list(values.get("pages_viewed")),
        content_downloaded=_text_list(values.get("content_downloaded")),
        chat_message=to_bool(values.get("chat_message")),
    )
    utm = {k: t for k in UTM_FIELDS if (t := _text(_first(values.get(k)))) is not None}
    return CanonicalFields(
        contact=contact,
        consent=_consent(raw, warn),
        message=_text(values.get("message"), MAX_MESSAGE, multiline=True),
        utm=utm,
        engagement=engagement,
        company_size=_optional(values, "company_size", warn, _company_size, "not a head count"),
        industry=_text(_first(values.get("industry")), 200),
        answers=_prefixed(values, "answers."),
        extra=_prefixed(values, "extra."),
        warnings=tuple(warn.items),
    )
