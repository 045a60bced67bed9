"""Which webhook messages one consumed event causes. Pure: the event and the config in,
`Planned` messages out.

An endpoint receives an event when it is enabled, subscribes to the event's type and, if it
names teams, the event names one of them (lead.assigned's and lead.parked's `team.id`,
lead.escalated's `team_id`). Events that name no team (lead.disqualified, lead.merged,
lead.nurtured, lead.reengage) do not reach a team-filtered endpoint; contact.erased (lead ids
only) reaches every endpoint that subscribes to it, since any of them may hold the erased
leads.
"""

from __future__ import annotations

from typing import Any

from services.notify.config import Endpoint, NotifyConfig
from services.notify.domain.messages import Planned
from shared.events import CloudEvent

WEBHOOK = "webhook"


def event_team(event: CloudEvent) -> str | None:
    data = event.data
    if event.type in ("lead.assigned", "lead.parked"):
        team = data.get("team")
        return str(team["id"]) if isinstance(team, dict) and "id" in team else None
    if event.type == "lead.escalated":
        team_id = data.get("team_id")
        return str(team_id) if team_id is not None else None
    return None


def event_lead(event: CloudEvent) -> str | None:
    """The lead an event is about (per-lead order and erasure key); None for contact.erased."""
    lead_id = event.data.get("lead_id")
    return str(lead_id).lower() if isinstance(lead_id, str) else None


def matches(endpoint: Endpoint, event: CloudEvent) -> bool:
    if not endpoint.enabled or event.type not in endpoint.events:
        return False
    if not endpoint.teams or event.type == "contact.erased":
        return True
    return event_team(event) in endpoint.teams


def webhook_body(event: CloudEvent) -> dict[str, Any]:
    """What a webhook message stores: the CloudEvent itself, sent as its JSON."""
    return {"event": {**event.model_dump(mode="json", exclude={"data"}), "data": event.data}}


def plan_webhooks(event: CloudEvent, config: NotifyConfig) -> list[Planned]:
    body = webhook_body(event)
    return [
        Planned(channel=WEBHOOK, target=ep.name, kind="event", body=body)
        for ep in config.endpoints
        if matches(ep, event)
    ]
