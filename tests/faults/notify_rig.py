"""Notify under faults: notify as a real process (`baton serve notify`) on the dedicated
broker, sending to a DedupingReceiver the test starts and e-mail to a real SMTP server;
lead.assigned events published straight to its topic; the reconciliation of the published
event ids against what the receiver processed (deduped by webhook-id) and what it saw raw."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.kafka import make_producer
from shared.settings import Settings
from tests.conftest import ROOT, topic_env
from tests.e2e.conftest import Stack
from tests.e2e.notify_sinks import DedupingReceiver, add_notify, notify_config
from tests.faults.conftest import REPORT, sql, stop_all
from tests.notify.conftest import lead_assigned

CONCURRENCY = 4  # slots per endpoint (pinned): at most this many sends of it in flight
ATTEMPT_TIMEOUT = 2.0  # endpoint timeout_seconds; a lease lasts this + NOTIFY_LEASE_SECONDS
# unrecorded sends (SIGKILL, database down) are resent after the lease: 5 s instead of 30 s
LEASE = {"NOTIFY_LEASE_SECONDS": "5"}


def notify_stack(
    settings: Settings,
    tmp_path: Path,
    rx: DedupingReceiver,
    *,
    endpoint: str,
    smtp_port: int,
    timeout: float,
    extra: dict[str, str] | None = None,
) -> Stack:
    """Notify alone (no intake/router/followup: the test publishes what the router would)."""
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        **topic_env(settings),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "DATABASE_URL": settings.database_url,
        "POLICY_PATH": str(ROOT / "deploy" / "policy.example.yaml"),
        "API_TOKENS": f"test:admin:{hashlib.sha256(token.encode()).hexdigest()}",
        "KAFKA_REQUEST_TIMEOUT_SECONDS": "5",
        "KAFKA_BACKOFF_MAX_SECONDS": "2",
        "TICKER_MAX_SLEEP_SECONDS": "0.5",
        "NOTIFY_HEALTH_REFRESH_SECONDS": "1",
        "NOTIFY_ENDPOINT_CONCURRENCY": str(CONCURRENCY),
    }
    stack = Stack(settings=settings, env=env, ports={}, token=token, logs={})
    config = notify_config(tmp_path, endpoint, rx.url(), timeout=timeout)
    add_notify(stack, config=config, secret=rx.secret or "", smtp_port=smtp_port, extra=extra)
    return stack


def endpoint_name() -> str:
    return f"fault-{uuid.uuid4().hex[:8]}"


async def publish(settings: Settings, n: int, *, pace: float = 0.0) -> list[str]:
    """n lead.assigned events (one lead each) on the test's leads.assigned; their ids."""
    producer = make_producer(settings)
    await producer.start()
    ids: list[str] = []
    try:
        for _ in range(n):
            event = lead_assigned()
            await producer.send_and_wait(
                settings.topics.leads_assigned, event.to_bytes(), key=event.subject.encode()
            )
            ids.append(event.id)
            if pace:
                await asyncio.sleep(pace)
    finally:
        await producer.stop()
    return ids


async def statuses(settings: Settings, endpoint: str) -> dict[str, int]:
    rows = await sql(
        settings,
        "SELECT status, count(*) FROM notify.messages WHERE endpoint = $1 GROUP BY status",
        endpoint,
    )
    return {r[0]: int(r[1]) for r in rows}


async def wait_processed(
    rx: DedupingReceiver,
    ids: list[str],
    timeout: float,
    *,
    settings: Settings | None = None,
    endpoint: str = "",
) -> float | None:
    """Seconds until the receiver processed every id and (with `settings`) every message row
    of `endpoint` is delivered, i.e. no lease of a send lost in a crash is still to expire
    (None: not within timeout)."""
    start = time.monotonic()
    wanted = set(ids)
    while time.monotonic() - start < timeout:
        if wanted <= rx.processed.keys() and (
            settings is None or await statuses(settings, endpoint) == {"delivered": len(ids)}
        ):
            return time.monotonic() - start
        await asyncio.sleep(0.2)
    return None


