"""A loopback fake of Slack's Web API `chat.postMessage`, a real HTTP server (aiohttp).

It speaks the documented shapes (https://api.slack.com/methods/chat.postMessage):
- request: POST /api/chat.postMessage, `Authorization: Bearer <token>` (or a `token` form
  field), body as JSON or as application/x-www-form-urlencoded (then `blocks` is a JSON
  string);
- answers: HTTP 200 `{"ok": true, "channel": ..., "ts": ..., "message": {...}}`, HTTP 200
  `{"ok": false, "error": "channel_not_found"}` (and the other error codes), and HTTP 429
  with `Retry-After` and `{"ok": false, "error": "ratelimited"}`.

Tests script it: `known` channels (others are channel_not_found), `archived` ones,
`queue` of canned answers served before normal handling, `hang` to never answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Canned:
    status: int = 200
    body: dict[str, Any] | str = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def ratelimited(retry_after: int) -> Canned:
    return Canned(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})


def error(code: str) -> Canned:
    return Canned(200, {"ok": False, "error": code})


@dataclass
class Received:
    headers: dict[str, str]
    content_type: str
    body: dict[str, Any]


class FakeSlack:
    def __init__(self, *, token: str = "xoxb-test-token", known: set[str] | None = None) -> None:
        self.token = token
        self.known = known  # None: every channel/user id exists
        self.archived: set[str] = set()
        self.queue: list[Canned] = []
        self.hang = False
        self.received: list[Received] = []
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def posted(self) -> list[dict[str, Any]]:
        """Bodies of the requests that were answered ok."""
        return [r.body for r in self.received if r.body.get("_ok")]

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_post("/api/chat.postMessage", self._post_message)
        self._release = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        self._release.set()  # let hanging handlers finish
        if self._runner is not None:
            await self._runner.cleanup()

    async def _parse(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            data = await request.json()
            return dict(data) if isinstance(data, dict) else {}
        form = dict(await request.post())
        out: dict[str, Any] = {k: str(v) for k, v in form.items()}
        if "blocks" in out:
            out["blocks"] = json.loads(out["blocks"])
        return out

    async def _post_message(self, request: web.Request) -> web.Response:
        body = await self._parse(request)
        rec = Received(dict(request.headers), request.content_type, body)
        self.received.append(rec)
        if self.hang:
            await self._release.wait()
        if self.queue:
            canned = self.queue.pop(0)
            payload = canned.body if isinstance(canned.body, str) else json.dumps(canned.body)
            ctype = "application/json" if not isinstance(canned.body, str) else "text/html"
            return web.Response(
                status=canned.status, text=payload, content_type=ctype, headers=canned.headers
            )
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else body.get("token")
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        if token != self.token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        channel = body.get("channel")
        if not channel or (self.known is not None and channel not in self.known):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if channel in self.archived:
            return web.json_response({"ok": False, "error": "is_archived"})
        if not body.get("text") and not body.get("blocks"):
            return web.json_response({"ok": False, "error": "no_text"})
        body["_ok"] = True
        ts = f"1700000000.{next(self._ts):06d}"
        channel_id = "D0FAKEDM" if str(channel).startswith(("U", "W")) else str(channel)
        message = {
            "type": "message",
            "user": "U0FAKEBOT",
            "bot_id": "B0FAKEBOT",
            "text": body.get("text", ""),
            "ts": ts,
            "blocks": body.get("blocks") or [],
        }
        return web.json_response({"ok": True, "channel": channel_id, "ts": ts, "message": message})
