"""Intake's service layer: verify, parse, map, normalise, then record lead + event atomically.

Nothing is written before the signature is verified; the caller's transaction holds the
idempotency key, the lead row and the outbox `lead.received` together, so a 202 is only ever
sent for a lead that will reach the router.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import store
from services.intake.domain.errors import (
    InvalidSignature,
    OriginNotAllowed,
    RateLimited,
    UnknownSource,
)
from services.intake.domain.lead import build_lead_fields
from services.intake.domain.mapping import honeypot_filled, map_payload
from services.intake.domain.parsing import parse_body
from services.intake.domain.ratelimit import TokenBucket, retry_after_seconds
from services.intake.domain.signatures import (
    verify_hubspot_v3,
    verify_standard_webhooks,
    verify_typeform,
)
from shared.events import Lead, erase_lead_data, make_event
from shared.policy import Policy, SourceConfig
from shared.webhook_secrets import load_secrets as shared_load_secrets

EVENT_SOURCE = "/baton/intake"


def load_secrets(policy: Policy, env: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Resolve every signed source's secrets at start-up; a missing one stops the service.
    The rules (several per variable or file for rotation, `whsec_` decoding, errors naming
    the field and never a secret) are shared with followup's activity sources."""
    return shared_load_secrets(
        ((f"sources[{i}].auth", src.name, src.auth) for i, src in enumerate(policy.sources)), env
    )


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    source: str
    headers: Mapping[str, str]
    body: bytes
    content_type: str | None
    method: str
    url: str


@dataclass(frozen=True, slots=True)
class Accepted:
    lead_id: str
    duplicate: bool
    channel: str
    spam: bool = False


