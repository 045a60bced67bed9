"""Pure intake domain: verify, parse, map and normalise webhook payloads into lead fields."""

from .errors import (
    BodyTooLarge,
    IntakeError,
    InvalidField,
    InvalidSignature,
    MalformedBody,
    NoUsableContact,
    OriginNotAllowed,
    RateLimited,
    Unavailable,
    UnknownSource,
    UnsupportedMediaType,
)
from .lead import CanonicalFields, FieldWarning, build_lead_fields
from .mapping import RawLead, extract, honeypot_filled, map_payload
from .parsing import parse_body
from .signatures import verify_hubspot_v3, verify_standard_webhooks, verify_typeform

__all__ = [
    "BodyTooLarge",
    "CanonicalFields",
    "FieldWarning",
    "IntakeError",
    "InvalidField",
    "InvalidSignature",
    "MalformedBody",
    "NoUsableContact",
    "OriginNotAllowed",
    "RateLimited",
    "RawLead",
    "Unavailable",
    "UnknownSource",
    "UnsupportedMediaType",
    "build_lead_fields",
    "extract",
    "honeypot_filled",
    "map_payload",
    "parse_body",
    "verify_hubspot_v3",
    "verify_standard_webhooks",
    "verify_typeform",
]
