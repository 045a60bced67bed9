"""Real HTTP receivers on loopback for notify's tests: a small asyncio HTTP/1.1 server whose
answer to each request is a test-chosen behaviour (healthy, slow, failing for a while, 410,
never answering, redirecting, a huge body), optionally over TLS with a self-signed
certificate. Every request is kept, with whether its Standard Webhooks signature verified
(checked with the `standardwebhooks` library, as a real receiver would)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from standardwebhooks import Webhook


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request was read
    verified: bool

    def event(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.body)
        return value


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    hang: bool = False  # read the request, then never answer


Behaviour = Callable[[Request, int], Awaitable[Reply] | Reply]
REASONS = {200: "OK", 302: "Found", 410: "Gone", 429: "Too Many Requests", 500: "Error"}


def always(reply: Reply) -> Behaviour:
    return lambda _req, _n: reply


def failing_then_ok(failures: int, reply: Reply | None = None) -> Behaviour:
    bad = reply or Reply(status=500, body=b"down")
    return lambda _req, n: bad if n <= failures else Reply()


class Receiver:
    def __init__(
        self, behaviour: Behaviour, *, secret: str | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.behaviour = behaviour
        self.secret = secret
        self.tls = tls
        self.requests: list[Request] = []
        self.hanging = 0
        self._server: asyncio.Server | None = None
        self._hang = asyncio.Event()
        self.arrived = asyncio.Condition()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._hang.set()
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), timeout=2)

    def verified_ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.requests if r.verified]

    async def wait_for(self, n: int, timeout: float = 30.0) -> list[Request]:
        """Wait until `n` requests arrived (a generous bound: a failure, not a measurement)."""
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.requests) >= n), timeout)
        return self.requests

    def _verify(self, headers: dict[str, str], body: bytes) -> bool:
        if self.secret is None:
            return False
        try:
            Webhook(self.secret).verify(body, headers)
        except Exception:
            return False
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                req = Request(
                    method, path, headers, body, time.monotonic(), self._verify(headers, body)
                )
                async with self.arrived:
                    self.requests.append(req)
                    self.arrived.notify_all()
                reply = self.behaviour(req, len(self.requests))
                if not isinstance(reply, Reply):
                    reply = await reply
                if reply.hang:
                    self.hanging += 1
                    await self._hang.wait()
                    return
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                head = f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'X')}\r\n"
                extra = {"content-length": str(len(reply.body)), **reply.headers}
                head += "".join(f"{k}: {v}\r\n" for k, v in extra.items()) + "\r\n"
                writer.write(head.encode("latin-1") + reply.body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, ssl.SSLError):
            return
        finally:
            writer.close()


def self_signed_tls(tmp: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate (no client trusts it)."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
