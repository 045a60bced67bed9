"""Activity webhooks from sales tools: one signed request -> one `lead.activity` (pure, no I/O).

A CRM that logs a call should stop the SLA clock without anyone writing a consumer: the tool
posts its own payload, the policy's `activity_sources` entry says how it is signed and where
each activity field sits in it, and this module turns the request into the same
`LeadActivity` the activities API takes. Errors name the payload location at fault (never
its value), so whoever configured the tool can fix the mapping.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

import orjson

from shared.errors import DomainError
from shared.events import ActivityType, LeadActivity
from shared.payload_paths import lookup
from shared.policy import ActivitySource
from shared.signatures import InvalidSignature, verify_hubspot_v3, verify_standard_webhooks

ACTIVITY_TYPES: frozenset[str] = frozenset(get_args(ActivityType))
MAX_KEY_LENGTH = 200  # the tool's event id; longer ones are refused, not cut (ids must not merge)
MAX_ACTOR_LENGTH = 100
MAX_NOTE_LENGTH = 2000
MAX_REASON_LENGTH = 200
_EPOCH_MS_FROM = 10**11  # larger numbers are epoch milliseconds (HubSpot's dates), else seconds


class UnknownActivitySource(DomainError):
    status = 404
    type_slug = "unknown-source"
    title = "Unknown activity source"


class MalformedActivityBody(DomainError):
    status = 400
    type_slug = "malformed-body"
    title = "Malformed request body"


class UnsupportedActivityMediaType(DomainError):
    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported media type"


class ActivityBodyTooLarge(DomainError):
    status = 413
    type_slug = "body-too-large"
    title = "Request body too large"


class UnmappedActivity(DomainError):
    """The payload does not give what the source's mapping promises (422, location named)."""

    status = 422
    type_slug = "unmapped-activity"
    title = "Activity cannot be mapped"


@dataclass(frozen=True, slots=True)
class ActivityRequest:
    headers: Mapping[str, str]
    body: bytes
    content_type: str | None
    method: str
    url: str  # the full URL the tool called (HubSpot signs it)


def prepare(
    src: ActivitySource, secrets: Sequence[str], req: ActivityRequest, *, now: datetime
) -> LeadActivity:
    """Verify the signature, then parse and map the body; the activity id is set."""
    delivery_id = verify(src, secrets, req, now=now)
    payload = parse_json(req.body, req.content_type)
    return map_activity(src, payload, delivery_id=delivery_id, body=req.body, now=now)


def verify(
    src: ActivitySource, secrets: Sequence[str], req: ActivityRequest, *, now: datetime
) -> str | None:
    """The scheme's check; returns the delivery id when the scheme signs one (webhook-id)."""
    scheme = src.auth.scheme
    if scheme == "standard-webhooks":
        return verify_standard_webhooks(req.headers, req.body, secrets, now)
    if scheme == "hubspot-v3":
        verify_hubspot_v3(req.headers, req.body, secrets, now, method=req.method, uri=req.url)
        return None
    raise InvalidSignature(f"unsupported auth scheme {scheme!r}")  # refused at load already


def parse_json(body: bytes, content_type: str | None) -> dict[str, Any]:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedActivityMediaType(
            "activity webhooks are application/json",
            fields=[{"name": "content-type", "message": "expected application/json"}],
        )
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedActivityBody(
            "body is not valid JSON", fields=[{"name": "body", "message": "not valid JSON"}]
        ) from None
    if not isinstance(payload, dict):
        raise MalformedActivityBody(
            "body must be one JSON object (one activity per request)",
            fields=[{"name": "body", "message": "expected a JSON object"}],
        )
    return payload


