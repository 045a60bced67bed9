"""Pick the mapped fields out of a vendor payload (and nothing else: data minimisation).

Locations in the policy's `fields` mapping:
- dot paths `a.b.c`, with list indexes `a.0.b` (a top-level key containing dots also matches);
- `ref:<ref>`: a Typeform `form_response.answers[]` item found by `field.ref`, not by position,
  so reordering questions in Typeform does not remap data;
- `hs:<name>`: a HubSpot forms `fields[]` item `{name, value}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.payload_paths import dot_path, lookup

TYPEFORM_PREFIX = "ref:"
HUBSPOT_PREFIX = "hs:"


@dataclass(frozen=True, slots=True)
class RawLead:
    """Mapped but not yet normalised values, keyed by canonical path (`email`, `answers.budget`)."""

    values: Mapping[str, object] = field(default_factory=dict)
    consent: object | None = None
    consent_wording: str | None = None


def extract(payload: Mapping[str, Any], location: str) -> object | None:
    """Value at `location`, or None when absent (absence is never an error here)."""
    if location.startswith(TYPEFORM_PREFIX):
        return _typeform_answer(payload, location[len(TYPEFORM_PREFIX) :])
    if location.startswith(HUBSPOT_PREFIX):
        return _hubspot_field(payload, location[len(HUBSPOT_PREFIX) :])
    return lookup(payload, location)


def _typeform_value(answer: Mapping[str, Any]) -> object | None:
    kind = answer.get("type")
    if kind == "choice":
        choice = answer.get("choice")
        if isinstance(choice, Mapping):
            label: object = choice.get("label", choice.get("other"))
            return label
        return None
    if kind == "choices":
        choices = answer.get("choices")
        if not isinstance(choices, Mapping):
            return None
        labels = list(choices.get("labels") or [])
        if choices.get("other"):
            labels.append(choices["other"])
        return labels
    if kind in ("text", "email", "phone_number", "number", "boolean", "date", "url"):
        value: object = answer.get(kind)
        return value
    return None  # file uploads, payments and unknown types are deliberately not taken


def _typeform_answer(payload: Mapping[str, Any], ref: str) -> object | None:
    answers = dot_path(payload, "form_response.answers")
    if not isinstance(answers, list):
        return None
    for answer in answers:
        if not isinstance(answer, Mapping):
            continue
        answer_field = answer.get("field")
        if isinstance(answer_field, Mapping) and answer_field.get("ref") == ref:
            return _typeform_value(answer)
    return None


def _hubspot_field(payload: Mapping[str, Any], name: str) -> object | None:
    fields = payload.get("fields")
    if not isinstance(fields, list):
        return None
    values = [
        item.get("value")
        for item in fields
        if isinstance(item, Mapping) and item.get("name") == name and "value" in item
    ]
    if not values:
        return None
    return values[0] if len(values) == 1 else values  # multi-checkbox fields repeat the name


def map_payload(
    payload: Mapping[str, Any],
    fields: Mapping[str, str],
    consent_field: str | None,
    consent_wording: str | None,
) -> RawLead:
    """Keep only the fields the source maps; everything else in the payload is dropped."""
    values = {
        canonical: value
        for canonical, location in fields.items()
        if (value := extract(payload, location)) is not None
    }
    consent = extract(payload, consent_field) if consent_field else values.get("consent")
    return RawLead(values=values, consent=consent, consent_wording=consent_wording)


def honeypot_filled(payload: Mapping[str, Any], honeypot_field: str) -> bool:
    """True when the hidden field humans never see has a value: the post is from a bot."""
    value = extract(payload, honeypot_field)
    if isinstance(value, list):
        return any(str(v).strip() for v in value)
    return value is not None and str(value).strip() != ""
