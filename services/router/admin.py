"""Router admin API, part two: rep availability, a lead with its history, route preview."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from services.router import preview as views
from services.router.api import LeadNotFound
from services.router.service import RouterService
from shared.auth import Token, require
from shared.errors import DomainError
from shared.events import Channel, Consent, Contact, Engagement, Lead, utcnow
from shared.http import problem_responses, unstorable_text
from shared.runtime import Runtime

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422, 503))


class UnstorableText(DomainError):
    status = 422
    type_slug = "invalid-request"
    title = "Invalid request"


class PreviewIn(BaseModel):
    """A canonical lead as intake would produce it; ids and times are filled in when absent."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(default="preview", max_length=64)
    channel: Channel = "form"
    received_at: datetime | None = None
    contact: Contact
    consent: Consent = Field(default_factory=Consent)
    message: str | None = Field(default=None, max_length=10_000)
    utm: dict[str, str] = Field(default_factory=dict)
    engagement: Engagement = Field(default_factory=Engagement)
    company_size: int | None = Field(default=None, ge=0)
    industry: str | None = Field(default=None, max_length=200)
    answers: dict[str, str] = Field(default_factory=dict)
    extra: dict[str, str] = Field(default_factory=dict)


@router.get("/v1/admin/reps")
async def get_reps(
    request: Request, _: Annotated[Token, Depends(require("read"))]
) -> dict[str, Any]:
    """Every rep's availability now (active, out of office, open leads vs capacity, on duty)."""
    runtime: Runtime = request.app.state.runtime
    service: RouterService = request.app.state.router_service
    async with runtime.sessions() as session:
        return {"reps": await views.reps(service, session, now=utcnow())}


@router.get("/v1/leads/{lead_id}")
async def get_lead(
    lead_id: UUID, request: Request, _: Annotated[Token, Depends(require("read"))]
) -> dict[str, Any]:
    """The lead as routed, with its assignments and every decision (policy version, trace)."""
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        found = await views.lead_history(session, str(lead_id), detail=True)
    if found is None:
        raise LeadNotFound("the router has no lead with this id")
    return found


@router.post("/v1/route/preview")
async def post_preview(
    body: PreviewIn, request: Request, _: Annotated[Token, Depends(require("read"))]
) -> dict[str, Any]:
    """Score and route a lead on the live policy without assigning it: the same trace, no effects."""
    runtime: Runtime = request.app.state.runtime
    service: RouterService = request.app.state.router_service
    now = utcnow()
    data = body.model_dump()
    found = unstorable_text(data)
    if found:
        raise UnstorableText(
            f"the request has invalid fields: {found}",
            fields=[{"name": found, "message": "contains a NUL character or a lone surrogate"}],
        )
    data["received_at"] = data["received_at"] or now
    lead = Lead(lead_id=str(uuid.uuid4()), **data)
    async with runtime.sessions() as session:
        return await views.preview(service, session, lead=lead, now=now)
