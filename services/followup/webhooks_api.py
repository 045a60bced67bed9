"""Followup HTTP API for sales tools' own webhooks: POST /v1/activity-webhooks/{source}.

Apart from `api.py` because the caller is authenticated differently: a CRM's workflow signs
its request (Standard Webhooks, HubSpot v3) instead of holding a Baton bearer token. The
effect is exactly `POST /v1/leads/{lead_id}/activities`' (the same service call), except for
a lead followup has no clock for yet: a tool cannot act on a 404, and the assignment may
still be on its way, so the activity is kept pending and dead-lettered after the grace period,
as on Kafka (docs/followup.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from services.followup.domain.webhooks import (
    ActivityBodyTooLarge,
    ActivityRequest,
    ActivitySources,
)
from services.followup.metrics import FollowupMetrics
from services.followup.service import FollowupService
from shared.errors import DomainError
from shared.events import utcnow
from shared.http import problem_responses
from shared.logs import get_logger
from shared.runtime import Runtime

log = get_logger(__name__)
router = APIRouter(responses=problem_responses(400, 401, 404, 413, 415, 422, 503))


class WebhookActivityAccepted(BaseModel):
    activity_id: str
    status: str = "recorded"


async def _read_body(request: Request, limit: int) -> bytes:
    """At most `limit` bytes; a declared or actual larger body is refused before it is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ActivityBodyTooLarge(f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ActivityBodyTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/v1/activity-webhooks/{source}", status_code=202, response_model=WebhookActivityAccepted
)
async def receive_activity_webhook(
    request: Request, source: Annotated[str, Path(max_length=64)]
) -> WebhookActivityAccepted:
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


async def _receive(
    request: Request, source: str, sources: ActivitySources
) -> WebhookActivityAccepted:
    runtime: Runtime = request.app.state.runtime
    service: FollowupService = request.app.state.followup
    src = sources.get(source)  # 404 before the body is read
    body = await _read_body(request, request.app.state.max_body_bytes)
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
    return WebhookActivityAccepted(activity_id=activity_id)