@dataclass
class NotifyResult:
    published: int
    delivered: int  # distinct ids processed by the deduping receiver
    lost: list[str]
    unexpected: list[str]  # processed ids nobody published in this test
    raw: int
    duplicates_raw: int
    unverified: int
    statuses: dict[str, int]


async def reconcile_notify(
    settings: Settings, rx: DedupingReceiver, ids: list[str], endpoint: str
) -> NotifyResult:
    """Published ids against the receiver and notify.messages (after a short quiet spell to
    catch late duplicates)."""
    await asyncio.sleep(2)
    st = rx.stats()
    return NotifyResult(
        published=len(ids),
        delivered=len(set(ids) & rx.processed.keys()),
        lost=sorted(set(ids) - rx.processed.keys()),
        unexpected=sorted(rx.processed.keys() - set(ids)),
        raw=st["raw"],
        duplicates_raw=st["duplicates"],
        unverified=st["unverified"],
        statuses=await statuses(settings, endpoint),
    )


def assert_delivered_exactly(r: NotifyResult) -> None:
    assert not r.lost, f"{len(r.lost)} published events never delivered: {r.lost[:5]}"
    assert not r.unexpected, f"deliveries of events never published: {r.unexpected[:5]}"
    assert r.unverified == 0, "a delivery failed Standard Webhooks verification"
    assert r.statuses == {"delivered": r.published}, r.statuses


def record_notify(fault: str, r: NotifyResult, seconds: float | None, **extra: Any) -> None:
    """Append a result row to .local/fault-results.jsonl (docs/reliability.md)."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    row = {
        "fault": fault,
        "published": r.published,
        "delivered": r.delivered,
        "lost": len(r.lost),
        "raw_requests": r.raw,
        "raw_duplicates": r.duplicates_raw,
        "seconds": None if seconds is None else round(seconds, 1),
        **extra,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with REPORT.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print("FAULT RESULT", json.dumps(row))


@dataclass
class NotifyRun:
    """A running notify process (`stack`) delivering to `rx` as `endpoint`."""

    settings: Settings
    rx: DedupingReceiver
    stack: Stack
    endpoint: str

    async def publish(self, n: int, *, pace: float = 0.0) -> list[str]:
        return await publish(self.settings, n, pace=pace)

    async def settle(
        self,
        ids: list[str],
        fault: str,
        *,
        timeout: float,
        since: float | None = None,
        **extra: Any,
    ) -> NotifyResult:
        """Wait until every id is processed and delivered, reconcile, record the result row
        (seconds from `since`, a monotonic time, else from now) and assert that exactly the
        published set was delivered."""
        took = await wait_processed(
            self.rx, ids, timeout, settings=self.settings, endpoint=self.endpoint
        )
        seconds = took if since is None or took is None else time.monotonic() - since
        r = await reconcile_notify(self.settings, self.rx, ids, self.endpoint)
        record_notify(fault, r, seconds, **extra)
        assert_delivered_exactly(r)
        return r


@asynccontextmanager
async def running_notify(
    settings: Settings,
    tmp_path: Path,
    rx: DedupingReceiver,
    *,
    smtp_port: int,
    extra: dict[str, str] | None = None,
) -> AsyncIterator[NotifyRun]:
    """Notify started on a fresh endpoint (ATTEMPT_TIMEOUT, the 5 s LEASE), stopped after."""
    endpoint = endpoint_name()
    stack = notify_stack(
        settings,
        tmp_path,
        rx,
        endpoint=endpoint,
        smtp_port=smtp_port,
        timeout=ATTEMPT_TIMEOUT,
        extra={**LEASE, **(extra or {})},
    )
    try:
        await asyncio.to_thread(stack.start, "notify")
        yield NotifyRun(settings, rx, stack, endpoint)
    finally:
        stop_all(stack)
