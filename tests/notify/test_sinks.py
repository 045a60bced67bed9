"""The local sinks `make run` uses (deploy/local/sinks.py), as a real process: notify's own
senders deliver to them and the files show what arrived."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from services.notify.channels.base import Outgoing
from services.notify.channels.email import EmailSender
from services.notify.channels.slack import SlackSender
from tests.conftest import ROOT

pytestmark = pytest.mark.integration
TOKEN = "xoxb-local-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[tuple[dict[str, int], Path, str]]:
    ports = {"smtp": free_port(), "webhook": free_port(), "slack": free_port()}
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    env = {
        **os.environ,
        "BATON_LOCAL_DIR": str(tmp_path),
        "SINK_SMTP_PORT": str(ports["smtp"]),
        "SINK_WEBHOOK_PORT": str(ports["webhook"]),
        "SINK_SLACK_PORT": str(ports["slack"]),
        "SLACK_BOT_TOKEN": TOKEN,
        "BATON_NOTIFY_SECRET_LOCAL_SINK": secret,
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy" / "local" / "sinks.py")],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("sinks: SMTP")
    yield ports, tmp_path / "sinks", secret
    proc.terminate()
    proc.wait(timeout=10)


async def test_sinks_keep_what_notify_sends(sinks: tuple[dict[str, int], Path, str]) -> None:
    ports, folder, secret = sinks
    slack = SlackSender(token=TOKEN, base_url=f"http://127.0.0.1:{ports['slack']}/api/")
    try:
        body = {"channel": "U07ASCHMIDT", "text": "New lead", "blocks": [{"type": "divider"}]}
        result = await slack.send(Outgoing("m", "e", "slack", "U07ASCHMIDT", body))
        assert result.outcome == "delivered"
        wrong = SlackSender(token="xoxb-other", base_url=f"http://127.0.0.1:{ports['slack']}/api/")
        assert (await wrong.send(Outgoing("m", "e", "slack", "U1", body))).outcome == "retry"
        await wrong.aclose()
    finally:
        await slack.aclose()
    mail = {
        "to": "ada@example.org",
        "from": "s@example.com",
        "subject": "Hi",
        "text": "t",
        "html": "<p>h</p>",
    }
    email = EmailSender(host="127.0.0.1", port=ports["smtp"])
    assert (
        await email.send(Outgoing("m-1", "e", "email", "ada@example.org", mail))
    ).outcome == "delivered"

    event = json.dumps({"id": "ev-1", "type": "lead.assigned"})
    now = datetime.now(UTC)
    signed = {
        "webhook-id": "ev-1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("ev-1", now, event),
    }
    url = f"http://127.0.0.1:{ports['webhook']}/webhooks/baton"
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, content=event, headers=signed)).status_code == 204
        forged = {**signed, "webhook-signature": "v1,AAAA"}
        assert (await http.post(url, content=event, headers=forged)).status_code == 401

    # each sink writes before it answers: everything is on disk by now
    [saved] = list((folder / "mail").glob("*.eml"))
    msg = message_from_bytes(saved.read_bytes(), policy=policy.default)
    assert msg["To"] == "ada@example.org" and msg["Subject"] == "Hi"
    [posted] = [json.loads(x) for x in (folder / "slack.jsonl").read_text().splitlines()]
    assert posted["channel"] == "U07ASCHMIDT" and posted["blocks"] == [{"type": "divider"}]
    hooks = [json.loads(x) for x in (folder / "webhooks.jsonl").read_text().splitlines()]
    assert [(h["webhook_id"], h["verified"]) for h in hooks] == [("ev-1", True), ("ev-1", False)]
    assert hooks[0]["event"]["type"] == "lead.assigned"
