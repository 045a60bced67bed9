"""Lead facts: the flat view of a canonical lead that policy conditions are written against.

Conditions name canonical field paths (``company_size``, ``utm_source``, ``answers.budget``), so
the router flattens the nested lead once and every rule reads the same mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.policy import UTM_FIELDS

LeadFacts = Mapping[str, object]

_CONTACT_FIELDS = (
    "email", "phone", "first_name", "last_name", "title", "seniority", "company",
    "company_domain", "country", "email_kind",
)  # fmt: skip
_ENGAGEMENT_FIELDS = (
    "demo_request", "pricing_page", "pages_viewed", "content_downloaded", "chat_message",
)  # fmt: skip
_TOP_FIELDS = ("message", "company_size", "industry", "website", "source", "channel")


def _section(lead: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = lead.get(key)
    return value if isinstance(value, Mapping) else {}


def flatten_lead(lead_dict: Mapping[str, Any]) -> dict[str, object]:
    """Turn a nested canonical lead (``Lead.model_dump()``) into canonical field paths.

    Absent/None values are left out, so "missing" means the same thing for every field.
    """
    facts: dict[str, object] = {}
    contact = _section(lead_dict, "contact")
    for name in _CONTACT_FIELDS:
        facts[name] = contact.get(name)
    consent = _section(lead_dict, "consent")
    facts["consent"] = bool(consent.get("marketing_opt_in", False))
    facts["consent_wording"] = consent.get("wording")
    facts["consent_at"] = consent.get("at")
    engagement = _section(lead_dict, "engagement")
    for name in _ENGAGEMENT_FIELDS:
        facts[name] = engagement.get(name)
    for name in _TOP_FIELDS:
        facts[name] = lead_dict.get(name)
    utm = _section(lead_dict, "utm")
    for name in UTM_FIELDS:
        facts[name] = utm.get(name)
    for prefix in ("answers", "extra"):
        for key, value in _section(lead_dict, prefix).items():
            facts[f"{prefix}.{key}"] = value
    if facts.get("website") is None and "extra.website" in facts:
        facts["website"] = facts["extra.website"]
    return {key: value for key, value in facts.items() if value is not None}
