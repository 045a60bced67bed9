"""Router HTTP API (bearer token required): the policy (reload, what-if), leads and their
decisions, rep availability, route preview, and erasure."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.router import availability, reconcile, store_erasure, views
from services.router.erasure import erase_contact
from services.router.service import InvalidPolicy, RouterService
from services.router.ticker import Ticker
from services.router.whatif.run import period, simulate_policy_yaml
from shared.auth import Token, require
from shared.errors import DomainError, LeadNotFound
from shared.events import Channel, Consent, Contact, Engagement, Lead, utcnow
from shared.http import problem_responses, unstorable_text
from shared.runtime import Runtime

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422, 503))


class UnstorableText(DomainError):
    status = 422
    type_slug = "invalid-request"
    title = "Invalid request"


class ErasureNotFound(DomainError):
    status = 404
    type_slug = "erasure-not-found"
    title = "Erasure not found"


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _service(request: Request) -> RouterService:
    service: RouterService = request.app.state.router_service
    return service


# --- the policy ----------------------------------------------------------------------------


@router.post("/v1/admin/policy/reload")
async def post_reload(
    request: Request, _: Annotated[Token, Depends(require("admin"))]
) -> dict[str, str]:
    """Load and validate the policy file again; an invalid file keeps the current policy."""
    result = _service(request).reload_policy(request.app.state.policy_path)
    ticker: Ticker = request.app.state.ticker
    ticker.wake()  # eligible-reps gauges follow the new teams at once
    return result


@router.get("/v1/admin/policy")
async def get_policy(
    request: Request, _: Annotated[Token, Depends(require("read"))]
) -> dict[str, Any]:
    policy = _service(request).policy
    return {"version": policy.version_id, "label": policy.label}


@router.post(
    "/v1/admin/simulate",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/yaml": {"schema": {"type": "string"}}},
        }
    },
)
async def post_simulate(
    request: Request,
    _: Annotated[Token, Depends(require("admin"))],
    since: Annotated[str, Query(max_length=40, description="e.g. 30d, 12h or an ISO time")] = "30d",
    until: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """What-if: replay stored leads through the proposed policy (the body); writes nothing."""
    body = await request.body()
    if len(body) > 1_048_576:
        raise InvalidPolicy("the proposed policy is larger than 1 MiB")
    start, end = period(since, until, now=utcnow())
    async with _runtime(request).sessions() as session:
        return await simulate_policy_yaml(session, policy_yaml=body, since=start, until=end)


# --- leads, reps and the route preview -----------------------------------------------------


@router.get("/v1/leads/{lead_id}")
async def get_lead(
    lead_id: UUID, request: Request, _: Annotated[Token, Depends(require("read"))]
) -> dict[str, Any]:
    """The lead as routed, with its assignments and every decision (policy version, trace)."""
    async with _runtime(request).sessions() as session:
        found = await views.lead_history(session, str(lead_id), detail=True)
    if found is None:
        raise LeadNotFound("the router has no lead with this id")
    return found


@router.get("/v1/leads/{lead_id}/decisions")
async def get_decisions(
    lead_id: UUID, request: Request, _: Annotated[Token, Depends(require("read"))]
) -> dict[str, Any]:
    """Every decision taken for the lead, with its policy version and plain-language trace."""
    async with _runtime(request).sessions() as session:
        found = await views.lead_history(session, str(lead_id), detail=False)
    if found is None:
        raise LeadNotFound("the router has no lead with this id")
    return found


@router.get("/v1/admin/reps")
async def get_reps(
    request: Request, _: Annotated[Token, Depends(require("read"))]
) -> dict[str, Any]:
    """Every rep's availability now (active, out of office, paused and why, open leads vs
    capacity, on duty)."""
    async with _runtime(request).sessions() as session:
        reps = await views.reps(_service(request), session, now=utcnow())
        pauses = await availability.pauses(session)
    idle = {"missed_slas": 0, "paused": False, "paused_at": None, "paused_reason": None}
    return {"reps": [{**rep, **pauses.get(rep["id"], idle)} for rep in reps]}


@router.post("/v1/admin/reps/{rep_id}/resume")
async def post_resume(
    rep_id: Annotated[str, Path(max_length=64)],
    request: Request,
    token: Annotated[Token, Depends(require("admin"))],
) -> dict[str, Any]:
    """A manager lifts a rep's pause (missed SLAs in a row): they take new leads again, and
    `rep.resumed` says so. 404 for a rep the live policy does not have."""
    runtime = _runtime(request)
    async with runtime.sessions() as session, session.begin():
        result = await availability.resume(
            _service(request), session, rep_id=rep_id, actor=token.name, now=utcnow()
        )
    runtime.relay.wake()
    return result


class PreviewIn(BaseModel):
    """A canonical lead as intake would produce it; ids and times are filled in when absent."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(default="preview", max_length=64)
    channel: Channel = "form"
    received_at: datetime | None = None
    contact: Contact
    # as a form's `website` field: the company domain when the e-mail is free-mail
    website: str | None = Field(default=None, max_length=2000)
    consent: Consent = Field(default_factory=Consent)
    message: str | None = Field(default=None, max_length=10_000)
    utm: dict[str, str] = Field(default_factory=dict)
    engagement: Engagement = Field(default_factory=Engagement)
    company_size: int | None = Field(default=None, ge=0)
    industry: str | None = Field(default=None, max_length=200)
    answers: dict[str, str] = Field(default_factory=dict)
    extra: dict[str, str] = Field(default_factory=dict)


