"""Fault-test fixtures: a dedicated Kafka broker we may SIGKILL, the three services pointed at it,
and the reconciliation of what intake accepted against what came out on Kafka and PostgreSQL.

The broker is a second instance of deploy/local/kafka.sh on spare ports with its own data dir
(formatted fresh under pytest's tmp), so killing it never disturbs the shared local broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaConsumer

from shared.events import EventError, parse_event
from shared.kafka import ensure_topics
from shared.settings import Settings
from tests.conftest import ROOT, topic_env, unique_topics
from tests.e2e.conftest import Stack, fast_policy, free_port

OUTCOMES = {"lead.assigned", "lead.merged", "lead.disqualified"}
REPORT = ROOT / ".local" / "fault-results.jsonl"


@dataclass
class Broker:
    """One KRaft broker/controller started with deploy/local/kafka.sh and env overrides."""

    port: int
    controller_port: int
    data_dir: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_DATA_DIR": str(self.data_dir),
            "KAFKA_HEAP": "384m",
        }

    def start(self) -> None:
        subprocess.run(
            [str(ROOT / "deploy" / "local" / "kafka.sh"), "start"],
            env=self._env(),
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.wait_usable()

    def wait_usable(self, timeout: float = 60) -> None:
        """The port opens before the broker serves metadata: wait for a real answer."""

        async def probe() -> bool:
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
            try:
                await admin.start()
                await admin.list_topics()
                return True
            except Exception:
                return False
            finally:
                await admin.close()

        deadline = time.time() + timeout
        while time.time() < deadline:
            if asyncio.run(probe()):
                return
            time.sleep(0.5)
        raise RuntimeError(f"dedicated broker on {self.bootstrap} not usable in {timeout}s")

    def pid(self) -> int | None:
        pidfile = self.data_dir / "kafka.pid"
        return int(pidfile.read_text()) if pidfile.exists() else None

    def kill(self) -> None:
        """SIGKILL: no flush, no controlled shutdown."""
        pid = self.pid()
        assert pid is not None, "broker not running"
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        subprocess.run(
            [str(ROOT / "deploy" / "local" / "kafka.sh"), "stop"],
            env=self._env(),
            check=False,
            capture_output=True,
            timeout=60,
        )


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(
        port=free_port(),
        controller_port=free_port(),
        data_dir=tmp_path_factory.mktemp("kafka-faults"),
    )
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
async def fault_settings(migrated: Settings, broker: Broker) -> Settings:
    topics = unique_topics()
    tag = topics.leads_received.split(".")[0]
    settings = migrated.model_copy(
        update={
            "topics": topics,
            "consumer_group_prefix": tag,
            "kafka_bootstrap_servers": broker.bootstrap,
        }
    )
    await ensure_topics(settings)
    return settings


def no_sla_policy(
    tmp: Path, *, window: int = 86400, steps: tuple[int, ...] = (0, 3600, 7200)
) -> Path:
    """Every rep on duty, SLA windows of a day (no escalation fires during a test unless the
    caller asks for a shorter window), a rate limit far above the test's load (the tests
    stream hundreds of leads in seconds)."""
    path = fast_policy(tmp, window=window, steps=steps)
    policy: dict[str, Any] = yaml.safe_load(path.read_text())
    for source in policy["sources"]:
        source["rate_limit"] = {"requests": 100000, "per_seconds": 1}
    for team in policy["teams"]:  # rep loads accumulate in the session's shared database
        for rep in team["reps"]:
            rep["capacity"] = 1_000_000
    path.write_text(yaml.safe_dump(policy))
    return path


def make_stack(
    settings: Settings,
    env_secrets: dict[str, str],
    tmp_path: Path,
    *,
    policy: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    """The three services as real processes (not started yet) on `settings`' broker and DB."""
    token = secrets.token_urlsafe(24)
    ports = {"intake": free_port(), "router": free_port(), "followup": free_port()}
    env = {
        **os.environ,
        **env_secrets,
        **topic_env(settings),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "POLICY_PATH": str(policy or no_sla_policy(tmp_path)),
        "DATABASE_URL": settings.database_url,
        "INTAKE_PORT": str(ports["intake"]),
        "ROUTER_PORT": str(ports["router"]),
        "FOLLOWUP_PORT": str(ports["followup"]),
        "API_TOKENS": f"test:admin:{hashlib.sha256(token.encode()).hexdigest()}",
        "KAFKA_REQUEST_TIMEOUT_SECONDS": "5",
        "KAFKA_BACKOFF_MAX_SECONDS": "2",
        "CONSUMER_STALL_SECONDS": "20",
        **(extra_env or {}),
    }
    logs = {name: tmp_path / f"{name}.log" for name in ports}
    return Stack(settings=settings, env=env, ports=ports, token=token, logs=logs)


