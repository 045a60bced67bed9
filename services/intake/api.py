"""Intake HTTP API: POST /v1/webhooks/{source}."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from services.intake.batcher import GroupCommitter
from services.intake.domain.errors import BodyTooLarge, IntakeError, Unavailable
from services.intake.metrics import IntakeMetrics
from services.intake.service import Accepted, IntakeService, WebhookRequest
from shared.events import utcnow
from shared.http import problem_responses, read_capped_body
from shared.outage import is_outage
from shared.runtime import Runtime

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 413, 415, 422, 429, 431, 503))
RETRY_AFTER_SECONDS = 5


class AcceptedBody(BaseModel):
    lead_id: str
    status: str = "accepted"


@router.post(
    "/v1/webhooks/{source}",
    status_code=202,
    response_model=AcceptedBody,
)
async def receive_webhook(
    request: Request, source: Annotated[str, Path(max_length=64)]
) -> Response:
    """Accept one lead; 202 only once it is durable (lead row + outbox event committed)."""
    service: IntakeService = request.app.state.intake
    metrics: IntakeMetrics = request.app.state.intake_metrics
    label = source if service.policy.source(source) is not None else "unknown"
    started = time.perf_counter()
    status = "500"
    try:
        accepted = await _receive(request, source, service)
        status = "202"
    except ClientDisconnect:
        # The sender hung up mid-body: nothing was stored and nobody reads an answer. A quiet,
        # counted outcome (499, "client closed request"), not an ASGI error traceback.
        status = "499"
        metrics.disconnects.labels(label).inc()
        return Response(status_code=400)
    except IntakeError as exc:
        status = str(exc.status)
        raise
    finally:
        metrics.webhooks.labels(label, status).inc()
        metrics.request_seconds.labels(label).observe(time.perf_counter() - started)
    if accepted.spam:
        metrics.spam.labels(label).inc()
    elif not accepted.duplicate:
        request.app.state.runtime.relay.wake()
        metrics.leads_accepted.labels(label, accepted.channel).inc()
    return JSONResponse({"lead_id": accepted.lead_id, "status": "accepted"}, status_code=202)


async def _receive(request: Request, source: str, service: IntakeService) -> Accepted:
    runtime: Runtime = request.app.state.runtime
    src = service.source(source)
    service.check_before_body(src, request.headers)
    body = await read_capped_body(request, service.max_body_bytes, BodyTooLarge)
    req = WebhookRequest(
        source=source,
        headers=request.headers,
        body=body,
        content_type=request.headers.get("content-type"),
        method=request.method,
        url=str(request.url),
    )
    prepared = service.prepare(req=req, now=utcnow())
    if isinstance(prepared, Accepted):  # spam: nothing to store
        return prepared
    committer: GroupCommitter | None = request.app.state.committer
    if committer is not None:
        return await committer.submit(prepared)  # Unavailable (503) when its batch failed
    try:
        async with runtime.sessions() as session, session.begin():
            return await service.record(session, item=prepared)
    except Exception as exc:
        if is_outage(exc):
            raise Unavailable(
                "the lead could not be stored; retry later", retry_after=RETRY_AFTER_SECONDS
            ) from exc
        raise
