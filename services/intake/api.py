"""Intake HTTP API: POST /v1/webhooks/{source}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from services.intake.domain.errors import BodyTooLarge, IntakeError, Unavailable
from services.intake.metrics import IntakeMetrics
from services.intake.service import IntakeService, WebhookRequest
from shared.events import utcnow
from shared.runtime import Runtime

router = APIRouter()


class AcceptedBody(BaseModel):
    lead_id: str
    status: str = "accepted"


async def _read_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes; refuse early on a declared or actual larger body."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/v1/webhooks/{source}",
    status_code=202,
    response_model=AcceptedBody,
    responses={
        400: {"description": "malformed body"},
        401: {"description": "bad signature"},
        403: {"description": "origin not allowed"},
        404: {"description": "unknown source"},
        413: {"description": "body too large"},
        415: {"description": "unsupported media type"},
        422: {"description": "no usable contact"},
        429: {"description": "rate limited"},
        503: {"description": "lead could not be made durable"},
    },
)
async def receive_webhook(
    request: Request, source: Annotated[str, Path(max_length=64)]
) -> JSONResponse:
    """Accept one lead; 202 only once it is durable (lead row + outbox event committed)."""
    runtime: Runtime = request.app.state.runtime
    service: IntakeService = request.app.state.intake
    metrics: IntakeMetrics = request.app.state.intake_metrics
    label = source if runtime_source_known(service, source) else "unknown"
    try:
        src = service.source(source)
        service.check_before_body(src, request.headers)
        body = await _read_body(request, service.max_body_bytes)
        req = WebhookRequest(
            source=source,
            headers=request.headers,
            body=body,
            content_type=request.headers.get("content-type"),
            method=request.method,
            url=str(request.url),
        )
        try:
            async with runtime.sessions() as session, session.begin():
                accepted = await service.accept(session, req=req, now=utcnow())
        except (OperationalError, InterfaceError, OSError, TimeoutError) as exc:
            raise Unavailable("the lead could not be stored; retry later", retry_after=5) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise Unavailable(
                    "the lead could not be stored; retry later", retry_after=5
                ) from exc
            raise
    except IntakeError as exc:
        metrics.webhooks.labels(label, str(exc.status)).inc()
        raise
    if accepted.spam:
        metrics.spam.labels(label).inc()
    elif not accepted.duplicate:
        runtime.relay.wake()
        metrics.leads_accepted.labels(label, accepted.channel).inc()
    metrics.webhooks.labels(label, "202").inc()
    return JSONResponse({"lead_id": accepted.lead_id, "status": "accepted"}, status_code=202)


def runtime_source_known(service: IntakeService, name: str) -> bool:
    return service.policy.source(name) is not None
