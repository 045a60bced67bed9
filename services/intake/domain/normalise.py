"""Clean single values at the door, so routing and dedupe compare like with like.

The rules themselves live in `shared.lead_facts` (the router's route preview derives the same
facts from the same code); this module is intake's face of them: `normalise_email` raises
intake's InvalidField, and form flags (`to_bool`) are read here.
"""

from __future__ import annotations

from shared.events import EmailKind, Seniority
from shared.identity import InvalidAddress, email_kind
from shared.lead_facts import (
    MAX_NAME_LENGTH,
    MAX_PHONE_INPUT,
    NormalisedEmail,
    company_domain,
    normalise_country,
    normalise_name,
    normalise_phone,
    seniority_band,
    website_domain,
)
from shared.lead_facts import normalise_email as _normalise_email

from .errors import InvalidField

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_PHONE_INPUT",
    "EmailKind",
    "NormalisedEmail",
    "Seniority",
    "company_domain",
    "email_kind",
    "normalise_country",
    "normalise_email",
    "normalise_name",
    "normalise_phone",
    "seniority_band",
    "to_bool",
    "website_domain",
]


def normalise_email(raw: str) -> NormalisedEmail:
    """Validate syntax (no DNS), lower-case it all, keep the domain in ASCII/punycode form."""
    try:
        return _normalise_email(raw)
    except InvalidAddress as exc:
        raise InvalidField("email", str(exc)) from exc


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
