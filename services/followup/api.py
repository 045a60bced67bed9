"""Followup HTTP API: activities from sales tools and a lead's SLA view.

Two ways in for an activity. `POST /v1/leads/{lead_id}/activities` takes Baton's own payload
from a caller holding a bearer token. `POST /v1/activity-webhooks/{source}` takes a sales
tool's own payload, signed the way the tool signs (Standard Webhooks, HubSpot v3) and mapped
per the policy's `activity_sources`; its effect is the same service call, except for a lead
followup has no clock for yet: a tool cannot act on a 404, and the assignment may still be on
its way, so the activity is kept pending and dead-lettered after the grace period, as on
Kafka (docs/followup.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from services.followup import store, waiting_store
from services.followup.domain.webhooks import (
    ActivityBodyTooLarge,
    ActivityRequest,
    ActivitySources,
)
from services.followup.metrics import FollowupMetrics
from services.followup.service import FollowupService
from shared.auth import Token, require
from shared.errors import DomainError, LeadNotFound
from shared.events import ActivityType, LeadActivity, utcnow
from shared.http import problem_responses, read_capped_body
from shared.logs import get_logger
from shared.runtime import Runtime

log = get_logger(__name__)

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422, 503))


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activity_id: str | None = Field(default=None, max_length=100)
    type: ActivityType
    at: datetime
    actor: str = Field(min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=2000)
    reengage_at: datetime | None = None
    # rejected / disqualified: a code from the policy's feedback.reasons (or "other")
    reason: str | None = Field(default=None, max_length=200)


class ActivityAccepted(BaseModel):
    activity_id: str
    status: str = "recorded"


@router.post("/v1/leads/{lead_id}/activities", status_code=202, response_model=ActivityAccepted)
async def post_activity(
    lead_id: UUID,
    body: ActivityIn,
    request: Request,
    _: Annotated[Token, Depends(require("write"))],
) -> ActivityAccepted:
    """Same payload and effect as a `lead.activity` event; 404 for a lead never assigned,
    422 for `not_ready` without `reengage_at` or a `rejected`/`disqualified` whose `reason`
    is not one of the policy's feedback reasons."""
    runtime: Runtime = request.app.state.runtime
    service: FollowupService = request.app.state.followup
    activity = LeadActivity(lead_id=str(lead_id), **body.model_dump())
    async with runtime.sessions() as session, session.begin():
        activity_id = await service.submit_activity(
            session, activity=activity, inbox_claim=runtime.inbox.claim
        )
    runtime.relay.wake()
    return ActivityAccepted(activity_id=activity_id)


@router.get("/v1/leads/{lead_id}/sla")
async def get_sla(
    lead_id: UUID,
    request: Request,
    _: Annotated[Token, Depends(require("read"))],
) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        clock = await store.get_clock(session, str(lead_id))
        waiting = await waiting_store.waiting_for(session, str(lead_id))
        if clock is None and waiting is not None:  # parked: nobody eligible yet
            return {"lead_id": str(lead_id), "status": "parked", "waiting": waiting}
        if clock is None:
            raise LeadNotFound("no assigned lead with this id")
        return {
            "lead_id": clock.lead_id,
            "assignment_seq": clock.assignment_seq,
            "owner_id": clock.owner.get("id"),
            "team_id": clock.team_id,
            "tier": clock.tier,
            "window_seconds": clock.window_seconds,
            "started_at": clock.started_at,
            "due_at": clock.due_at,
            "status": clock.status,
            "next_level": clock.next_level,
            "next_fire_at": clock.next_fire_at,
            "contacted_at": clock.contacted_at,
            "windows": await store.windows_for(session, str(lead_id)),
            "escalations": await store.escalations_for(session, str(lead_id)),
            "activities": await store.activities_for(session, str(lead_id)),
            "waiting": waiting,  # the parked lead's waiting clock, if it ever was parked
        }


# --- activity webhooks from the sales tools ---------------------------------------------------


@router.post(
    "/v1/activity-webhooks/{source}",
    status_code=202,
    response_model=ActivityAccepted,
    responses=problem_responses(413, 415),
)
async def receive_activity_webhook(
    request: Request, source: Annotated[str, Path(max_length=64)]
) -> ActivityAccepted:
    """Verify, map and record one activity; 202 once it is committed (a redelivery: 202, the
    same `activity_id`, no second effect)."""
    sources: ActivitySources = request.app.state.activity_sources
    metrics: FollowupMetrics = request.app.state.followup.metrics
    label = sources.label(source)
    status = "500"
    try:
        accepted = await _receive(request, source, sources)
        status = "202"
        return accepted
    except DomainError as exc:
        status = str(exc.status)
        log.info(
            "followup.activity_webhook.refused",
            source=label,
            status=exc.status,
            fields=[f["name"] for f in exc.fields],
        )
        raise
    finally:
        outcome = "accepted" if status == "202" else "rejected"
        metrics.activity_webhooks.labels(label, outcome, status).inc()


async def _receive(request: Request, source: str, sources: ActivitySources) -> ActivityAccepted:
    runtime: Runtime = request.app.state.runtime
    service: FollowupService = request.app.state.followup
    src = sources.get(source)  # 404 before the body is read
    body = await read_capped_body(request, request.app.state.max_body_bytes, ActivityBodyTooLarge)
    activity = sources.prepare(
        src,
        ActivityRequest(
            headers=request.headers,
            body=body,
            content_type=request.headers.get("content-type"),
            method=request.method,
            url=str(request.url),
        ),
        now=utcnow(),
    )
    async with runtime.sessions() as session, session.begin():
        activity_id = await service.submit_activity(
            session, activity=activity, inbox_claim=runtime.inbox.claim, require_known=False
        )
    runtime.relay.wake()
    return ActivityAccepted(activity_id=activity_id)