def stop_all(stack: Stack) -> None:
    for name in list(stack.procs):
        with contextlib.suppress(Exception):
            stack.stop(name, kill=stack.procs[name].poll() is not None)


@pytest.fixture
def fault_stack(
    fault_settings: Settings, env_secrets: dict[str, str], tmp_path: Path
) -> Iterator[Stack]:
    """The three services as real processes on the dedicated broker (not started yet)."""
    s = make_stack(fault_settings, env_secrets, tmp_path)
    try:
        yield s
    finally:
        stop_all(s)


# --- streaming leads and reconciling ------------------------------------------------------------


@dataclass
class Attempt:
    """One HTTP attempt of one lead: what the sender saw and when."""

    key: str  # the lead's Idempotency-Key (the same on every retry)
    started: float  # monotonic
    ended: float
    wall_started: float  # time.time(), comparable with timestamps PostgreSQL stored
    status: int | None  # None: transport error
    error: str | None = None  # httpx exception class name
    retry_after: str | None = None
    lead_id: str | None = None


@dataclass
class Sent:
    accepted: list[str] = field(default_factory=list)  # lead ids answered 202
    accepted_at: list[float] = field(default_factory=list)  # monotonic time of each 202
    refused: dict[int, int] = field(default_factory=dict)  # status -> count (never a 202)
    errors: int = 0  # transport errors (connection refused while a process is down)
    attempts: list[Attempt] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)  # keys never accepted (retry mode)


RETRYABLE = {429, 502, 503, 504}