@dataclass
class IntakeService:
    """Verify, parse and normalise; the rows (lead + `lead.received` outbox row) are written by
    store.py in one statement, so this layer holds no Outbox of its own."""

    policy: Policy
    secrets: dict[str, list[str]]
    topic: str
    max_body_bytes: int
    limiters: dict[str, TokenBucket] = field(default_factory=dict)

    def source(self, name: str) -> SourceConfig:
        src = self.policy.source(name)
        if src is None:
            raise UnknownSource(f"no source named {name!r} is configured")
        return src

    def check_before_body(self, src: SourceConfig, headers: Mapping[str, str]) -> None:
        """Cheap refusals before reading or parsing anything: origin and rate limit."""
        if src.auth.scheme == "none":
            origin = headers.get("origin")
            if origin is None or origin.rstrip("/") not in {
                o.rstrip("/") for o in src.auth.allowed_origins
            }:
                raise OriginNotAllowed(
                    "the Origin header is missing or not allowed for this source"
                )
        if src.rate_limit is not None:
            bucket = self.limiters.get(src.name)
            if bucket is None:
                bucket = TokenBucket(src.rate_limit.requests, float(src.rate_limit.per_seconds))
                self.limiters[src.name] = bucket
            wait = bucket.take(time.monotonic())
            if wait > 0:
                raise RateLimited(
                    "rate limit exceeded for this source", retry_after=retry_after_seconds(wait)
                )

    def verify(self, src: SourceConfig, req: WebhookRequest, now: datetime) -> str | None:
        """Check the signature; return the sender's idempotency key when the scheme has one."""
        secrets = self.secrets.get(src.name, [])
        scheme = src.auth.scheme
        if scheme == "standard-webhooks":
            return verify_standard_webhooks(req.headers, req.body, secrets, now)
        if scheme == "typeform":
            verify_typeform(req.headers, req.body, secrets, now)
        elif scheme == "hubspot-v3":
            verify_hubspot_v3(req.headers, req.body, secrets, now, method=req.method, uri=req.url)
        elif scheme != "none":
            raise InvalidSignature(f"unsupported auth scheme {scheme!r}")
        return None

    def build_lead(
        self, src: SourceConfig, payload: dict[str, Any], lead_id: str, now: datetime
    ) -> Lead:
        consent = src.consent
        raw = map_payload(
            payload,
            src.fields,
            consent.field if consent else None,
            consent.wording if consent else None,
        )
        fields = build_lead_fields(raw).to_dict()
        if src.kind == "chat" and fields["message"]:
            fields["engagement"]["chat_message"] = True
        if fields["consent"]["marketing_opt_in"] and fields["consent"]["at"] is None:
            fields["consent"]["at"] = now
        return Lead.model_validate(
            {
                "lead_id": lead_id,
                "received_at": now,
                "source": src.name,
                "channel": src.kind,
                **fields,
            }
        )

    def prepare(self, *, req: WebhookRequest, now: datetime) -> store.NewLead | Accepted:
        """Verify, parse, map and normalise (no I/O): the rows to write, or Accepted for spam."""
        src = self.source(req.source)
        key = self.verify(src, req, now)
        payload = parse_body(req.content_type, req.body, max_bytes=self.max_body_bytes)
        if (
            src.auth.scheme == "none"
            and src.auth.honeypot_field
            and honeypot_filled(payload, src.auth.honeypot_field)
        ):
            # Answer like a success so bots learn nothing; store and publish nothing.
            return Accepted(lead_id=str(uuid.uuid4()), duplicate=False, channel=src.kind, spam=True)
        key = key or req.headers.get("idempotency-key") or _vendor_key(src, payload)
        lead_id = str(uuid.uuid4())
        lead = self.build_lead(src, payload, lead_id, now)
        event = make_event(
            type="lead.received",
            source=EVENT_SOURCE,
            subject=lead_id,
            data=lead,
            id=lead_id,
            time=now,
        )
        return store.NewLead(
            source=src.name,
            channel=src.kind,
            key=key,
            lead_id=lead_id,
            received_at=now,
            lead=orjson.dumps(event.data),  # the lead's JSON dump, made once for the event
            topic=self.topic,
            payload=event.to_bytes(),
        )

    async def record(self, session: AsyncSession, *, item: store.NewLead) -> Accepted:
        """Per-request path: key, lead and event in one statement in the caller's transaction."""
        earlier = await store.record_lead(session, item)
        return _accepted(item, earlier)

    async def record_batch(
        self, session: AsyncSession, *, items: list[store.NewLead]
    ) -> list[Accepted]:
        """Group commit: many requests' leads in the caller's (one) transaction, in order."""
        earlier = await store.record_leads(session, items)
        return [_accepted(item, e) for item, e in zip(items, earlier, strict=True)]


def _accepted(item: store.NewLead, earlier: str | None) -> Accepted:
    if earlier is not None:
        return Accepted(lead_id=earlier, duplicate=True, channel=item.channel)
    return Accepted(lead_id=item.lead_id, duplicate=False, channel=item.channel)


def _vendor_key(src: SourceConfig, payload: dict[str, Any]) -> str | None:
    """Vendors that retry with their own delivery id: Typeform's form_response token/event_id."""
    if src.auth.scheme == "typeform":
        event_id = payload.get("event_id")
        if isinstance(event_id, str):
            return event_id
        response = payload.get("form_response")
        if isinstance(response, dict) and isinstance(response.get("token"), str):
            return str(response["token"])
    return None


# --- erasure and retention -----------------------------------------------------------------


async def erase_leads(session: AsyncSession, *, lead_ids: list[str], now: datetime) -> list[str]:
    """Erase intake's copy of these leads' personal data (idempotent); returns the ids erased now."""
    docs = await store.lead_documents(session, lead_ids)
    for lead_id, doc in docs.items():
        await store.erase_lead(session, lead_id=lead_id, lead=erase_lead_data(doc), at=now)
    return list(docs)


async def purge_expired(
    session: AsyncSession, *, before: datetime, now: datetime, limit: int = 500
) -> list[str]:
    """Retention: erase up to `limit` leads received before `before`; call until it returns []."""
    docs = await store.expired_lead_documents(session, before=before, limit=limit)
    for lead_id, doc in docs.items():
        await store.erase_lead(session, lead_id=lead_id, lead=erase_lead_data(doc), at=now)
    return list(docs)
