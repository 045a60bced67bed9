"""Router admin API: policy reload and a lead's decision trail (bearer token required)."""

from __future__ import annotations

import time
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.router import preview as views
from services.router import store
from services.router.erasure import erase_contact
from services.router.metrics import RouterMetrics
from services.router.service import PolicyHolder
from services.router.whatif.run import period, simulate_policy_yaml
from shared.auth import Token, require
from shared.errors import DomainError
from shared.events import utcnow
from shared.http import problem_responses
from shared.policy import PolicyError, load_policy
from shared.runtime import Runtime

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422, 503))


class InvalidPolicy(DomainError):
    status = 422
    type_slug = "invalid-policy"
    title = "Invalid routing policy"


class LeadNotFound(DomainError):
    status = 404
    type_slug = "lead-not-found"
    title = "Lead not found"


def _field_error(error: str) -> dict[str, str]:
    """ "teams[0].reps[1].timezone: unknown time zone" -> {name, message} for problem+json."""
    name, sep, message = error.partition(": ")
    return {"name": name, "message": message} if sep else {"name": "policy", "message": error}


def reload_policy(request: Request) -> dict[str, str]:
    holder: PolicyHolder = request.app.state.policy
    metrics: RouterMetrics = request.app.state.router_metrics
    try:
        policy = load_policy(request.app.state.policy_path)
    except PolicyError as exc:
        metrics.policy_reloads.labels("invalid").inc()
        raise InvalidPolicy(
            f"the policy file was not loaded; version {holder.policy.version_id} stays live: {exc}",
            fields=[_field_error(e) for e in exc.errors],
        ) from exc
    previous = holder.policy.version_id
    holder.policy = policy  # atomic swap: in-flight decisions keep the object they started with
    metrics.policy_reloads.labels("ok").inc()
    metrics.policy_info.set(time.time())
    wake = getattr(request.app.state, "gauges_wake", None)
    if wake is not None:
        wake.set()  # eligible-reps gauges follow the new teams at once
    return {"previous_version": previous, "version": policy.version_id, "label": policy.label}


@router.post("/v1/admin/policy/reload")
async def post_reload(
    request: Request, _: Annotated[Token, Depends(require("admin"))]
) -> dict[str, str]:
    """Load and validate the policy file again; an invalid file keeps the current policy."""
    return reload_policy(request)


@router.get("/v1/admin/policy")
async def get_policy(
    request: Request, _: Annotated[Token, Depends(require("read"))]
) -> dict[str, Any]:
    holder: PolicyHolder = request.app.state.policy
    return {"version": holder.policy.version_id, "label": holder.policy.label}


@router.get("/v1/leads/{lead_id}/decisions")
async def get_decisions(
    lead_id: UUID, request: Request, _: Annotated[Token, Depends(require("read"))]
) -> dict[str, Any]:
    """Every decision taken for the lead, with its policy version and plain-language trace."""
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        found = await views.lead_history(session, str(lead_id), detail=False)
    if found is None:
        raise LeadNotFound("the router has no lead with this id")
    return found


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
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        return await simulate_policy_yaml(session, policy_yaml=body, since=start, until=end)


class ErasureIn(BaseModel):
    """The contact whose personal data is to be erased: e-mail, phone (+<country>...) or both."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)


class ErasureAccepted(BaseModel):
    erasure_id: str
    status: str = "accepted"
    lead_ids: list[str]


class ErasureNotFound(DomainError):
    status = 404
    type_slug = "erasure-not-found"
    title = "Erasure not found"


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
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session, session.begin():
        erasure_id, lead_ids = await erase_contact(
            session,
            outbox=runtime.outbox,
            topic=runtime.settings.topics.contacts_erased,
            email=body.email,
            phone=body.phone,
            now=utcnow(),
        )
    runtime.relay.wake()
    accepted = ErasureAccepted(erasure_id=erasure_id, lead_ids=lead_ids)
    return JSONResponse(accepted.model_dump(), status_code=202)


@router.get("/v1/admin/erasure/{erasure_id}")
async def get_erasure(
    erasure_id: UUID, request: Request, _: Annotated[Token, Depends(require("admin"))]
) -> dict[str, Any]:
    """The erasure log entry: when, why (request or retention) and which lead ids."""
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        row = await store.get_erasure(session, str(erasure_id))
    if row is None:
        raise ErasureNotFound("no erasure with this id")
    return row