@router.post("/v1/route/preview")
async def post_preview(
    body: PreviewIn, request: Request, _: Annotated[Token, Depends(require("read"))]
) -> dict[str, Any]:
    """Score and route a lead on the live policy without assigning it: the same trace, no effects.

    The contact's facts (e-mail kind, seniority band, company domain) are derived as intake
    derives them, and the account is matched as for a real lead, so the preview of what a
    form sent agrees with the decision on the lead intake makes of it."""
    now = utcnow()
    data = body.model_dump()
    found = unstorable_text(data)
    if found:
        raise UnstorableText(
            f"the request has invalid fields: {found}",
            fields=[{"name": found, "message": "contains a NUL character or a lone surrogate"}],
        )
    data["received_at"] = data["received_at"] or now
    website = data.pop("website")
    lead = Lead(lead_id=str(uuid.uuid4()), **data)
    async with _runtime(request).sessions() as session:
        return await views.preview(_service(request), session, lead=lead, now=now, website=website)


# --- erasure -------------------------------------------------------------------------------


class ErasureIn(BaseModel):
    """The contact whose personal data is to be erased: e-mail, phone (+<country>...) or both."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)


class ErasureAccepted(BaseModel):
    erasure_id: str
    status: str = "accepted"
    lead_ids: list[str]


@router.post(
    "/v1/admin/erasure",
    status_code=202,
    response_model=ErasureAccepted,
)
async def post_erasure(
    body: ErasureIn, request: Request, _: Annotated[Token, Depends(require("admin"))]
) -> JSONResponse:
    """Right to erasure: the router erases the contact's personal data from its leads and
    decisions now, and publishes `contact.erased` (ids only) so intake, followup and sales
    tools erase theirs. 202: the router's part is committed; the others follow from the event."""
    runtime = _runtime(request)
    async with runtime.sessions() as session, session.begin():
        erasure_id, lead_ids = await erase_contact(
            session,
            outbox=runtime.outbox,
            topic=runtime.settings.topics.contacts_erased,
            email=body.email,
            phone=body.phone,
            now=utcnow(),
        )
        await reconcile.close_erased(session, lead_ids=lead_ids, at=utcnow())
    runtime.relay.wake()
    accepted = ErasureAccepted(erasure_id=erasure_id, lead_ids=lead_ids)
    return JSONResponse(accepted.model_dump(), status_code=202)


@router.get("/v1/admin/erasure/{erasure_id}")
async def get_erasure(
    erasure_id: UUID, request: Request, _: Annotated[Token, Depends(require("admin"))]
) -> dict[str, Any]:
    """The erasure log entry: when, why (request or retention) and which lead ids."""
    async with _runtime(request).sessions() as session:
        row = await store_erasure.get_erasure(session, str(erasure_id))
    if row is None:
        raise ErasureNotFound("no erasure with this id")
    return row
