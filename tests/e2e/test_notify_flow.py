"""End to end with notify (issue 16): a form post to intake becomes an assignment, and notify
(a real `baton serve notify` process) delivers it: the signed lead.assigned to a webhook
receiver (verified with standardwebhooks), the owner's Slack card to a loopback Slack Web
API, the lead's acknowledgement e-mail to a real SMTP server. With notify stopped routing
works the same, and once notify is back its deliveries catch up."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EventReader
from tests.e2e.conftest import Stack
from tests.e2e.notify_sinks import DedupingReceiver, Mailbox, add_notify, notify_config, smtp_sink
from tests.e2e.test_flow import FORM, post_form, unique
from tests.notify.conftest import new_secret
from tests.notify.slack_fake import FakeSlack

pytestmark = pytest.mark.e2e

SLACK_TOKEN = "xoxb-e2e-notify-token"


@dataclass
class Notified:
    stack: Stack
    rx: DedupingReceiver
    slack: FakeSlack
    mail: Mailbox
    policy: dict[str, Any]


def quick_acknowledgements(stack: Stack, tmp: Path) -> tuple[dict[str, Any], Path]:
    policy: dict[str, Any] = yaml.safe_load(Path(stack.env["POLICY_PATH"]).read_text())
    for source in policy["sources"]:
        if "acknowledge" in source:
            source["acknowledge"]["delay_seconds"] = 1
    path = tmp / "notify-policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return policy, path


@pytest.fixture
async def notified(stack: Stack, tmp_path: Path) -> AsyncIterator[Notified]:
    """The e2e stack plus notify, pointed at a webhook receiver, a Slack fake and an SMTP
    server on loopback. Notify reads a copy of the stack's policy whose acknowledgements
    wait 1 s instead of the example's 10 (the router does not read acknowledgements)."""
    policy, notify_policy = quick_acknowledgements(stack, tmp_path)
    slack = await FakeSlack(token=SLACK_TOKEN).start()
    try:
        with smtp_sink() as (mail, smtp_port):
            async with DedupingReceiver(secret=new_secret()) as rx:
                add_notify(
                    stack,
                    config=notify_config(tmp_path, "e2e-sink", rx.url()),
                    secret=rx.secret or "",
                    smtp_port=smtp_port,
                    extra={
                        "SLACK_BOT_TOKEN": SLACK_TOKEN,
                        "SLACK_BASE_URL": slack.base_url,
                    },
                )
                stack.env_for["notify"] = {"POLICY_PATH": str(notify_policy)}
                await asyncio.to_thread(stack.start, "notify")
                yield Notified(stack, rx, slack, mail, policy)
    finally:
        await slack.stop()


async def until(predicate: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout}s")


def slack_id(policy: dict[str, Any], rep_id: str) -> str | None:
    for team in policy["teams"]:
        for rep in team["reps"]:
            if rep["id"] == rep_id:
                return str(rep["slack_user_id"]) if rep.get("slack_user_id") else None
    return None


async def test_assignment_reaches_receiver_owner_and_lead_and_survives_notify_down(
    notified: Notified,
) -> None:
    stack, rx, slack, mail = notified.stack, notified.rx, notified.slack, notified.mail
    topics = stack.settings.topics
    async with EventReader(stack.settings, topics.leads_assigned) as reader:
        email = unique(FORM["email"]).lower()
        resp = post_form(stack, {**FORM, "email": email})
        assert resp.status_code == 202, resp.text
        lead_id = resp.json()["lead_id"]
        assigned = await reader.wait_for(
            lambda e: e.type == "lead.assigned" and e.subject == lead_id
        )

        # The receiver got the signed lead.assigned (webhook-id = the CloudEvent id).
        await until(lambda: assigned.id in rx.processed, "signed lead.assigned at the receiver")
        assert rx.processed[assigned.id]["data"]["lead_id"] == lead_id
        assert all(r.verified for r in rx.requests)

        # The owner's Slack card (a direct message to their Slack id, or their team channel).
        owner = assigned.data["owner"]
        where = {slack_id(notified.policy, owner["id"]), "#enterprise-leads"} - {None}

        def card() -> list[dict[str, Any]]:
            return [
                b for b in slack.posted if b.get("channel") in where and lead_id in json.dumps(b)
            ]

        await until(lambda: bool(card()), "the owner's Slack card")
        assert any(b.get("blocks") for b in card())

        # The lead's acknowledgement names the owner.
        await until(lambda: bool(mail.to(email)), "the acknowledgement e-mail")
        [ack] = mail.to(email)
        assert owner["name"].split()[0] in ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]

        # Notify down: routing goes on; once notify is back the deliveries catch up.
        await asyncio.to_thread(stack.stop, "notify")
        email2 = unique("grace.hopper@acme-industries.com").lower()
        resp = post_form(stack, {**FORM, "email": email2, "first_name": "grace"})
        assert resp.status_code == 202, resp.text
        lead2 = resp.json()["lead_id"]
        assigned2 = await reader.wait_for(
            lambda e: e.type == "lead.assigned" and e.subject == lead2
        )
        assert assigned2.id not in rx.processed and not mail.to(email2)
        await asyncio.to_thread(stack.start, "notify")
        await until(lambda: assigned2.id in rx.processed, "lead.assigned after notify is back")
        await until(lambda: bool(mail.to(email2)), "the acknowledgement after notify is back")
