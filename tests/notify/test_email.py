"""EmailSender against a real SMTP server on loopback (aiosmtpd): what arrives, parsed as
MIME, and how the server's answers map to outcomes."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.notify.channels.base import Outgoing
from services.notify.channels.email import EmailSender
from services.notify.domain.people import plan_people
from tests.notify.people_events import LINKS, assigned_event, contact, example_policy

pytestmark = pytest.mark.integration
# aiosmtpd's server thread logs every connection at INFO, also after a test's captured stream
# is closed (a "--- Logging error ---" in the output); its warnings still show.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class Mailbox:
    """The aiosmtpd handler: keeps each message; `rcpt_reply`/`data_reply` script failures."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def mail(**overrides: Any) -> Outgoing:
    body = {
        "to": "ada@example.org",
        "from": "Example Sales <sales@example.com>",
        "subject": "Thanks for your request, Ada",
        "text": "Hello Ada,\nAnna Schmidt will contact you.\n",
        "html": "<p>Hello Ada,</p><p><b>Anna Schmidt</b> will contact you.</p>",
        "reply_to": "anna.schmidt@example.com",
    }
    body.update(overrides)
    return Outgoing("0f4b1c2a-msg", "e-1", "email", str(body["to"]), body)


def parts(msg: EmailMessage) -> dict[str, str]:
    return {p.get_content_type(): p.get_content() for p in msg.iter_parts()}


