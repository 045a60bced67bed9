"""Notify isolation (issue 16): event on Kafka -> first delivery attempt at three healthy
webhook receivers, at 200 events/s, with and without a fourth endpoint that never answers.

Each run is a real `baton serve notify` process on its own database and topics, with its own
endpoint file pointing at loopback receivers started here: three healthy ones (answer 200 at
once) and, in the "with" run, a fourth that accepts the TCP connection, reads nothing and never
answers (every attempt to it waits for the endpoint's 10 s timeout). The people channels work
as in production: e-mail goes to an SMTP sink process (`aiosmtpd`'s Sink), Slack is off (no
token), so each assignment also e-mails its owner. lead.assigned events are produced straight
onto the topic with an explicit Kafka timestamp, open loop (event i at t0 + i/rate); latency is
the receiver's arrival time of the first request carrying that `webhook-id` minus that
timestamp. Warm-up events (delivered before the clock starts) are not counted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from standardwebhooks import Webhook

from bench.common import ROOT, Env, Proc, free_port, median, summary_ms
from bench.payloads import lead_assigned_events
from bench.scenarios import Ctx

HEALTHY = ("hook-a", "hook-b", "hook-c")
DEAD = "hook-dead"
SECRET_ENV = "BATON_NOTIFY_SECRET_BENCH"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
VERIFY_FIRST = 20  # requests per receiver whose signature is checked (as a real receiver would)


class Receivers:
    """Loopback HTTP/1.1 receivers (keep-alive), one port per endpoint; they stamp the arrival
    of each webhook-id's first request. `delay_s` slows the healthy answers (a planted fault)."""

    def __init__(self, secret: str, delay_s: float = 0.0) -> None:
        self.webhook = Webhook(secret)
        self.delay_s = delay_s
        self.first: dict[str, dict[str, float]] = {}
        self.requests: dict[str, int] = {}
        self.bad_signatures = 0
        self.verified = 0
        self.dead_connections = 0
        self._servers: list[asyncio.Server] = []
        self._closed = asyncio.Event()

    async def start(self, name: str, *, dead: bool = False) -> str:
        self.first[name], self.requests[name] = {}, 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await (self._hang(writer) if dead else self._serve(name, reader, writer))

        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks/{name}"

    async def _hang(self, writer: asyncio.StreamWriter) -> None:
        self.dead_connections += 1
        await self._closed.wait()
        writer.close()

    async def _serve(
        self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        seen = self.first[name]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers: dict[str, str] = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    key, _, value = line.partition(":")
                    if key:
                        headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                now = time.time()
                self.requests[name] += 1
                wid = headers.get("webhook-id", "")
                seen.setdefault(wid, now)
                if self.requests[name] <= VERIFY_FIRST:
                    try:
                        self.webhook.verify(body, headers)
                        self.verified += 1
                    except Exception:
                        self.bad_signatures += 1
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        self._closed.set()
        for s in self._servers:
            s.close()
        for s in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.wait_closed(), 5)


