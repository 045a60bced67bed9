"""SlackSender: the real slack-sdk AsyncWebClient against a loopback fake of the Web API
(tests/notify/slack_fake.py), every documented answer mapped to an outcome."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from services.notify.channels.base import Outgoing
from services.notify.channels.slack import SlackSender, classify
from services.notify.domain.people import plan_people
from tests.notify.people_events import LINKS, assigned_event, example_policy
from tests.notify.slack_fake import Canned, FakeSlack, error, ratelimited

pytestmark = pytest.mark.integration
TOKEN = "xoxb-test-token"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack(token=TOKEN).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def sender(slack: FakeSlack) -> AsyncIterator[SlackSender]:
    s = SlackSender(token=TOKEN, base_url=slack.base_url, timeout_seconds=2.0)
    yield s
    await s.aclose()


def message(channel: str = "U07ASCHMIDT", text: str = "hello") -> Outgoing:
    body = {
        "channel": channel,
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }
    return Outgoing("m-1", "e-1", "slack", channel, body)


async def test_delivered_with_the_documented_request(slack: FakeSlack, sender: SlackSender) -> None:
    result = await sender.send(message())
    assert result.outcome == "delivered" and result.status == 200
    [req] = slack.received
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert req.content_type == "application/json"
    assert req.body["channel"] == "U07ASCHMIDT" and req.body["text"] == "hello"
    assert req.body["blocks"][0]["text"]["text"] == "hello"
    assert req.body["unfurl_links"] is False


async def test_a_planned_assignment_card_is_accepted(slack: FakeSlack, sender: SlackSender) -> None:
    policy = example_policy()
    planned = plan_people(assigned_event(policy, "rep-anna"), policy, links=LINKS)
    for p in (p for p in planned if p.channel == "slack"):
        result = await sender.send(Outgoing(p.message_id("e-9"), "e-9", "slack", p.target, p.body))
        assert result.outcome == "delivered"
    assert [b["channel"] for b in slack.posted] == ["U07ASCHMIDT", "#enterprise-leads"]
    assert slack.posted[0]["blocks"][0]["type"] == "header"


async def test_429_is_a_retry_after_and_not_retried_inside(
    slack: FakeSlack, sender: SlackSender
) -> None:
    slack.queue.append(ratelimited(7))
    result = await sender.send(message())
    assert (result.outcome, result.status, result.retry_after_seconds) == ("retry", 429, 7.0)
    assert result.error == "slack ratelimited"
    assert len(slack.received) == 1  # slack-sdk did not swallow it with a retry of its own
    assert (await sender.send(message())).outcome == "delivered"


@pytest.mark.parametrize("code", ["channel_not_found", "is_archived", "user_not_found"])
async def test_gone(slack: FakeSlack, sender: SlackSender, code: str) -> None:
    slack.queue.append(error(code))
    result = await sender.send(message())
    assert (result.outcome, result.error) == ("gone", f"slack {code}")


async def test_unknown_and_archived_channels_are_gone(slack: FakeSlack) -> None:
    slack.known = {"C0KNOWN", "C0OLD"}
    slack.archived = {"C0OLD"}
    s = SlackSender(token=TOKEN, base_url=slack.base_url)
    try:
        assert (await s.send(message("C0KNOWN"))).outcome == "delivered"
        assert (await s.send(message("C0NOPE"))).error == "slack channel_not_found"
        assert (await s.send(message("C0OLD"))).outcome == "gone"
    finally:
        await s.aclose()


async def test_bad_token_is_a_retry(slack: FakeSlack) -> None:
    s = SlackSender(token="xoxb-wrong", base_url=slack.base_url)
    try:
        result = await s.send(message())
    finally:
        await s.aclose()
    assert (result.outcome, result.error) == ("retry", "slack invalid_auth")
    slack.queue.append(error("not_authed"))
    assert classify(200, "not_authed").outcome == "retry"


async def test_no_token_sends_nothing(slack: FakeSlack) -> None:
    s = SlackSender(token="", base_url=slack.base_url)
    result = await s.send(message())
    assert (result.outcome, result.error) == ("retry", "slack token not configured")
    assert slack.received == []


@pytest.mark.parametrize("code", ["invalid_blocks", "msg_too_long", "no_text"])
async def test_rejected(slack: FakeSlack, sender: SlackSender, code: str) -> None:
    slack.queue.append(error(code))
    assert (await sender.send(message())).outcome == "rejected"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_no_text_from_the_fake_itself(slack: FakeSlack, sender: SlackSender) -> None:
    out = Outgoing("m", "e", "slack", "U1", {"channel": "U1", "text": "", "blocks": None})
    result = await sender.send(out)
    assert (result.outcome, result.error) == ("rejected", "slack no_text")


async def test_server_error_with_html_is_a_retry(slack: FakeSlack, sender: SlackSender) -> None:
    slack.queue.append(Canned(503, "<html>upstream down</html>", {"Retry-After": "30"}))
    result = await sender.send(message())
    assert (result.outcome, result.status) == ("retry", 503)
    slack.queue.append(Canned(500, {"ok": False, "error": "internal_error"}))
    assert (await sender.send(message())).outcome == "retry"


async def test_connection_refused_is_a_retry() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = SlackSender(token=TOKEN, base_url=f"http://127.0.0.1:{port}/api/")
    try:
        result = await sender.send(message())
    finally:
        await sender.aclose()
    assert result.outcome == "retry" and result.error and result.error.startswith("slack ")


async def test_timeout_is_a_retry(slack: FakeSlack) -> None:
    slack.hang = True
    sender = SlackSender(token=TOKEN, base_url=slack.base_url, timeout_seconds=0.5)
    started = time.monotonic()
    try:
        result = await sender.send(message())
    finally:
        await sender.aclose()
    assert result.outcome == "retry" and time.monotonic() - started < 3
    assert len(slack.received) == 1


async def test_fake_speaks_form_encoding_too(slack: FakeSlack) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(
            slack.base_url + "chat.postMessage",
            data={"token": TOKEN, "channel": "C0X", "text": "hi", "blocks": "[]"},
        )
    body = r.json()
    assert body["ok"] is True and body["channel"] == "C0X" and body["ts"]
    assert body["message"]["text"] == "hi"
    await asyncio.sleep(0)


def test_classify_table() -> None:
    assert classify(429, None, {"Retry-After": "3"}).retry_after_seconds == 3.0
    assert classify(200, "token_revoked").outcome == "retry"
    assert classify(200, "not_in_channel").outcome == "retry"
    assert classify(200, "user_disabled").outcome == "gone"
    assert classify(502, None).outcome == "retry"
    assert classify(200, "invalid_arguments").outcome == "rejected"
