"""Outbound webhooks: the CloudEvent as JSON, signed per Standard Webhooks.

`webhook-id` is the CloudEvent id, so a receiver that dedupes by it sees each event once
although delivery is at-least-once; `webhook-timestamp` is the attempt's time and
`webhook-signature` holds one `v1,<base64>` signature per configured secret, newest first
(receivers on either side of a rotation verify). The body is CloudEvents structured mode,
so its Content-Type is `application/cloudevents+json` (CloudEvents HTTP binding 3.2).

Every bad answer is a failed attempt, never an exception: a timeout (the whole attempt,
not per read), a connection or TLS error, a redirect (never followed), a response body over
the cap (read raw, so a compressed bomb cannot expand), or a target resolving to a private
address while the endpoint does not allow it. Only 2xx is delivered.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from urllib.parse import urlsplit

import aiohttp
import orjson
from standardwebhooks import Webhook

from services.notify.channels.base import AttemptResult, Outgoing
from services.notify.config import Endpoint, NotifyConfig
from services.notify.domain.backoff import parse_retry_after
from services.notify.domain.targets import refused_reason
from shared.events import utcnow

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
USER_AGENT = "Baton-Notify/0.1"
RETRYABLE_4XX = frozenset({408, 409, 425, 429})

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def signature_headers(
    *, secrets: tuple[str, ...], msg_id: str, body: bytes, at: datetime
) -> dict[str, str]:
    """Standard Webhooks headers for one attempt (every secret signs; newest first)."""
    data = body.decode("utf-8")
    signatures = [Webhook(s).sign(msg_id=msg_id, timestamp=at, data=data) for s in secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(reversed(signatures)),
    }


def classify(status: int, retry_after: str | None) -> AttemptResult:
    if 200 <= status < 300:
        return AttemptResult("delivered", status=status)
    if status == 410:
        return AttemptResult("gone", status=status, error="HTTP 410: endpoint gone")
    if 300 <= status < 400:
        return AttemptResult("retry", status=status, error=f"HTTP {status}: redirect not followed")
    if status in (429, 503):
        return AttemptResult(
            "retry",
            status=status,
            retry_after_seconds=parse_retry_after(retry_after),
            error=f"HTTP {status}",
        )
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        return AttemptResult("rejected", status=status, error=f"HTTP {status}")
    return AttemptResult("retry", status=status, error=f"HTTP {status}")


class WebhookSender:
    """One aiohttp session per endpoint (its own connection pool: a hanging endpoint holds
    only its own connections); the endpoint's URL and secrets are looked up by the message's
    target at send time, so no secret is ever stored with a message."""

    def __init__(
        self,
        *,
        config: NotifyConfig,
        secrets: Mapping[str, tuple[str, ...]],
        max_response_bytes: int = 65536,
        max_connections: int = 16,
        resolver: Resolver = resolve,
    ) -> None:
        self.config = config
        self._secrets = secrets
        self.max_response_bytes = max_response_bytes
        self.max_connections = max_connections
        self._resolve = resolver
        self._clients: dict[str, aiohttp.ClientSession] = {}

    def _client(self, endpoint: Endpoint) -> aiohttp.ClientSession:
        client = self._clients.get(endpoint.name)
        if client is None:
            client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections),  # TLS verified
                timeout=aiohttp.ClientTimeout(total=endpoint.timeout_seconds),
                auto_decompress=False,  # the cap counts bytes on the wire: no gzip bomb
                trust_env=False,  # no proxy from the environment between us and the target
                headers={"user-agent": USER_AGENT},
            )
            self._clients[endpoint.name] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients = {}

    async def _refused(self, endpoint: Endpoint) -> str | None:
        if endpoint.allow_private:
            return None
        parts = urlsplit(endpoint.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = await self._resolve(str(parts.hostname), port)
        except OSError:
            return "target does not resolve"
        return refused_reason(addresses)

    async def send(self, out: Outgoing) -> AttemptResult:
        endpoint = self.config.endpoint(out.target)
        if endpoint is None:
            return AttemptResult("retry", error="endpoint not configured")
        refused = await self._refused(endpoint)
        if refused is not None:
            return AttemptResult("retry", error=refused)
        body = orjson.dumps(out.body.get("event", out.body))
        headers = signature_headers(
            secrets=self._secrets.get(endpoint.name, ()),
            msg_id=out.event_id,
            body=body,
            at=utcnow(),
        )
        headers["content-type"] = CONTENT_TYPE
        try:
            async with asyncio.timeout(endpoint.timeout_seconds):
                return await self._post(endpoint, body, headers)
        except TimeoutError:
            return AttemptResult("retry", error=f"timeout after {endpoint.timeout_seconds:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return AttemptResult("retry", error=_describe(exc))

    async def _post(
        self, endpoint: Endpoint, body: bytes, headers: dict[str, str]
    ) -> AttemptResult:
        client = self._client(endpoint)
        async with client.post(
            endpoint.url, data=body, headers=headers, allow_redirects=False
        ) as resp:
            size = 0
            async for chunk in resp.content.iter_chunked(16384):
                size += len(chunk)
                if size > self.max_response_bytes:
                    return AttemptResult(
                        "retry",
                        status=resp.status,
                        error=f"response body over {self.max_response_bytes} bytes",
                    )
            return classify(resp.status, resp.headers.get("retry-after"))


def _describe(exc: Exception) -> str:
    """A short error with no URL in it (a webhook URL's path may hold a token)."""
    if isinstance(exc, aiohttp.ClientSSLError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return f"tls error ({type(exc).__name__})"
    return type(exc).__name__
