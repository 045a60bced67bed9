"""Local sinks for `make run`: what notify sends, caught on loopback so a newcomer sees it
without an account anywhere. One process, three servers:

- SMTP on 127.0.0.1:1025 (aiosmtpd): each mail saved as .local/sinks/mail/<time>-<n>.eml;
- webhooks on 127.0.0.1:8090 (deploy/notify.example.yaml's local-sink endpoint): the Standard
  Webhooks signature verified with BATON_NOTIFY_SECRET_LOCAL_SINK, each delivery appended to
  .local/sinks/webhooks.jsonl (401 and `"verified": false` when it does not verify);
- a fake Slack Web API on 127.0.0.1:8026 (`POST /api/chat.postMessage`, Bearer
  SLACK_BOT_TOKEN): each message appended to .local/sinks/slack.jsonl, answered the way Slack
  answers.

Ports and paths: SINK_SMTP_PORT, SINK_WEBHOOK_PORT, SINK_SLACK_PORT, BATON_LOCAL_DIR.
`deploy/local/demo.py` prints what they received.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HOST = "127.0.0.1"


def sink_dir() -> Path:
    local = Path(os.environ.get("BATON_LOCAL_DIR") or Path.cwd() / ".local")
    path = local / "sinks"
    (path / "mail").mkdir(parents=True, exist_ok=True)
    return path


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


class MailSink:
    """aiosmtpd handler: every message accepted and written as an .eml file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._n = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        path = self.folder / f"{stamp}-{next(self._n)}.eml"
        content = envelope.original_content or envelope.content or b""
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return "250 Message accepted for delivery"


def webhook_app(out: Path, secret: str | None) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = False
        if secret:
            try:
                Webhook(secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        _append(
            out,
            {
                "received_at": _now(),
                "path": request.path,
                "webhook_id": headers.get("webhook-id"),
                "verified": verified,
                "event": event,
            },
        )
        return web.Response(status=204 if verified else 401)

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/{tail:.*}", receive)
    return app


def slack_app(out: Path, token: str | None) -> web.Application:
    counter = itertools.count(1)

    async def post_message(request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            data = await request.json()
        else:
            data = {k: str(v) for k, v in (await request.post()).items()}
            if "blocks" in data:
                data["blocks"] = json.loads(data["blocks"])
        auth = request.headers.get("Authorization", "")
        given = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else data.get("token")
        if not given:
            return web.json_response({"ok": False, "error": "not_authed"})
        if token and given != token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        channel = data.get("channel")
        if not channel:
            return web.json_response({"ok": False, "error": "channel_not_found"})
        ts = f"{int(time.time())}.{next(counter):06d}"
        record = {
            "received_at": _now(),
            "channel": channel,
            "text": data.get("text"),
            "blocks": data.get("blocks"),
            "ts": ts,
        }
        _append(out, record)
        message = {"type": "message", "user": "U0LOCALBOT", "text": record["text"], "ts": ts}
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})

    app = web.Application()
    app.router.add_post("/api/chat.postMessage", post_message)
    return app


async def serve() -> None:
    folder = sink_dir()
    smtp_port = int(os.environ.get("SINK_SMTP_PORT", "1025"))
    webhook_port = int(os.environ.get("SINK_WEBHOOK_PORT", "8090"))
    slack_port = int(os.environ.get("SINK_SLACK_PORT", "8026"))
    loop = asyncio.get_running_loop()
    handler = MailSink(folder / "mail")
    smtp = await loop.create_server(
        lambda: SMTP(handler, hostname="baton-sink", loop=loop), HOST, smtp_port
    )
    runners = []
    for app, port in (
        (webhook_app(folder / "webhooks.jsonl", os.environ.get("BATON_NOTIFY_SECRET_LOCAL_SINK")),
         webhook_port),
        (slack_app(folder / "slack.jsonl", os.environ.get("SLACK_BOT_TOKEN")), slack_port),
    ):  # fmt: skip
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, HOST, port).start()
        runners.append(runner)
    print(
        f"sinks: SMTP {HOST}:{smtp_port}, webhooks http://{HOST}:{webhook_port}/, "
        f"Slack http://{HOST}:{slack_port}/api/ -> {folder}",
        flush=True,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    smtp.close()
    for runner in runners:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve())
