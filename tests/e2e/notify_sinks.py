"""What notify sends to, for tests that run notify as a real process (e2e and the fault suite):
a webhook receiver that verifies Standard Webhooks signatures and dedupes by `webhook-id` as a
real receiver would (and can go down and come back on the same port), an SMTP server
(aiosmtpd) keeping every message, and the notify endpoint config / env pointing at them."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.e2e.conftest import Stack, free_port
from tests.notify.receivers import Behaviour, Receiver, Reply, Request, always

_conn: contextvars.ContextVar[asyncio.StreamReader] = contextvars.ContextVar("conn")


class DedupingReceiver(Receiver):
    """A Receiver on a fixed port that processes each `webhook-id` once however often it
    arrives, and can be taken down (listener closed, open connections aborted: the sender
    sees refused or reset connections) and brought back.

    Processing happens as in a real receiver's transaction: after the behaviour's delay (the
    slow work), and only if the sender is still connected then; a request whose sender
    vanished meanwhile (killed) is not processed, and must come again to count."""

    def __init__(self, behaviour: Behaviour | None = None, *, secret: str) -> None:
        inner = behaviour or always(Reply())

        async def process(req: Request, n: int) -> Reply:
            reply = inner(req, n)
            if not isinstance(reply, Reply):
                reply = await reply
            if reply.delay:
                await asyncio.sleep(reply.delay)
            wid = req.headers.get("webhook-id", "")
            conn = _conn.get()
            sender_alive = not conn.at_eof() and conn.exception() is None
            if 200 <= reply.status < 300 and req.verified and sender_alive:
                self.processed.setdefault(wid, req.event())
            return Reply(reply.status, reply.headers, reply.body, hang=reply.hang)

        super().__init__(process, secret=secret)
        self.fixed_port = free_port()
        self.processed: dict[str, dict[str, Any]] = {}  # webhook-id -> event, first time
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        return self.fixed_port

    async def __aenter__(self) -> DedupingReceiver:
        await self.up()
        return self

    async def up(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.fixed_port, reuse_address=True
        )

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), timeout=2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        _conn.set(reader)
        try:
            await super()._serve(reader, writer)
        finally:
            self._writers.discard(writer)

    def stats(self) -> dict[str, int]:
        """Raw requests vs distinct ids: the difference is the at-least-once window."""
        ids = Counter(r.headers.get("webhook-id", "") for r in self.requests)
        return {
            "raw": len(self.requests),
            "distinct": len(ids),
            "duplicates": sum(n - 1 for n in ids.values()),
            "unverified": sum(1 for r in self.requests if not r.verified),
        }


@dataclass
class Mailbox:
    """aiosmtpd handler keeping each message."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.messages if address.lower() in (r.lower() for r in rcpts)]


@contextlib.contextmanager
def smtp_sink() -> Any:
    """A real SMTP server on loopback (its own thread); yields (mailbox, port)."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def notify_config(tmp: Path, name: str, url: str, *, timeout: float = 10.0) -> Path:
    """One loopback webhook endpoint subscribed to every event type, secret from env
    BATON_NOTIFY_SECRET_TEST."""
    path = tmp / "notify.yaml"
    path.write_text(
        "endpoints:\n"
        f"  - name: {name}\n    url: {url}\n"
        "    events: [lead.assigned, lead.escalated, lead.disqualified, lead.merged,"
        " contact.erased]\n"
        "    secrets: [{env: BATON_NOTIFY_SECRET_TEST}]\n"
        f"    timeout_seconds: {timeout}\n    allow_private: true\n"
    )
    return path


def add_notify(
    stack: Stack, *, config: Path, secret: str, smtp_port: int, extra: dict[str, str] | None = None
) -> None:
    """Give the stack a notify process (not started) with its own port and log, sending
    webhooks per `config` and e-mail to the SMTP server on `smtp_port`."""
    stack.ports["notify"] = free_port()
    log_dir = next(iter(stack.logs.values())).parent if stack.logs else config.parent
    stack.logs["notify"] = log_dir / "notify.log"
    stack.env.update(
        {
            "NOTIFY_PORT": str(stack.ports["notify"]),
            "NOTIFY_CONFIG_PATH": str(config),
            "BATON_NOTIFY_SECRET_TEST": secret,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            **(extra or {}),
        }
    )
