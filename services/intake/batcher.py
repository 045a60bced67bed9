"""Group commit: concurrent webhooks share one transaction.

Each request enqueues its prepared rows and awaits its own future. One task takes whatever is
queued (waiting up to `window` after the first item for more, at most `max_batch` items),
writes the whole batch with multi-row statements in ONE transaction and resolves every future
only after COMMIT returned, so a 202 still means "lead and outbox event are durable". If the
flush fails, every request in it fails with 503 (Unavailable): nothing of the batch was
committed, and the senders retry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain.errors import Unavailable
from services.intake.service import Accepted, IntakeService
from services.intake.store import NewLead
from shared.logs import get_logger

log = get_logger(__name__)

RETRY_AFTER_SECONDS = 5
STOP_TIMEOUT_SECONDS = 5.0
_Item = tuple[NewLead, "asyncio.Future[Accepted]"]


class GroupCommitter:
    def __init__(
        self,
        *,
        sessions: Callable[[], Any],
        service: IntakeService,
        max_batch: int = 64,
        window_seconds: float = 0.002,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._service = service
        self.max_batch = max_batch
        self.window_seconds = window_seconds
        self._on_commit = on_commit
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        self._closed = False
        self._task = asyncio.create_task(self._run(), name="intake-group-commit")

    async def stop(self) -> None:
        """Stop taking work, let what is queued commit (bounded), fail whatever is left."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            self._queue.put_nowait(None)  # FIFO: everything queued before it is flushed first
            try:
                async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        while not self._queue.empty():
            queued = self._queue.get_nowait()
            if queued is not None:
                _fail(queued[1], None)

    async def submit(self, item: NewLead) -> Accepted:
        """Resolve once the batch holding `item` has committed; Unavailable if it could not."""
        if self._closed or self._task is None:
            raise Unavailable(
                "intake is shutting down; retry later", retry_after=RETRY_AFTER_SECONDS
            )
        fut: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        return await fut

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            if self.window_seconds > 0 and self._queue.qsize() < self.max_batch - 1:
                await asyncio.sleep(self.window_seconds)
            while len(batch) < self.max_batch and not self._queue.empty():
                queued = self._queue.get_nowait()
                if queued is None:
                    stopping = True
                    break
                batch.append(queued)
            await self._flush(batch)

    async def _flush(self, batch: list[_Item]) -> None:
        items = [item for item, fut in batch]
        try:
            session: AsyncSession
            async with self._sessions() as session, session.begin():
                results = await self._service.record_batch(session, items=items)
        except Exception as exc:  # every request in the batch gets 503; nothing was committed
            log.warning("intake.group_commit_failed", size=len(batch), error=type(exc).__name__)
            for _, fut in batch:
                _fail(fut, exc)
            return
        if self._on_commit is not None:
            self._on_commit(len(batch))
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)


def _fail(fut: asyncio.Future[Accepted], cause: BaseException | None) -> None:
    if fut.done():
        return
    err = Unavailable("the lead could not be stored; retry later", retry_after=RETRY_AFTER_SECONDS)
    err.__cause__ = cause
    fut.set_exception(err)