def map_activity(
    src: ActivitySource,
    payload: Mapping[str, Any],
    *,
    delivery_id: str | None,
    body: bytes,
    now: datetime,
) -> LeadActivity:
    """The activity the payload describes, per the source's mapping.

    `activity_id` is `<source>:<key>`, the key being the mapped `activity_id` value, else the
    signed delivery id (Standard Webhooks' `webhook-id`), else a hash of the body, so a
    redelivery of the same request is the same activity. `at` defaults to `now` (the tool
    said it just happened) when the mapping has none.
    """
    m = _Mapper(src, payload)
    lead_id = m.lead_id()
    activity_type = src.type or m.activity_type()
    reengage_at = m.instant("reengage_at")
    if activity_type == "not_ready" and reengage_at is None:
        raise m.refuse("reengage_at", "required for not_ready")
    actor = m.text("actor", MAX_ACTOR_LENGTH, required=True)
    assert actor is not None
    key = m.text("activity_id", MAX_KEY_LENGTH, required=False, cut=False)
    key = key or delivery_id or hashlib.sha256(body).hexdigest()[:32]
    return LeadActivity(
        activity_id=f"{src.name}:{key}",
        lead_id=lead_id,
        type=activity_type,
        at=m.instant("at") or now,
        actor=src.actors.get(actor, actor),
        note=m.text("note", MAX_NOTE_LENGTH, required=False),
        reengage_at=reengage_at,
        reason=m.text("reason", MAX_REASON_LENGTH, required=False),
    )


class _Mapper:
    """Reads one mapped field at a time; every refusal names the payload location."""

    def __init__(self, src: ActivitySource, payload: Mapping[str, Any]) -> None:
        self.src = src
        self.payload = payload

    def location(self, name: str) -> str:
        return self.src.fields.get(name, name)

    def refuse(self, name: str, message: str) -> UnmappedActivity:
        where = self.location(name)
        return UnmappedActivity(
            f"{name} ({where}): {message}",
            fields=[{"name": where, "message": f"{name}: {message}"}],
        )

    def value(self, name: str) -> object | None:
        location = self.src.fields.get(name)
        if location is None:
            return None
        found = lookup(self.payload, location)
        return None if found == "" else found

    def lead_id(self) -> str:
        raw = self.value("lead_id")
        if raw is None:
            raise self.refuse("lead_id", "missing: the payload must carry the Baton lead id")
        try:
            return str(uuid.UUID(str(raw)))
        except ValueError:
            raise self.refuse("lead_id", "not a Baton lead id (a UUID)") from None

    def activity_type(self) -> ActivityType:
        raw = self.value("type")
        if raw is None or isinstance(raw, dict | list):
            raise self.refuse("type", "missing")
        tool_value = str(raw).lower() if isinstance(raw, bool) else str(raw)
        if self.src.types:
            mapped = self.src.types.get(tool_value)
            if mapped is None:
                raise self.refuse("type", "a value the source's types mapping does not list")
            return mapped
        if tool_value not in ACTIVITY_TYPES:
            raise self.refuse("type", f"not one of {', '.join(sorted(ACTIVITY_TYPES))}")
        return tool_value  # type: ignore[return-value]  # checked against the Literal above

    def text(self, name: str, limit: int, *, required: bool, cut: bool = True) -> str | None:
        raw = self.value(name)
        if raw is None:
            if required:
                raise self.refuse(name, "missing")
            return None
        if isinstance(raw, dict | list):
            raise self.refuse(name, "expected a single value, not an object or list")
        value = (str(raw).lower() if isinstance(raw, bool) else str(raw)).strip()
        if len(value) > limit:
            if not cut:
                raise self.refuse(name, f"longer than {limit} characters")
            value = value[:limit]  # a long CRM note must not cost the activity
        return value or None

    def instant(self, name: str) -> datetime | None:
        raw = self.value(name)
        if raw is None:
            return None
        parsed = parse_instant(raw)
        if parsed is None:
            raise self.refuse(
                name, "not a time (ISO 8601 with an offset, or epoch seconds/milliseconds)"
            )
        return parsed


def parse_instant(raw: object) -> datetime | None:
    """ISO 8601 with an offset, or a Unix time (HubSpot sends milliseconds, as text or number)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, int | float):
        seconds = raw / 1000 if abs(raw) >= _EPOCH_MS_FROM else raw
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.strip())
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None


@dataclass(frozen=True, slots=True)
class ActivitySources:
    """The policy's activity sources by name, with their secrets (resolved at start-up)."""

    by_name: Mapping[str, ActivitySource]
    secrets: Mapping[str, Sequence[str]]

    def label(self, name: str) -> str:
        """The metric label: a configured name, else "unknown" (URL scans add no series)."""
        return name if name in self.by_name else "unknown"

    def get(self, name: str) -> ActivitySource:
        src = self.by_name.get(name)
        if src is None:
            raise UnknownActivitySource("no activity source with this name")
        return src

    def prepare(self, src: ActivitySource, req: ActivityRequest, *, now: datetime) -> LeadActivity:
        return prepare(src, self.secrets.get(src.name, ()), req, now=now)
