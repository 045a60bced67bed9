"""Intake consumers: `contact.erased` erases intake's copy of the named leads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.service import erase_leads
from shared.events import CloudEvent, ContactErased, utcnow
from shared.logs import get_logger

EventFn = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
log = get_logger(__name__)


def build() -> EventFn:
    async def on_erased(session: AsyncSession, event: CloudEvent) -> None:
        erased = ContactErased.model_validate(event.data)
        done = await erase_leads(session, lead_ids=erased.lead_ids, now=utcnow())
        log.info("intake.erased", erasure_id=erased.erasure_id, leads=len(done))

    async def dispatch(session: AsyncSession, event: CloudEvent) -> None:
        if event.type == "contact.erased":
            await on_erased(session, event)

    return dispatch
