"""Retention (`baton purge`, run daily from cron or a CronJob): personal data of old leads goes.

It spans services, so it lives on the top floor: intake and router each erase their own rows
(their `purge_expired`), followup follows the `contact.erased` events the router publishes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.intake.service import purge_expired as purge_intake
from services.router.erasure import purge_expired as purge_router
from services.router.store_erasure import forget_erased_contacts
from shared.db import Outbox, make_engine, make_sessionmaker
from shared.events import utcnow
from shared.logs import get_logger
from shared.settings import Settings

log = get_logger("baton.retention")


async def purge(settings: Settings, *, days: int, now: datetime | None = None) -> tuple[int, int]:
    """Retention (`baton purge`, run daily from cron or a CronJob): anonymise leads received
    more than `days` ago, keeping their non-personal facts. Intake and router erase their own
    rows here, in batches; each router batch publishes `contact.erased` through the router's
    outbox (its relay sends it), and followup erases its notes when it consumes that.
    Returns (intake leads, router leads) erased."""
    now = now or utcnow()
    before = now - timedelta(days=days)
    engine = make_engine(settings.database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    outbox = Outbox("router")
    counts = [0, 0]
    try:
        while True:
            async with sessions() as session, session.begin():
                done = await purge_intake(session, before=before, now=now)
            counts[0] += len(done)
            if not done:
                break
        while True:
            async with sessions() as session, session.begin():
                done = await purge_router(
                    session,
                    outbox=outbox,
                    topic=settings.topics.contacts_erased,
                    before=before,
                    now=now,
                )
            counts[1] += len(done)
            if not done:
                break
        # Erased contacts' digests are needed only while a lead from before the erasure can
        # still be in Kafka: the topics' retention, plus a day of margin.
        forget_before = now - timedelta(hours=settings.topic_retention_hours + 24)
        async with sessions() as session, session.begin():
            forgotten = await forget_erased_contacts(session, before=forget_before)
    finally:
        await engine.dispose()
    log.info(
        "retention.purged",
        days=days,
        intake=counts[0],
        router=counts[1],
        erased_contacts_forgotten=forgotten,
    )
    return counts[0], counts[1]
