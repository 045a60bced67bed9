"""Router admin API: policy reload and a lead's decision trail (bearer token required)."""

from __future__ import annotations

import time
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from services.router import store
from services.router.metrics import RouterMetrics
from services.router.service import PolicyHolder
from services.router.whatif.run import period, simulate_policy_yaml
from shared.auth import Token, require
from shared.events import utcnow
from shared.http import DomainError
from shared.policy import PolicyError, load_policy
from shared.runtime import Runtime

router = APIRouter()


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
    holder.history.append(policy.version_id)
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
        row = await store.get_lead(session, str(lead_id))
        if row is None:
            raise LeadNotFound("the router has no lead with this id")
        return {
            "lead_id": row.lead_id,
            "status": row.status,
            "owner_id": row.owner_id,
            "team_id": row.team_id,
            "assignment_seq": row.assignment_seq,
            "decisions": await store.decisions_for(session, str(lead_id)),
        }


@router.post(
    "/v1/admin/simulate",
    responses={422: {"description": "invalid policy or period"}},
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