async def stream_leads(
    stack: Stack,
    n: int,
    *,
    concurrency: int = 6,
    on_progress: Any = None,
    retry: bool = False,
    retry_deadline: float = 180,
    service: str = "intake",
) -> Sent:
    """POST n distinct leads to intake; on_progress(i) is awaited after each lead is done.

    With retry=True the client behaves like a real webhook sender: every lead carries its own
    Idempotency-Key, and a 429/503 (after its Retry-After) or a transport error (after 1 s) is
    retried with the same key until it is accepted (or retry_deadline passes)."""
    sent = Sent()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    done = 0
    tag = uuid.uuid4().hex[:8]
    give_up_at = time.monotonic() + retry_deadline

    async def post_one(client: httpx.AsyncClient, i: int) -> None:
        data = {
            "email": f"fault.{i}@{tag}-{i % 7}.example.com",
            "first_name": "Fault",
            "last_name": f"Test{i}",
            "job_title": "VP Sales",
            "company": f"Example {tag} {i % 7}",
            "company_size": "500",
            "country": "DE",
            "demo_request": "yes",
            "consent": "yes",
        }
        key = f"{tag}-{i}"
        headers = {"Origin": "http://localhost:8001"}
        if retry:
            headers["Idempotency-Key"] = key
        while True:
            att = Attempt(
                key=key,
                started=time.monotonic(),
                ended=0.0,
                wall_started=time.time(),
                status=None,
            )
            sent.attempts.append(att)
            try:
                resp = await client.post("/v1/webhooks/website-demo", data=data, headers=headers)
            except httpx.HTTPError as exc:
                att.ended = time.monotonic()
                att.error = type(exc).__name__
                sent.errors += 1
                delay = 1.0
            else:
                att.ended = time.monotonic()
                att.status = resp.status_code
                att.retry_after = resp.headers.get("retry-after")
                if resp.status_code == 202:
                    att.lead_id = resp.json()["lead_id"]
                    sent.accepted.append(att.lead_id)
                    sent.accepted_at.append(att.ended)
                    return
                sent.refused[resp.status_code] = sent.refused.get(resp.status_code, 0) + 1
                if resp.status_code not in RETRYABLE:
                    sent.given_up.append(key)
                    return
                delay = float(att.retry_after or 1)
            if not retry:
                return
            if time.monotonic() + delay > give_up_at:
                sent.given_up.append(key)
                return
            await asyncio.sleep(delay)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while not queue.empty():
            i = queue.get_nowait()
            await post_one(client, i)
            done += 1
            if on_progress is not None:
                await on_progress(done)

    async with httpx.AsyncClient(base_url=stack.url(service), timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return sent


@dataclass
class Reconciled:
    accepted: int
    with_outcome: int
    lost: list[str]
    # leads with more than one distinct outcome event (effect twice); the followup kill test
    # puts (lead, level) pairs here: an escalation level fired twice
    duplicated: list[Any]
    outcome_messages: int
    distinct_outcome_ids: int
    received_messages: int
    distinct_received_ids: int
    db_leads: int
    db_double_assigned: int
    complete_at: float | None  # monotonic time the last missing outcome arrived

    @property
    def redelivered_copies(self) -> int:
        """Same event id on Kafka more than once: at-least-once delivery, deduped by inboxes."""
        return (self.outcome_messages - self.distinct_outcome_ids) + (
            self.received_messages - self.distinct_received_ids
        )


async def reconcile(settings: Settings, accepted: list[str], *, timeout: float = 150) -> Reconciled:
    """Read leads.received and leads.assigned from the start until every accepted lead has an
    outcome (or the timeout), then compare against PostgreSQL."""
    wanted = set(accepted)
    consumer = AIOKafkaConsumer(
        settings.topics.leads_received,
        settings.topics.leads_assigned,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"reconcile-{uuid.uuid4().hex[:8]}",
    )
    complete_at: float | None = None
    outcome_ids: dict[str, set[str]] = defaultdict(set)
    outcome_messages = 0
    received_ids: set[str] = set()
    received_messages = 0
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for msgs in batch.values():
                for msg in msgs:
                    try:
                        event = parse_event(msg.value)
                    except EventError:  # poison written by a test: not an outcome
                        continue
                    if event.subject not in wanted:
                        continue
                    if event.type == "lead.received":
                        received_messages += 1
                        received_ids.add(event.id)
                    elif event.type in OUTCOMES:
                        outcome_messages += 1
                        outcome_ids[event.subject].add(event.id)
            if wanted <= outcome_ids.keys():
                # everything arrived: read a little longer to catch late duplicates
                complete_at = complete_at or time.monotonic()
                quiet_until = quiet_until or time.monotonic() + 3
                if time.monotonic() > quiet_until:
                    break
    finally:
        await consumer.stop()
    db_leads, db_double = await _db_counts(settings, accepted)
    return Reconciled(
        accepted=len(accepted),
        with_outcome=len(wanted & outcome_ids.keys()),
        lost=sorted(wanted - outcome_ids.keys()),
        duplicated=sorted(k for k, ids in outcome_ids.items() if len(ids) > 1),
        outcome_messages=outcome_messages,
        distinct_outcome_ids=sum(len(v) for v in outcome_ids.values()),
        received_messages=received_messages,
        distinct_received_ids=len(received_ids),
        db_leads=db_leads,
        db_double_assigned=db_double,
        complete_at=complete_at,
    )


async def _db_counts(settings: Settings, lead_ids: list[str]) -> tuple[int, int]:
    import asyncpg

    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        ids = [uuid.UUID(x) for x in lead_ids]
        leads = await conn.fetchval(
            "SELECT count(*) FROM intake.leads WHERE lead_id = ANY($1::uuid[])", ids
        )
        double = await conn.fetchval(
            "SELECT count(*) FROM (SELECT lead_id FROM router.assignments"
            " WHERE lead_id = ANY($1::uuid[]) GROUP BY lead_id HAVING count(*) > 1) d",
            ids,
        )
        return int(leads), int(double)
    finally:
        await conn.close()


def record(fault: str, sent: int, r: Reconciled, recovery_seconds: float | None) -> None:
    """Append a result row (docs/reliability.md is written from these)."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    row = {
        "fault": fault,
        "sent": sent,
        "accepted": r.accepted,
        "assigned": r.with_outcome,
        "lost": len(r.lost),
        "duplicated": len(r.duplicated) + r.db_double_assigned,
        "redelivered_copies": r.redelivered_copies,
        "recovery_seconds": None if recovery_seconds is None else round(recovery_seconds, 1),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with REPORT.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print("FAULT RESULT", json.dumps(row))


def assert_clean(r: Reconciled) -> None:
    assert not r.lost, f"{len(r.lost)} accepted leads never got an outcome: {r.lost[:5]}"
    assert not r.duplicated, f"{len(r.duplicated)} leads got two outcomes: {r.duplicated[:5]}"
    assert r.db_double_assigned == 0
    assert r.db_leads == r.accepted
    assert r.distinct_received_ids == r.accepted


async def wait_ready(url: str, timeout: float = 120) -> float:
    """Seconds until /readyz answers 200."""
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() - start < timeout:
            try:
                if (await client.get(url + "/readyz")).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} not ready within {timeout}s")


def spawn(
    stack: Stack,
    service: str,
    *,
    name: str | None = None,
    env: dict[str, str] | None = None,
    ready: bool = False,
) -> None:
    """Start a service process as `name` (default: the service) without waiting for /readyz
    unless ready=True (its dependencies may be down); waits for /healthz, which a live
    process answers whatever its dependencies. A new name gets its own port and log."""
    import sys

    name = name or service
    if name not in stack.ports:
        stack.ports[name] = free_port()
        stack.logs[name] = stack.logs[service].with_name(f"{name}.log")
    proc_env = {**stack.env, f"{service.upper()}_PORT": str(stack.ports[name]), **(env or {})}
    log = stack.logs[name].open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "serve", service],
        env=proc_env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack.procs[name] = proc
    deadline = time.time() + 60
    path = "/readyz" if ready else "/healthz"
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} during start-up")
        try:
            if httpx.get(stack.url(name) + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer {path} within 60s")


def terminate(stack: Stack, name: str, timeout: float = 60) -> float:
    """SIGTERM and wait for the exit; asserts the shutdown was graceful (the lifespan ran to its
    end). Returns the seconds it took. Uvicorn re-raises the signal once it has shut down, so
    the exit status is either 0 or "killed by SIGTERM" after a complete shutdown."""
    proc = stack.procs.pop(name)
    stopped_before = stack.logs[name].read_text(errors="replace").count('"service.stopped"')
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=timeout)
    took = time.monotonic() - started
    assert code in (0, -signal.SIGTERM), f"{name} exited with {code} on SIGTERM"
    stopped = stack.logs[name].read_text(errors="replace").count('"service.stopped"')
    assert stopped == stopped_before + 1, f"{name} exited without finishing its shutdown"
    return took


async def metrics_of(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A service's /metrics as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(url + "/metrics")).text
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def metric_sum(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    return sum(
        v
        for (n, lbls), v in samples.items()
        if n == name and all(dict(lbls).get(k) == want for k, want in labels.items())
    )


async def sql(settings: Settings, query: str, *args: Any) -> list[Any]:
    """Run one query on the test's database (asyncpg, own connection)."""
    import asyncpg

    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


# --- a dedicated PostgreSQL we may stop ----------------------------------------------------------


@dataclass
class PgInstance:
    """A second cluster of deploy/local/postgres.sh on a spare port with its own data dir."""

    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://baton@127.0.0.1:{self.port}/baton"

    def _run(self, action: str) -> None:
        subprocess.run(
            [str(ROOT / "deploy" / "local" / "postgres.sh"), action],
            env={**os.environ, "PGPORT": str(self.port), "PG_DATA_DIR": str(self.data_dir)},
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        """pg_ctl stop -m fast: sessions are terminated, the server is gone until start()."""
        self._run("stop")


@pytest.fixture(scope="session")
def dedicated_pg() -> Iterator[PgInstance]:
    """Started and migrated on first use, stopped and removed at the end of the session.

    Under the project's .local (not pytest's tmp): as root the server runs as the postgres
    user, which cannot enter pytest's private tmp directories."""
    import shutil

    from ops.migrate import run_all

    home = ROOT / ".local" / f"faults-pg-{uuid.uuid4().hex[:8]}"
    pg = PgInstance(port=free_port(), data_dir=home / "data")
    try:
        pg.start()
        run_all(pg.url)
        yield pg
    finally:
        with contextlib.suppress(Exception):
            pg.stop()
        shutil.rmtree(home, ignore_errors=True)


async def start_all(stack: Stack) -> None:
    for name in ("intake", "router", "followup"):
        await asyncio.to_thread(stack.start, name)


async def outbox_depths(settings: Settings) -> dict[str, int]:
    """Unsent outbox rows per service, for this test's topics only (the database is shared)."""
    rows = await sql(
        settings,
        " UNION ALL ".join(
            f"SELECT '{svc}', count(*) FROM {svc}.outbox WHERE topic = ANY($1::text[])"
            for svc in ("intake", "router", "followup")
        ),
        settings.topics.all(),
    )
    return {r[0]: int(r[1]) for r in rows}


async def wait_until(predicate: Any, *, timeout: float = 60, what: str = "condition") -> float:
    """Poll an async predicate until it holds; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await predicate():
            return time.monotonic() - start
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what} not reached within {timeout}s")


async def hidden_accepts(settings: Settings, sent: Sent) -> list[Attempt]:
    """Attempts that saw a transport error although intake accepted that very attempt (its
    idempotency key was stored while the attempt was in flight): a lead the sender could not
    know was accepted. Errors on attempts intake never processed are harmless: the sender
    retries them (e.g. the keep-alive race, a request on a connection the server closes)."""
    failed = [a for a in sent.attempts if a.status is None]
    if not failed:
        return []
    rows = await sql(
        settings,
        "SELECT key, created_at FROM intake.idempotency"
        " WHERE source = 'website-demo' AND key = ANY($1::text[])",
        sorted({a.key for a in failed}),
    )
    created = {row[0]: row[1].timestamp() for row in rows}
    return [
        a
        for a in failed
        if a.key in created and created[a.key] <= a.wall_started + (a.ended - a.started)
    ]
