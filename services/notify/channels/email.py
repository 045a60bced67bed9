"""E-mail over SMTP (aiosmtplib): planned bodies as multipart/alternative messages.

How the server's answers map: delivered when the server takes the DATA; a 4xx reply (greylisting,
mailbox busy, rate limits) -> retry; a 5xx reply (no such user, policy rejection) -> rejected;
connection errors, timeouts and a dropped connection -> retry. The relay's own setup (login
required or refused: 530/534/535/538, STARTTLS not offered) -> retry as well, so fixing the
relay delivers the backlog, as with Slack's token. Errors carry the reply code only: SMTP
texts often quote the address.

The Message-ID derives from the notify message id, so every attempt of one message carries the
same id and a mailbox that saw an earlier attempt can tell it is the same mail.

Connections are pooled: a connection that carried a message is kept (up to `max_connections`,
the email endpoint's slots) and carries the next, so a busy notify does not open, greet and log
in once per message. A connection is dropped after any failure (the next send opens a fresh
one), and one idle for more than `IDLE_CHECK_SECONDS` is checked with a NOOP before reuse (a
relay may have closed it), so a stale connection costs no attempt. The EHLO name is looked up
once (`socket.getfqdn`, in a thread) unless `local_hostname` is given.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import time
import uuid
from email.header import Header
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, parseaddr
from typing import Any

import aiosmtplib

from services.notify.channels.base import AttemptResult, Outgoing


def build_message(body: dict[str, Any], *, message_id: str) -> EmailMessage:
    """The MIME message of a planned e-mail body {to, from, subject, text, html[, reply_to]}."""
    msg = EmailMessage()
    msg["From"] = str(body["from"])
    msg["To"] = str(body["to"])
    msg["Subject"] = " ".join(str(body.get("subject") or "").split())
    if body.get("reply_to"):
        msg["Reply-To"] = str(body["reply_to"])
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = f"<{message_id}@baton.notify>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation responders stay quiet
    msg.set_content(str(body.get("text") or ""))
    if body.get("html"):
        msg.add_alternative(str(body["html"]), subtype="html")
    return msg


def _ascii(value: str) -> bool:
    return value.isascii() and "\r" not in value and "\n" not in value


def _address(value: str) -> tuple[str, str] | None:
    """(header, address) of one plain ASCII address ("Name <a@b>" or "a@b"; a non-ASCII
    display name is RFC 2047-encoded), or None: anything else takes the email package path."""
    if "\r" in value or "\n" in value or "," in value or ";" in value:
        return None
    pairs = getaddresses([value])
    if len(pairs) != 1:
        return None
    name, addr = pairs[0]
    if parseaddr(value) != (name, addr) or addr.count("@") != 1 or not _ascii(addr):
        return None
    return formataddr((name, addr), charset="utf-8"), addr


def _part(text: str, subtype: str) -> str:
    """One text part, 7bit when it is short-lined ASCII, else base64 of its UTF-8."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"  # as the email package's set_content does
    lines = text.split("\n")
    if text.isascii() and all(len(line) <= 900 for line in lines):
        payload, cte = "\r\n".join(lines), "7bit"
    else:
        payload = base64.encodebytes(text.encode()).decode().replace("\n", "\r\n")
        cte = "base64"
    if not payload.endswith("\r\n"):
        payload += "\r\n"
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {cte}\r\n\r\n{payload}"
    )


def encode_message(body: dict[str, Any], *, message_id: str) -> tuple[str, list[str], bytes] | None:
    """(envelope sender, recipients, the message's bytes) of a planned e-mail body, built
    directly: the email package's header parsing and flattening cost ~2 ms a message. The
    same headers and parts as `build_message`; None when an address is not a single plain
    ASCII one (SMTPUTF8, lists, odd syntax, CR/LF), and `build_message` handles it."""
    frm, to = _address(str(body["from"])), _address(str(body["to"]))
    reply = _address(str(body["reply_to"])) if body.get("reply_to") else ("", "")
    if frm is None or to is None or reply is None:
        return None
    subject = " ".join(str(body.get("subject") or "").split())
    if not subject.isascii() or len(subject) > 900:
        subject = Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
    head = [f"From: {frm[0]}", f"To: {to[0]}", f"Subject: {subject}"]
    if reply[0]:
        head.append(f"Reply-To: {reply[0]}")
    head += [
        f"Date: {formatdate(localtime=False, usegmt=True)}",
        f"Message-ID: <{message_id}@baton.notify>",
        "Auto-Submitted: auto-generated",  # RFC 3834: vacation responders stay quiet
        "MIME-Version: 1.0",
    ]
    text = _part(str(body.get("text") or ""), "plain")
    if body.get("html"):
        html = _part(str(body["html"]), "html")
        boundary = f"=_baton_{uuid.uuid4().hex}"  # a 7bit part could not contain it by chance
        head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        # the CRLF before a delimiter belongs to it (RFC 2046), not to the part
        content = f"\r\n--{boundary}\r\n{text}\r\n--{boundary}\r\n{html}\r\n--{boundary}--\r\n"
    else:
        content = text
    raw = "\r\n".join(head) + "\r\n" + content
    return frm[1], [to[1]], raw.encode("ascii")


