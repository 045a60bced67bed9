"""Followup HTTP API: activities from sales tools and a lead's SLA view."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from services.followup import store
from services.followup.service import FollowupService
from shared.auth import Token, require
from shared.errors import LeadNotFound
from shared.events import ActivityType, LeadActivity
from shared.http import problem_responses
from shared.runtime import Runtime

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422, 503))


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activity_id: str | None = Field(default=None, max_length=100)
    type: ActivityType
    at: datetime
    actor: str = Field(min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=2000)
    reengage_at: datetime | None = None


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
    422 for `not_ready` without `reengage_at`."""
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
        }