def endpoint_file(path: Path, urls: dict[str, str]) -> Path:
    lines = ["endpoints:"]
    for name, url in urls.items():
        lines += [
            f"  - name: {name}",
            f"    url: {url}",
            "    events: [lead.assigned]",
            f"    secrets: [{{env: {SECRET_ENV}}}]",
            "    timeout_seconds: 10",
            "    allow_private: true",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


async def publish(
    producer: AIOKafkaProducer,
    topic: str,
    events: list[tuple[str, bytes, bytes]],
    rate: float,
    cap_s: float,
) -> tuple[dict[str, float], dict[str, float | None]]:
    """Open loop: event i is sent at t0 + i/rate (never later than cap_s); returns each sent
    event's Kafka timestamp (seconds) and the sender's own lateness."""
    sent: dict[str, float] = {}
    late: list[float] = []
    futures = []
    t0 = time.perf_counter()
    for i, (event_id, key, value) in enumerate(events):
        due = t0 + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        now = time.perf_counter()
        if now - t0 > cap_s:
            break
        late.append(now - due)
        ts = int(time.time() * 1000)
        futures.append(await producer.send(topic, value=value, key=key, timestamp_ms=ts))
        sent[event_id] = ts / 1000
    await asyncio.gather(*futures)
    return sent, summary_ms(late)


async def wait_delivered(rcv: Receivers, ids: set[str], limit_s: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        if all(ids <= rcv.first[n].keys() for n in HEALTHY):
            break
        await asyncio.sleep(0.1)
    return round(time.perf_counter() - t0, 2)


async def hops(dsn: str, sent: dict[str, float]) -> dict[str, dict[str, float | None]]:
    """Where the healthy endpoints' time goes, per message (ms): `stored` = the consumer's
    commit (created_at) - the Kafka timestamp; `dispatched` = the first attempt's start -
    created_at (waiting for a claim and a free slot)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT m.event_id, extract(epoch FROM m.created_at) AS created, "
            "(SELECT extract(epoch FROM min(a.at)) FROM notify.attempts a "
            "WHERE a.message_id = m.id) AS first FROM notify.messages m "
            "WHERE m.endpoint = ANY($1::text[])",
            list(HEALTHY),
        )
    finally:
        await conn.close()
    stored, dispatched = [], []
    for r in rows:
        ts = sent.get(r["event_id"])
        if ts is None:
            continue
        stored.append(float(r["created"]) - ts)
        if r["first"] is not None:
            dispatched.append(float(r["first"]) - float(r["created"]))
    return {"stored": summary_ms(stored), "dispatched": summary_ms(dispatched)}


async def message_counts(dsn: str, since: float) -> tuple[dict[str, int], int]:
    """(endpoint:status -> messages, whole run) and how many messages of any channel were
    delivered since `since` (epoch seconds: the measured window)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT endpoint, status, count(*) AS n FROM notify.messages GROUP BY 1, 2"
        )
        window = await conn.fetchval(
            "SELECT count(*) FROM notify.messages WHERE status = 'delivered' "
            "AND delivered_at >= to_timestamp($1)",
            since,
        )
    finally:
        await conn.close()
    return {f"{r['endpoint']}:{r['status']}": int(r["n"]) for r in rows}, int(window)


def _smtp_sink(logdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = (logdir / f"smtp-sink-{port}.log").open("ab")
    argv = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [*argv, "-c", "aiosmtpd.handlers.Sink"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    deadline = time.time() + 20
    while time.time() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return proc, port
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("SMTP sink did not start")


async def _run(
    ctx: Ctx, env: Env, cfg: dict[str, Any], *, dead: bool, smtp_port: int
) -> dict[str, Any]:
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    rcv = Receivers(secret, delay_s=cfg["notify_planted_delay_ms"] / 1000 if dead else 0.0)
    urls = {name: await rcv.start(name) for name in HEALTHY}
    if dead:
        urls[DEAD] = await rcv.start(DEAD, dead=True)
    label = "with_dead" if dead else "without_dead"
    conf = endpoint_file(ctx.logdir / f"notify-{label}-{uuid.uuid4().hex[:4]}.yaml", urls)
    rate, secs = float(cfg["notify_rate"]), float(cfg["notify_s"])
    warm = lead_assigned_events(cfg["notify_warmup"], uuid.uuid4().hex[:6])
    events = await asyncio.to_thread(lead_assigned_events, int(rate * secs), uuid.uuid4().hex[:6])
    producer = AIOKafkaProducer(bootstrap_servers=env.bootstrap, acks="all", linger_ms=0)
    procs: list[Proc] = []
    await producer.start()
    try:
        # replicas on one database and consumer group: the partitions are split between them
        # and their dispatchers share the messages through the claim (SKIP LOCKED + lease)
        for _ in range(int(cfg["notify_processes"])):
            proc = await asyncio.to_thread(
                env.service,
                "notify",
                NOTIFY_CONFIG_PATH=str(conf),
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=str(smtp_port),
                **{SECRET_ENV: secret},
            )
            procs.append(proc)
        topic = env.topics["leads_assigned"]
        warm_sent, _ = await publish(producer, topic, warm, 20.0, 30.0)
        warm_s = await wait_delivered(rcv, set(warm_sent), 60.0)
        c0, w0, since = sum(p.cpu() for p in procs), time.perf_counter(), time.time()
        sent, lag = await publish(producer, topic, events, rate, secs + 5.0)
        publish_s = time.perf_counter() - w0
        drain_s = await wait_delivered(rcv, set(sent), cfg["notify_grace_s"])
        cpu = sum(p.cpu() for p in procs) - c0
        wall = time.perf_counter() - w0
        rss = max((p.peak_rss_mb() or 0.0) for p in procs)  # the goal is per process
        per: dict[str, Any] = {}
        pooled: list[float] = []
        for name in HEALTHY:
            got = rcv.first[name]
            lat = [got[i] - ts for i, ts in sent.items() if i in got]
            pooled += lat
            per[name] = {"delivered": len(lat), "p50_ms": summary_ms(lat)["p50"],
                         "p99_ms": summary_ms(lat)["p99"]}  # fmt: skip
        counts, delivered = await message_counts(env.asyncpg_dsn, since)
        hop = await hops(env.asyncpg_dsn, sent)
    finally:
        for proc in procs:
            await asyncio.to_thread(ctx.stop, proc)
        await producer.stop()
        await rcv.close()
    return {
        "dead_endpoint": dead,
        "planted_delay_ms": cfg["notify_planted_delay_ms"] if dead else 0,
        "offered_rate": rate,
        "notify_processes": len(procs),
        "published": len(sent),
        "published_per_s": round(len(sent) / publish_s, 1),
        "publisher_lag_ms": lag,
        "warmup_s": warm_s,
        "drain_s": drain_s,
        "missing": 3 * len(sent) - len(pooled),
        "latency_ms": summary_ms(pooled),
        "hops_ms": hop,
        "per_endpoint": per,
        "requests": dict(rcv.requests),
        "dead_connections": rcv.dead_connections,
        "signatures_verified": rcv.verified,
        "bad_signatures": rcv.bad_signatures,
        "messages": counts,  # whole run incl. warm-up: endpoint:status -> count
        "delivered_in_window": delivered,  # every channel: healthy webhooks and e-mails
        "cpu_s": round(cpu, 2),
        "cpu_per_s": round(cpu / wall, 3),  # all notify processes together
        # notify's CPU over the window (planning, storing, sending, the dead endpoint's
        # timeouts) per message delivered in it, and per healthy webhook delivery
        "cpu_ms_per_delivered": round(1000 * cpu / max(1, delivered), 3),
        "cpu_ms_per_webhook_delivered": round(1000 * cpu / max(1, len(pooled)), 3),
        "peak_rss_mb": rss,
    }


def notify(ctx: Ctx, cfg: dict[str, Any]) -> dict[str, Any]:
    """`notify_pairs` pairs of runs, without then with the dead endpoint (the order alternates
    from one pair to the next); the ratio compares the medians of the healthy p99s."""
    smtp, smtp_port = _smtp_sink(ctx.logdir)
    runs: dict[str, list[dict[str, Any]]] = {"without_dead": [], "with_dead": []}
    try:
        for pair in range(cfg["notify_pairs"]):
            order = (False, True) if pair % 2 == 0 else (True, False)
            for dead in order:
                env = ctx.env("notify")
                try:
                    r = asyncio.run(_run(ctx, env, cfg, dead=dead, smtp_port=smtp_port))
                finally:
                    ctx.cleanup(env)
                runs["with_dead" if dead else "without_dead"].append(r)
                lat = r["latency_ms"]
                ctx.log(
                    f"  notify {'with' if dead else 'without'} dead endpoint: "
                    f"{r['published']} events at {r['published_per_s']}/s, p50 {lat['p50']} "
                    f"p99 {lat['p99']} ms, missing {r['missing']}, notify cpu {r['cpu_per_s']}/s "
                    f"({r['cpu_ms_per_delivered']} ms/delivery), rss {r['peak_rss_mb']} MB; "
                    f"stored p50/p99 {r['hops_ms']['stored']['p50']}/"
                    f"{r['hops_ms']['stored']['p99']} ms, first attempt after storing "
                    f"{r['hops_ms']['dispatched']['p50']}/{r['hops_ms']['dispatched']['p99']} ms"
                )
    finally:
        smtp.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            smtp.wait(timeout=10)

    def med(kind: str, *path: str) -> float | None:
        vals = []
        for r in runs[kind]:
            v: Any = r
            for p in path:
                v = v[p]
            vals.append(v)
        return median([float(v) for v in vals if v is not None])

    with_p99, without_p99 = (
        med("with_dead", "latency_ms", "p99"),
        med("without_dead", "latency_ms", "p99"),
    )
    return {
        "runs": runs,
        "rate": float(cfg["notify_rate"]),
        "with_dead_p50_ms": med("with_dead", "latency_ms", "p50"),
        "with_dead_p99_ms": with_p99,
        "without_dead_p50_ms": med("without_dead", "latency_ms", "p50"),
        "without_dead_p99_ms": without_p99,
        "p99_ratio": round(with_p99 / without_p99, 3) if with_p99 and without_p99 else None,
        "missing": sum(r["missing"] for rs in runs.values() for r in rs),
        "cpu_ms_per_delivered": med("without_dead", "cpu_ms_per_delivered"),
        "cpu_ms_per_delivered_with_dead": med("with_dead", "cpu_ms_per_delivered"),
        "peak_rss_mb": max((r["peak_rss_mb"] or 0.0) for rs in runs.values() for r in rs),
    }