# 530 authentication required, 534 mechanism too weak, 535 credentials invalid, 538 encryption
# required: the relay's setup, not this message (RFC 4954).
RELAY_SETUP_CODES = frozenset({530, 534, 535, 538})


def _by_code(code: int, what: str) -> AttemptResult:
    if 400 <= code < 500 or code in RELAY_SETUP_CODES:
        return AttemptResult("retry", code, error=f"smtp {what} {code}")
    return AttemptResult("rejected", code, error=f"smtp {what} {code}")


def _close(smtp: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        smtp.close()


IDLE_CHECK_SECONDS = 5.0  # an idle connection older than this gets a NOOP before reuse
IDLE_MAX_SECONDS = 60.0  # and one idle longer is closed, not checked (relays time out idlers)


class EmailSender:
    """Sends planned e-mails through one SMTP relay over a small pool of connections (see the
    module docstring): a message is delivered only once the relay took its DATA."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        starttls: bool = False,
        username: str = "",
        password: str = "",
        timeout_seconds: float = 10.0,
        max_connections: int = 4,
        local_hostname: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._starttls = starttls
        self._username = username or None
        self._password = password or None
        self._timeout = timeout_seconds
        self._max_idle = max_connections
        self._local_hostname = local_hostname
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # (connection, idle since)
        self.connects = 0  # connections opened (tests, and a glance at reuse)

    async def _ehlo_name(self) -> str:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def _connection(self) -> aiosmtplib.SMTP:
        """An idle pooled connection that still answers, or a new one (greeted, logged in)."""
        while self._idle:
            smtp, since = self._idle.pop()
            idle = time.monotonic() - since
            if smtp.is_connected and idle < IDLE_MAX_SECONDS:
                if idle < IDLE_CHECK_SECONDS:
                    return smtp
                try:
                    await smtp.noop()
                    return smtp
                except Exception:  # stale: closed by the relay, try the next or a new one
                    pass
            _close(smtp)
        smtp = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            start_tls=self._starttls,
            username=self._username,
            password=self._password,
            timeout=self._timeout,
            local_hostname=await self._ehlo_name(),
        )
        self.connects += 1
        try:
            await smtp.connect()
        except BaseException:
            _close(smtp)
            raise
        return smtp

    def _release(self, smtp: aiosmtplib.SMTP) -> None:
        if smtp.is_connected and len(self._idle) < self._max_idle:
            self._idle.append((smtp, time.monotonic()))
        else:
            _close(smtp)

    async def aclose(self) -> None:
        """Close the idle connections (notify's shutdown)."""
        idle, self._idle = self._idle, []
        for smtp, _ in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(smtp.quit(), timeout=1.0)
            _close(smtp)

    async def send(self, out: Outgoing) -> AttemptResult:
        try:
            raw = encode_message(out.body, message_id=out.message_id)
            msg = build_message(out.body, message_id=out.message_id) if raw is None else None
        except (KeyError, ValueError, TypeError) as exc:
            return AttemptResult("rejected", error=f"email body {type(exc).__name__}")
        smtp: aiosmtplib.SMTP | None = None
        sent = False
        try:
            smtp = await self._connection()
            if raw is not None:
                await smtp.sendmail(*raw)
            else:
                assert msg is not None
                await smtp.send_message(msg)
            sent = True
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients] or [550]
            return _by_code(max(codes), "recipient refused")
        except aiosmtplib.SMTPAuthenticationError as exc:
            return AttemptResult("retry", exc.code, error=f"smtp login refused {exc.code}")
        except aiosmtplib.SMTPResponseException as exc:
            return _by_code(exc.code, type(exc).__name__.removeprefix("SMTP"))
        except aiosmtplib.SMTPNotSupported:
            return AttemptResult("retry", error="smtp extension not supported (STARTTLS/AUTH)")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return AttemptResult("retry", error=f"smtp {type(exc).__name__}")
        except Exception as exc:  # a sender reports, never raises (see base.Sender)
            return AttemptResult("retry", error=f"smtp {type(exc).__name__}")
        finally:
            if smtp is not None and not sent:  # after any failure the connection is suspect
                _close(smtp)
        self._release(smtp)
        return AttemptResult("delivered", 250)
