"""Notify admin API (bearer token, admin scope): endpoint health, one message with its
attempts, replay, and enabling an endpoint a 410 disabled. Message bodies can hold personal
data (the lead's contact), so every route here needs the admin scope."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel

from services.notify import store
from services.notify.service import NotifyService
from services.notify.ticker import Dispatcher
from shared.auth import Token, require
from shared.events import utcnow
from shared.http import problem_responses
from shared.runtime import Runtime

router = APIRouter(responses=problem_responses(401, 403, 404, 422, 503))
Admin = Annotated[Token, Depends(require("admin"))]


class Replayed(BaseModel):
    replayed: int
    previous_status: str | None = None


class Enabled(BaseModel):
    name: str
    was_disabled: bool


def _parts(request: Request) -> tuple[Runtime, NotifyService, Dispatcher]:
    state = request.app.state
    return state.runtime, state.notify, state.dispatcher


@router.get("/v1/admin/endpoints")
async def list_endpoints(request: Request, _: Admin) -> dict[str, Any]:
    """Each endpoint's health: last success, failing since, backlog, dead letters, disabled."""
    runtime, service, _d = _parts(request)
    async with runtime.sessions() as session:
        return {"endpoints": await service.endpoints(session, now=utcnow())}


@router.get("/v1/admin/messages/{message_id}", responses=problem_responses(404))
async def get_message(message_id: UUID, request: Request, _: Admin) -> dict[str, Any]:
    """One message with its body (personal data: admin scope only) and every attempt."""
    runtime, service, _d = _parts(request)
    async with runtime.sessions() as session:
        return await service.message(session, str(message_id))


@router.post(
    "/v1/admin/messages/{message_id}/replay",
    response_model=Replayed,
    responses=problem_responses(404, 409),
)
async def replay_message(message_id: UUID, request: Request, _: Admin) -> Replayed:
    """Send a delivered or dead message again, now, with a fresh retry schedule (same
    `webhook-id`: a receiver that dedupes drops it if it already has it). 409 if erased."""
    runtime, service, dispatcher = _parts(request)
    async with runtime.sessions() as session, session.begin():
        old = await service.replay(session, str(message_id), now=utcnow())
        await store.wake_all(session)
    dispatcher.wake()
    return Replayed(replayed=1, previous_status=old)


@router.post("/v1/admin/endpoints/{name}/replay", response_model=Replayed)
async def replay_endpoint(
    name: str,
    request: Request,
    _: Admin,
    since: Annotated[AwareDatetime, Query(description="messages created at or after this")],
) -> Replayed:
    """Every message to the endpoint created since `since` (except erased ones), again."""
    runtime, service, dispatcher = _parts(request)
    service.known_endpoint(name)
    async with runtime.sessions() as session, session.begin():
        n = await store.replay_endpoint(session, name, since=since, now=utcnow())
        await store.wake_all(session)
    dispatcher.wake()
    return Replayed(replayed=n)


@router.post("/v1/admin/endpoints/{name}/enable", response_model=Enabled)
async def enable_endpoint(name: str, request: Request, _: Admin) -> Enabled:
    """Re-enable an endpoint a 410 disabled; its pending messages are sent from now on."""
    runtime, service, dispatcher = _parts(request)
    service.known_endpoint(name)
    async with runtime.sessions() as session, session.begin():
        was = await store.enable_endpoint(session, name)
        await store.wake_all(session)
    dispatcher.wake()
    return Enabled(name=name, was_disabled=was)
