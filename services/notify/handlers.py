"""Notify's consumer: every consumed event goes through one function that plans its messages
and stores them with the inbox mark (one transaction per fetched batch in batch mode). The
consumer never calls anything remote; the dispatcher is told when new messages come due."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.service import NotifyService
from shared.events import CloudEvent
from shared.runtime import EventFn, EventsFn

Wake = Callable[[datetime | None], None]


def build_many(service: NotifyService, wake: Wake) -> EventsFn:
    """A batch's events in fetch order, in the caller's transaction; a batch that fails is
    replayed one event per transaction by the consumer (`build`), so only a bad event is
    dead-lettered."""

    async def handle(session: AsyncSession, events: list[CloudEvent]) -> None:
        new = await service.on_events(session, events=events)
        if new:
            first = min(at for _, at in new)
            # after the commit: woken earlier, the dispatcher would not see the rows yet
            sa_event.listen(session.sync_session, "after_commit", lambda _s: wake(first), once=True)

    return handle


def build(service: NotifyService, wake: Wake) -> EventFn:
    many = build_many(service, wake)

    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        await many(session, [event])

    return handle
