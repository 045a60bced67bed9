"""Slack: `chat.postMessage` through slack-sdk's AsyncWebClient, answers mapped to outcomes.

slack-sdk's own retry handlers are switched off (`retry_handlers=[]`): by default it retries a
connection error once, silently, and its rate-limit handler would sleep inside the attempt.
Notify's dispatcher owns retries instead (one attempt = one request, each recorded, backoff
and Retry-After honoured across restarts), so a 429 comes back as `retry` with its
Retry-After.

How Slack's answers map (https://api.slack.com/methods/chat.postMessage#errors):
- ok -> delivered.
- HTTP 429 / `ratelimited` -> retry after Retry-After.
- `channel_not_found`, `is_archived`, `user_not_found`, `user_disabled` -> gone: that target
  no longer exists (only this message is dropped; Slack itself stays enabled).
- the bot's own setup (`invalid_auth`, `not_authed`, `token_revoked`, `token_expired`,
  `account_inactive`, `missing_scope`, `not_in_channel`) -> retry: an operator fixes the token
  or invites the bot, and the backlog then goes out instead of being thrown away; meanwhile
  the endpoint shows as failing and alerts. The schedule still dead-letters after about a day.
- HTTP 5xx, `internal_error`, `fatal_error`, `service_unavailable`, `request_timeout`,
  connection errors and timeouts -> retry.
- any other error (`invalid_blocks`, `msg_too_long`, `no_text`, ...) -> rejected: sending the
  same message again can never work.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from services.notify.channels.base import AttemptResult, Outgoing
from services.notify.domain.backoff import parse_retry_after

GONE = frozenset({"channel_not_found", "is_archived", "user_not_found", "user_disabled"})
SETUP = frozenset(
    {
        "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
        "missing_scope", "not_in_channel",
    }
)  # fmt: skip
TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (Slack sends whole seconds), else None."""
    raw = headers.get("Retry-After") if headers is not None else None
    return parse_retry_after(str(raw)) if raw is not None else None


def classify(status: int | None, error: str | None, headers: Any = None) -> AttemptResult:
    """An AttemptResult for one Slack answer (HTTP status and the `error` field)."""
    if status == 429 or error == "ratelimited":
        return AttemptResult(
            "retry", status, retry_after(headers), error=f"slack {error or 'ratelimited'}"
        )
    if error in GONE:
        return AttemptResult("gone", status, error=f"slack {error}")
    if error in SETUP or error in TRANSIENT or (status is not None and status >= 500):
        return AttemptResult("retry", status, retry_after(headers), error=f"slack {error}")
    return AttemptResult("rejected", status, error=f"slack {error or 'unexpected answer'}")


class SlackSender:
    """Posts planned Slack bodies (`{"channel", "text", "blocks"}`) with the bot token.

    `base_url` is Slack's Web API root (a loopback fake in tests and `make run`). Call
    `aclose()` on shutdown to close the HTTP session."""

    def __init__(
        self, *, token: str, base_url: str = "https://slack.com/api/", timeout_seconds: float = 10.0
    ) -> None:
        self._token = token
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._timeout = timeout_seconds
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None

    def _web(self) -> AsyncWebClient:
        # Built on first use: an aiohttp session belongs to the running event loop.
        if self._client is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
            self._client = AsyncWebClient(
                token=self._token,
                base_url=self._base_url,
                timeout=math.ceil(self._timeout),
                session=self._session,
                retry_handlers=[],
            )
        return self._client

    async def send(self, out: Outgoing) -> AttemptResult:
        if not self._token:
            return AttemptResult("retry", error="slack token not configured")
        body = out.body
        try:
            async with asyncio.timeout(self._timeout + 1):
                resp = await self._web().chat_postMessage(
                    channel=str(body.get("channel") or out.target),
                    text=str(body.get("text") or ""),
                    blocks=body.get("blocks"),
                    unfurl_links=False,
                    unfurl_media=False,
                )
        except SlackApiError as exc:
            answer = exc.response
            data = getattr(answer, "data", None)
            error = data.get("error") if isinstance(data, dict) else None
            status = getattr(answer, "status_code", None) or getattr(answer, "status", None)
            return classify(status, error, getattr(answer, "headers", None))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return AttemptResult("retry", error=f"slack {type(exc).__name__}")
        except Exception as exc:  # a sender reports, never raises (see base.Sender)
            return AttemptResult("retry", error=f"slack {type(exc).__name__}")
        return AttemptResult("delivered", resp.status_code)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None
        self._client = None