async def test_delivered_as_multipart_alternative(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    sender = EmailSender(host="127.0.0.1", port=port)
    result = await sender.send(mail())
    assert (result.outcome, result.status) == ("delivered", 250)
    [(mail_from, rcpts, msg)] = box.messages
    assert mail_from == "sales@example.com" and rcpts == ["ada@example.org"]
    assert msg["From"] == "Example Sales <sales@example.com>" and msg["To"] == "ada@example.org"
    assert msg["Subject"] == "Thanks for your request, Ada"
    assert msg["Reply-To"] == "anna.schmidt@example.com"
    assert msg["Message-ID"] == "<0f4b1c2a-msg@baton.notify>"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    got = parts(msg)
    assert got["text/plain"].replace("\r\n", "\n") == "Hello Ada,\nAnna Schmidt will contact you.\n"
    assert "<b>Anna Schmidt</b>" in got["text/html"]


async def test_same_message_id_on_every_attempt(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    sender = EmailSender(host="127.0.0.1", port=port)
    await sender.send(mail())
    await sender.send(mail())
    assert len({m[2]["Message-ID"] for m in box.messages}) == 1


async def test_planned_acknowledgement_and_assignment_arrive(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    pol = example_policy()
    ev = assigned_event(pol, "rep-tom", lead=contact(first_name="Zoë", last_name="Ångström"))
    planned = [p for p in plan_people(ev, pol, links=LINKS) if p.channel == "email"]
    assert {p.kind for p in planned} == {"assignment", "acknowledgement"}
    sender = EmailSender(host="127.0.0.1", port=port)
    for p in planned:
        out = Outgoing(p.message_id(ev.id), ev.id, "email", p.target, p.body)
        assert (await sender.send(out)).outcome == "delivered"
    by_to = {m[2]["To"]: m[2] for m in box.messages}
    ack = by_to["ada.lovelace@acme-industries.com"]
    assert ack["Subject"] == "Thanks for your request, Zoë"
    assert ack["Reply-To"] == "tom.hughes@example.com"
    assert "Tom Hughes from our SMB Sales team" in parts(ack)["text/plain"]
    card = by_to["tom.hughes@example.com"]
    assert card["From"] == LINKS.default_from
    assert "Zoë Ångström" in card["Subject"] and "Zoë Ångström" in parts(card)["text/html"]


async def test_4xx_is_a_retry(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    box.data_reply = "451 4.3.0 Try again later"
    result = await EmailSender(host="127.0.0.1", port=port).send(mail())
    assert (result.outcome, result.status) == ("retry", 451)


async def test_5xx_is_rejected_without_the_address_in_the_error(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    box.rcpt_reply = "550 5.1.1 <ada@example.org>: Recipient address rejected"
    result = await EmailSender(host="127.0.0.1", port=port).send(mail())
    assert (result.outcome, result.status) == ("rejected", 550)
    assert result.error is not None and "ada" not in result.error
    box.rcpt_reply = None
    box.data_reply = "554 5.7.1 Message rejected as spam"
    result = await EmailSender(host="127.0.0.1", port=port).send(mail())
    assert (result.outcome, result.status) == ("rejected", 554)


async def test_greylisted_recipient_is_a_retry(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    box.rcpt_reply = "450 4.2.0 Greylisted, come back later"
    result = await EmailSender(host="127.0.0.1", port=port).send(mail())
    assert (result.outcome, result.status) == ("retry", 450)


async def test_connection_refused_is_a_retry() -> None:
    result = await EmailSender(host="127.0.0.1", port=free_port()).send(mail())
    assert result.outcome == "retry" and result.error and result.error.startswith("smtp ")


async def test_silent_server_times_out_as_a_retry() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never greets

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    try:
        result = await EmailSender(host="127.0.0.1", port=port, timeout_seconds=0.5).send(mail())
    finally:
        server.close()
    assert result.outcome == "retry" and time.monotonic() - started < 3


async def test_starttls_required_but_not_offered_is_a_retry(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    result = await EmailSender(host="127.0.0.1", port=port, starttls=True).send(mail())
    assert result.outcome == "retry" and box.messages == []


@pytest.fixture
async def smtp_auth() -> AsyncIterator[tuple[Mailbox, int]]:
    def authenticator(
        server: Any, session: Any, envelope: Any, _mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"baton",
            b"s3cret",
        )
        return AuthResult(success=ok, handled=False)

    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield box, port
    controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_login(smtp_auth: tuple[Mailbox, int]) -> None:
    box, port = smtp_auth
    good = EmailSender(host="127.0.0.1", port=port, username="baton", password="s3cret")
    assert (await good.send(mail())).outcome == "delivered"
    bad = EmailSender(host="127.0.0.1", port=port, username="baton", password="wrong")
    result = await bad.send(mail())
    assert (result.outcome, result.status) == ("retry", 535)
    anonymous = await EmailSender(host="127.0.0.1", port=port).send(mail())
    assert anonymous.outcome == "retry" and anonymous.status == 530
    assert len(box.messages) == 1


async def test_header_injection_is_impossible(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    out = mail(subject="Hi\r\nBcc: victim@example.net")
    assert (await EmailSender(host="127.0.0.1", port=port).send(out)).outcome == "delivered"
    [(_, rcpts, msg)] = box.messages
    assert rcpts == ["ada@example.org"] and msg["Bcc"] is None
    assert msg["Subject"] == "Hi Bcc: victim@example.net"


async def test_bad_body_is_rejected() -> None:
    out = Outgoing("m", "e", "email", "x", {"subject": "no recipient"})
    result = await EmailSender(host="127.0.0.1", port=free_port()).send(out)
    assert (result.outcome, result.error) == ("rejected", "email body KeyError")


async def test_connections_are_reused_and_dropped_after_a_failure(
    smtp: tuple[Mailbox, int],
) -> None:
    box, port = smtp
    sender = EmailSender(host="127.0.0.1", port=port, local_hostname="notify.test")
    for _ in range(3):
        assert (await sender.send(mail())).outcome == "delivered"
    assert sender.connects == 1 and len(box.messages) == 3
    box.data_reply = "451 try again later"
    assert (await sender.send(mail())).outcome == "retry"
    box.data_reply = None
    assert (await sender.send(mail())).outcome == "delivered"
    assert sender.connects == 2, "a connection that failed is not reused"
    await sender.aclose()


async def test_stale_pooled_connection_costs_no_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The relay restarts while a connection idles in the pool: the NOOP before reuse
    notices, and the message goes out on a new connection in the same attempt."""
    monkeypatch.setattr("services.notify.channels.email.IDLE_CHECK_SECONDS", 0.0)
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    sender = EmailSender(host="127.0.0.1", port=port)
    try:
        assert (await sender.send(mail())).outcome == "delivered"
        controller.stop()  # closes the server side of the pooled connection
        controller = Controller(box, hostname="127.0.0.1", port=port)
        controller.start()
        assert (await sender.send(mail())).outcome == "delivered"
        assert sender.connects == 2 and len(box.messages) == 2
    finally:
        controller.stop()
        await sender.aclose()


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"from": "Zoë Ångström <zoe@example.com>", "subject": "Neuer Lead: Zoë (A, 87 Punkte)"},
        {"text": "no newline at the end", "html": ""},
        {"text": "Grüße\r\nvon Zoë\n", "html": "<p>" + "x" * 1200 + "</p>"},
        {"subject": "  folded \t subject  " + "y" * 950, "reply_to": ""},
    ],
)
def test_direct_encoding_reads_as_the_email_package_would_build_it(
    overrides: dict[str, str],
) -> None:
    """encode_message skips the email package's cost; a mailbox must not see a difference."""
    from email.parser import BytesParser

    from services.notify.channels.email import build_message, encode_message

    body = mail(**overrides).body
    encoded = encode_message(body, message_id="m-1")
    assert encoded is not None
    sender, rcpts, raw = encoded
    assert (sender, rcpts) == (
        "zoe@example.com" if "Zoë" in str(body["from"]) else "sales@example.com",
        ["ada@example.org"],
    )
    fast = BytesParser(policy=policy.default).parsebytes(raw)
    slow = message_from_bytes(
        build_message(body, message_id="m-1").as_bytes(), policy=policy.default
    )
    assert isinstance(fast, EmailMessage) and isinstance(slow, EmailMessage)
    for name in ("From", "To", "Subject", "Reply-To", "Message-ID", "Auto-Submitted"):
        assert fast[name] == slow[name], name
    assert fast.get_content_type() == slow.get_content_type()
    fast_parts = parts(fast) if fast.is_multipart() else {"text/plain": fast.get_content()}
    slow_parts = parts(slow) if slow.is_multipart() else {"text/plain": slow.get_content()}
    assert {k: v.replace("\r\n", "\n") for k, v in fast_parts.items()} == {
        k: v.replace("\r\n", "\n") for k, v in slow_parts.items()
    }


@pytest.mark.parametrize(
    "field,value",
    [
        ("to", "zoë@exämple.org"),
        ("to", "a@example.org, b@example.org"),
        ("from", "Sales\r\nBcc: x@example.net <s@example.com>"),
        ("to", "not an address"),
    ],
)
def test_unusual_addresses_take_the_email_package_path(field: str, value: str) -> None:
    from services.notify.channels.email import encode_message

    assert encode_message(mail(**{field: value}).body, message_id="m") is None
