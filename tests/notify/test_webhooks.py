"""WebhookSender against real loopback receivers: signed per Standard Webhooks (verified with
the library), every bad answer a failed attempt and never an exception, private targets
refused unless allowed."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from services.notify.channels.base import Outgoing
from services.notify.channels.webhook import CONTENT_TYPE, WebhookSender
from services.notify.config import parse_config
from services.notify.domain.targets import refused_reason
from tests.notify.receivers import Receiver, Reply, always, self_signed_tls

# Real HTTP(S) receivers on loopback sockets (tests/notify/receivers.py).
pytestmark = pytest.mark.integration


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def sender_for(
    url: str,
    secrets: tuple[str, ...],
    *,
    allow_private: bool = True,
    timeout: float = 5.0,
    resolver: object = None,
    max_bytes: int = 65536,
) -> WebhookSender:
    config = parse_config(
        f"""
endpoints:
  - name: ep
    url: {url}
    events: [lead.assigned]
    secrets: [{{env: X}}]
    timeout_seconds: {timeout}
    allow_private: {str(allow_private).lower()}
"""
    )
    kwargs = {"resolver": resolver} if resolver is not None else {}
    return WebhookSender(
        config=config,
        secrets={"ep": secrets},
        max_response_bytes=max_bytes,
        **kwargs,  # type: ignore[arg-type]
    )


EVENT = {
    "specversion": "1.0",
    "id": "4c0a3b52-1f3e-5d7a-9b1c-2d3e4f5a6b7c",
    "source": "/baton/router",
    "type": "lead.assigned",
    "time": "2026-12-02T05:00:00Z",
    "subject": "lead-1",
    "datacontenttype": "application/json",
    "data": {"lead_id": "lead-1", "owner": {"name": "Rep A"}},
}


def out() -> Outgoing:
    return Outgoing(
        message_id="m-1", event_id=EVENT["id"], channel="webhook", target="ep",  # type: ignore[arg-type]
        body={"event": EVENT},
    )  # fmt: skip


async def test_delivery_is_the_cloudevent_signed_per_standard_webhooks() -> None:
    key = secret()
    async with Receiver(always(Reply()), secret=key) as rx:
        sender = sender_for(rx.url(), (key,))
        result = await sender.send(out())
        await sender.aclose()
    assert result.outcome == "delivered" and result.status == 200
    [req] = rx.requests
    assert req.verified
    assert req.headers["webhook-id"] == EVENT["id"]
    assert req.headers["content-type"] == CONTENT_TYPE
    assert req.event() == EVENT


async def test_rotation_every_secret_signs_so_either_side_verifies() -> None:
    old, new = secret(), secret()
    async with (
        Receiver(always(Reply()), secret=old) as rx_old,
        Receiver(always(Reply()), secret=new) as rx_new,
    ):
        for rx in (rx_old, rx_new):
            sender = sender_for(rx.url(), (old, new))
            assert (await sender.send(out())).outcome == "delivered"
            await sender.aclose()
    assert rx_old.requests[0].verified and rx_new.requests[0].verified
    sigs = rx_new.requests[0].headers["webhook-signature"].split(" ")
    assert len(sigs) == 2  # newest first


async def test_a_wrong_secret_does_not_verify() -> None:
    async with Receiver(always(Reply()), secret=secret()) as rx:
        sender = sender_for(rx.url(), (secret(),))
        await sender.send(out())
        await sender.aclose()
    assert not rx.requests[0].verified


@pytest.mark.parametrize(
    ("reply", "outcome", "retry_after"),
    [
        (Reply(status=500), "retry", None),
        (Reply(status=429, headers={"retry-after": "7"}), "retry", 7.0),
        (Reply(status=503, headers={"retry-after": "3"}), "retry", 3.0),
        (Reply(status=410), "gone", None),
        (Reply(status=400), "rejected", None),
        (Reply(status=408), "retry", None),
        (Reply(status=302, headers={"location": "http://127.0.0.1:1/elsewhere"}), "retry", None),
        (Reply(status=204, body=b""), "delivered", None),
    ],
)
async def test_answers_are_classified(
    reply: Reply, outcome: str, retry_after: float | None
) -> None:
    async with Receiver(always(reply)) as rx:
        sender = sender_for(rx.url(), (secret(),))
        result = await sender.send(out())
        await sender.aclose()
    assert result.outcome == outcome
    assert result.status == reply.status
    assert result.retry_after_seconds == retry_after
    assert len(rx.requests) == 1  # a redirect is never followed


async def test_a_huge_response_body_is_a_failed_attempt() -> None:
    async with Receiver(always(Reply(body=b"x" * 2_000_000))) as rx:
        sender = sender_for(rx.url(), (secret(),), max_bytes=4096)
        result = await sender.send(out())
        await sender.aclose()
    assert result.outcome == "retry" and result.error == "response body over 4096 bytes"


async def test_no_answer_is_a_timeout() -> None:
    async with Receiver(always(Reply(hang=True))) as rx:
        sender = sender_for(rx.url(), (secret(),), timeout=0.3)
        result = await sender.send(out())
        await sender.aclose()
    assert result.outcome == "retry" and result.error == "timeout after 0.3 s"


async def test_connection_refused_is_a_failed_attempt() -> None:
    async with Receiver(always(Reply())) as rx:
        url = rx.url()
    sender = sender_for(url, (secret(),))
    result = await sender.send(out())
    await sender.aclose()
    assert result.outcome == "retry" and result.error == "ClientConnectorError"


async def test_invalid_tls_is_a_failed_attempt(tmp_path: Path) -> None:
    async with Receiver(always(Reply()), tls=self_signed_tls(tmp_path)) as rx:
        sender = sender_for(rx.url(host="localhost"), (secret(),))
        result = await sender.send(out())
        await sender.aclose()
    assert result.outcome == "retry" and result.error is not None
    assert result.error.startswith("tls error")
    assert rx.requests == []


async def test_private_targets_are_refused_unless_allowed(tmp_path: Path) -> None:
    async with Receiver(always(Reply()), tls=self_signed_tls(tmp_path)) as rx:
        # https to localhost without allow_private: resolved, found loopback, never contacted
        sender = sender_for(rx.url(host="localhost"), (secret(),), allow_private=False)
        result = await sender.send(out())
        await sender.aclose()
    assert result.outcome == "retry"
    assert result.error == "target refused: resolves to a loopback address (allow_private is off)"
    assert rx.requests == []


async def test_every_resolved_address_is_checked() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "169.254.169.254"]  # one public, one cloud metadata

    sender = sender_for(
        "https://hooks.example.com/x", (secret(),), allow_private=False, resolver=resolver
    )
    result = await sender.send(out())
    await sender.aclose()
    assert result.error == "target refused: resolves to a link-local address (allow_private is off)"


@pytest.mark.parametrize(
    ("addresses", "refused"),
    [
        (["93.184.215.14"], False),
        (["2606:2800:21f:cb07:6820:80da:af6b:8b2c"], False),
        (["10.1.2.3"], True),
        (["192.168.0.10"], True),
        (["172.16.0.1"], True),
        (["100.64.0.1"], True),  # shared address space (carrier NAT)
        (["127.0.0.1"], True),
        (["::1"], True),
        (["fe80::1%eth0"], True),
        (["::ffff:127.0.0.1"], True),  # IPv4-mapped loopback
        (["0.0.0.0"], True),
        (["224.0.0.1"], True),
        ([], True),
    ],
)
def test_address_classes(addresses: list[str], refused: bool) -> None:
    assert (refused_reason(addresses) is not None) is refused


async def test_a_compressed_answer_is_never_expanded() -> None:
    """A 2xx whose gzip body would expand to 5 MB: only the ~5 KB on the wire are read (the
    cap counts wire bytes), so it is delivered without inflating anything."""
    import gzip

    bomb = gzip.compress(b"\0" * 5_000_000)
    reply = Reply(body=bomb, headers={"content-encoding": "gzip"})
    async with Receiver(always(reply)) as rx:
        sender = sender_for(rx.url(), (secret(),), max_bytes=len(bomb) + 1024)
        result = await sender.send(out())
        await sender.aclose()
    assert result.outcome == "delivered"
