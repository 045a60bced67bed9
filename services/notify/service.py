"""Notify's service layer: plan the messages an event causes and store them; turn an
attempt's result into the message's next state; the admin operations.

Every method takes the caller's session and never commits: the consumer, dispatcher or
request edge owns the transaction. Nothing here calls anything remote: the consumer only
writes rows, the dispatcher (ticker.py) sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import store
from services.notify.channels.base import AttemptResult
from services.notify.config import EVENT_TYPES, NotifyConfig
from services.notify.domain.backoff import Backoff
from services.notify.domain.delivery import Next, next_state
from services.notify.domain.messages import Planned
from services.notify.domain.people import PeopleLinks, plan_people
from services.notify.domain.plan import event_lead, plan_webhooks
from services.notify.metrics import NotifyMetrics
from shared.errors import DomainError
from shared.events import CloudEvent, ContactErased
from shared.policy import Policy

# Event types that may cause messages (contact.erased also erases): the ones an endpoint
# may subscribe to. Any other type on a consumed topic is marked consumed and plans nothing.
PLANNED_TYPES = frozenset(EVENT_TYPES)


class MessageNotFound(DomainError):
    status = 404
    type_slug = "message-not-found"
    title = "Message not found"


class EndpointNotFound(DomainError):
    status = 404
    type_slug = "endpoint-not-found"
    title = "Endpoint not found"


class MessageErased(DomainError):
    status = 409
    type_slug = "message-erased"
    title = "Message erased"


@dataclass
class NotifyService:
    config: NotifyConfig
    policy: Policy
    links: PeopleLinks
    metrics: NotifyMetrics
    backoff: Backoff
    people: bool = True  # plan people messages (off when no people channel is configured)

    def plan(self, event: CloudEvent) -> list[Planned]:
        if event.type not in PLANNED_TYPES:
            return []
        planned = plan_webhooks(event, self.config)
        if self.people and event.type != "contact.erased":
            planned += plan_people(event, self.policy, links=self.links)
        return planned

    async def on_events(
        self, session: AsyncSession, *, events: list[CloudEvent]
    ) -> list[tuple[str, datetime]]:
        """Store the messages of a run of events, in order (an erasure in the middle applies
        between the events before and after it). Returns (endpoint, first attempt) of each
        new message, for the dispatcher's wake-up."""
        new: list[tuple[str, datetime]] = []
        batch: list[store.NewMessage] = []
        for event in events:
            if event.type == "contact.erased":
                new += await store.insert_messages(session, batch)
                batch = []
                erased = ContactErased.model_validate(event.data)
                await store.erase_leads(session, erased.lead_ids, at=erased.erased_at)
            lead_id = event_lead(event)
            for p in self.plan(event):
                batch.append(
                    store.NewMessage(
                        id=p.message_id(event.id),
                        event_id=event.id,
                        event_type=event.type,
                        lead_id=lead_id,
                        channel=p.channel,
                        target=p.target,
                        kind=p.kind,
                        body=p.body,
                        delay_seconds=p.delay_seconds,
                    )
                )
        new += await store.insert_messages(session, batch)
        return new

    def after_attempt(
        self, result: AttemptResult, *, channel: str, step: int, now: datetime
    ) -> Next:
        nxt = next_state(result, channel=channel, step=step, now=now, backoff=self.backoff)
        self.metrics.deliveries.labels(channel, nxt.outcome).inc()
        if nxt.status == "dead":
            self.metrics.dead_letters.labels(channel).inc()
        return nxt

    # --- admin ------------------------------------------------------------------------------

    async def message(self, session: AsyncSession, message_id: str) -> dict[str, Any]:
        row = await store.get_message(session, message_id)
        if row is None:
            raise MessageNotFound("no message with this id")
        return {
            "id": row.id,
            "event_id": row.event_id,
            "event_type": row.event_type,
            "lead_id": row.lead_id,
            "channel": row.channel,
            "target": row.target,
            "endpoint": row.endpoint,
            "kind": row.kind,
            "status": row.status,
            "attempts": row.attempts,
            "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
            "created_at": row.created_at,
            "delivered_at": row.delivered_at,
            "last_status": row.last_status,
            "last_error": row.last_error,
            "body": row.body,
            "attempt_log": await store.attempts_for(session, message_id),
        }

    async def replay(self, session: AsyncSession, message_id: str, *, now: datetime) -> str:
        old = await store.replay_message(session, message_id, now=now)
        if old is None:
            raise MessageNotFound("no message with this id")
        if old == "cancelled":
            raise MessageErased("the message was cancelled by an erasure and cannot be sent")
        return old

    def known_endpoint(self, name: str) -> None:
        if self.config.endpoint(name) is None and name not in ("slack", "email"):
            raise EndpointNotFound(
                f"no endpoint named {name!r}", fields=[{"name": "name", "message": "unknown"}]
            )

    async def endpoints(self, session: AsyncSession, *, now: datetime) -> list[dict[str, Any]]:
        states = await store.endpoint_states(session)
        backlog = {b.endpoint: b for b in await store.backlog(session)}
        dead = await store.dead_count(session)
        names = [e.name for e in self.config.endpoints]
        names += sorted(n for n in set(states) | set(backlog) if n not in names)
        out = []
        for name in names:
            ep = self.config.endpoint(name)
            state = states.get(name, {})
            b = backlog.get(name)
            out.append(
                {
                    "name": name,
                    "channel": "webhook" if name not in ("slack", "email") else name,
                    "configured": ep is not None or name in ("slack", "email"),
                    "enabled": ep.enabled if ep is not None else None,
                    "events": list(ep.events) if ep is not None else None,
                    "disabled_at": state.get("disabled_at"),
                    "disabled_reason": state.get("disabled_reason"),
                    "last_success_at": state.get("last_success_at"),
                    "last_failure_at": state.get("last_failure_at"),
                    "failing_since": state.get("failing_since"),
                    "backlog": b.pending if b else 0,
                    "oldest_pending_seconds": (
                        (now - b.oldest_created_at).total_seconds()
                        if b and b.oldest_created_at
                        else 0.0
                    ),
                    "dead": dead.get(name, 0),
                }
            )
        return out
