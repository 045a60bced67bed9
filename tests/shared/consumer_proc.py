"""A consumer process for test_consumer.py: Runtime + ConsumerRunner over one test schema.

Usage: consumer_proc.py SCHEMA GROUP PROGRESS_FILE [--block-at N]. Appends each delivered
message number to PROGRESS_FILE before handling it; with --block-at it hangs inside the
handler's transaction at message N (for the test to SIGKILL it). SIGTERM stops gracefully.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import CloudEvent
from shared.kafka import ConsumerRunner
from shared.runtime import Runtime
from shared.settings import Settings


async def main() -> None:
    schema, group, progress = sys.argv[1:4]
    block_at = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--block-at" else None
    settings = Settings()
    runtime = Runtime.build(settings, schema)

    def note(line: str) -> None:
        with open(progress, "a") as f:
            f.write(line + "\n")

    async def effect(session: AsyncSession, event: CloudEvent) -> None:
        await session.execute(
            text(f"INSERT INTO {schema}.effects (event_id) VALUES (:id)"), {"id": event.id}
        )
        n = int(event.data["message"][1:])
        if n == block_at:
            note(f"blocked {n}")
            await asyncio.Event().wait()

    apply = runtime.transactional(effect)

    async def handler(event: CloudEvent, topic: str) -> None:
        note(event.data["message"][1:])
        await apply(event, topic)

    runtime.consumers.append(
        ConsumerRunner(
            settings=settings,
            group_id=group,
            topics=[settings.topics.leads_received],
            handler=handler,
            metrics=runtime.metrics,
            producer=runtime.kafka,
        )
    )
    if block_at is None:
        note("restart")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await runtime.start()
    await stop.wait()
    await runtime.stop()


if __name__ == "__main__":
    asyncio.run(main())
