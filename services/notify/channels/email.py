"""E-mail over SMTP (aiosmtplib): planned bodies as multipart/alternative messages.

How the server's answers map: delivered when the server takes the DATA; a 4xx reply (greylisting,
mailbox busy, rate limits) -> retry; a 5xx reply (no such user, policy rejection) -> rejected;
connection errors, timeouts and a dropped connection -> retry. The relay's own setup (login
required or refused: 530/534/535/538, STARTTLS not offered) -> retry as well, so fixing the
relay delivers the backlog, as with Slack's token. Errors carry the reply code only: SMTP
texts often quote the address.

The Message-ID derives from the notify message id, so every attempt of one message carries the
same id and a mailbox that saw an earlier attempt can tell it is the same mail.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate
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


# 530 authentication required, 534 mechanism too weak, 535 credentials invalid, 538 encryption
# required: the relay's setup, not this message (RFC 4954).
RELAY_SETUP_CODES = frozenset({530, 534, 535, 538})


def _by_code(code: int, what: str) -> AttemptResult:
    if 400 <= code < 500 or code in RELAY_SETUP_CODES:
        return AttemptResult("retry", code, error=f"smtp {what} {code}")
    return AttemptResult("rejected", code, error=f"smtp {what} {code}")


class EmailSender:
    """Sends planned e-mails through one SMTP relay (a connection per message: notify's
    people mail is a few messages a minute, and a fresh connection never inherits a broken
    one)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        starttls: bool = False,
        username: str = "",
        password: str = "",
        timeout_seconds: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._starttls = starttls
        self._username = username or None
        self._password = password or None
        self._timeout = timeout_seconds

    async def send(self, out: Outgoing) -> AttemptResult:
        try:
            msg = build_message(out.body, message_id=out.message_id)
        except (KeyError, ValueError, TypeError) as exc:
            return AttemptResult("rejected", error=f"email body {type(exc).__name__}")
        try:
            await aiosmtplib.send(
                msg,
                hostname=self._host,
                port=self._port,
                start_tls=self._starttls,
                username=self._username,
                password=self._password,
                timeout=self._timeout,
            )
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
        return AttemptResult("delivered", 250)
