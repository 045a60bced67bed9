"""The five measurements of issue #8, each beside its reference, on real service processes.

Every scenario gets its own database (cloned from the migrated bench template) and its own
topics, starts the services it needs as `python -m ops.cli serve <svc>`, measures, stops
them (recording their peak RSS) and cleans up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import (
    ROOT,
    BenchDatabases,
    Env,
    Proc,
    delete_topics,
    free_port,
    group_cpu_seconds,
    make_env,
    postgres_pids,
    start_process,
    summary_ms,
)
from bench.payloads import lead_received_events

PARTITIONS = int(os.environ.get("TOPIC_PARTITIONS", "6"))


@dataclass
class Ctx:
    """What every scenario needs: databases, log dir, bench policy, secrets, peak RSS book."""

    dbs: BenchDatabases
    logdir: Path
    policy: Path
    secrets: dict[str, str]
    pg_port: int
    rss: dict[str, float]
    log: Any = print

    def env(self, scenario: str) -> Env:
        return make_env(self.dbs, scenario, self.logdir, self.policy, self.secrets)

    def stop(self, proc: Proc) -> None:
        rss = proc.stop()
        if rss is not None:
            self.rss[proc.name] = max(self.rss.get(proc.name, 0.0), rss)

    def cleanup(self, env: Env) -> None:
        with contextlib.suppress(Exception):
            asyncio.run(delete_topics(env.bootstrap, list(env.topics.values())))
        with contextlib.suppress(Exception):
            self.dbs.drop(env.dbname)


# --- the load generator ----------------------------------------------------------------------


def loadgen_argv(
    port: int | list[int],
    rate: float,
    duration: float,
    grace: float,
    tag: str,
    ids_out: str | None = None,
) -> list[str]:
    ports = ",".join(str(p) for p in (port if isinstance(port, list) else [port]))
    argv = [sys.executable, "-m", "bench.loadgen", "--port", ports, "--rate", str(rate)]
    argv += ["--duration", str(duration), "--grace", str(grace), "--tag", tag]
    if ids_out:
        argv += ["--ids-out", ids_out]
    return argv


def loadgen(
    ctx: Ctx, port: int | list[int], rate: float, duration: float, grace: float = 10.0
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    out = subprocess.run(
        loadgen_argv(port, rate, duration, grace, tag),
        env={**os.environ, **ctx.secrets},
        cwd=ROOT,
        capture_output=True,
        timeout=duration + grace + 120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr.decode()[-2000:]}")
    result: dict[str, Any] = orjson.loads(out.stdout.splitlines()[-1])
    return result


def _measured(procs: list[Proc], fn: Any) -> tuple[Any, float | None]:
    """fn() and the processes' CPU seconds per wall second (summed) while it ran."""
    c0, t0 = sum(p.cpu() for p in procs), time.perf_counter()
    value = fn()
    wall = time.perf_counter() - t0
    return value, (round((sum(p.cpu() for p in procs) - c0) / wall, 3) if procs else None)


async def _outbox_rows(dsn: str, schema: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox"))
    finally:
        await conn.close()


def wait_outbox_empty(env: Env, schema: str, timeout: float = 60.0) -> float:
    """Let the relay catch up between runs so one run's backlog never slows the next."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if asyncio.run(_outbox_rows(env.asyncpg_dsn, schema)) == 0:
            break
        time.sleep(0.5)
    return round(time.perf_counter() - t0, 2)


def passes_knee(r: dict[str, Any], p99_limit_ms: float) -> bool:
    p99 = r["latency_ms"]["p99"]
    return (
        r["error_ratio"] <= 0.01
        and r["accepted_per_s"] >= 0.95 * r["offered_rate"]
        and p99 is not None
        and p99 <= p99_limit_ms
    )


# --- 1. intake throughput and latency ----------------------------------------------------------


def _start_reference(ctx: Ctx) -> Proc:
    port = free_port()
    argv = [sys.executable, "-m", "bench.refserver", "--port", str(port)]
    return start_process("reference", argv, dict(os.environ), port, ctx.logdir)


def intake(ctx: Ctx, cfg: dict[str, Any], *, reference: bool, processes: int = 1) -> dict[str, Any]:
    """Fixed rates (repeated) and a knee search, against intake or the bare reference.

    With processes > 1, that many server processes share the load (the generator alternates
    its connections between them, as a load balancer would): intake replicas on one database
    and one set of topics, or as many reference processes. The fixed-rate runs are made once.
    """
    env: Env | None = None
    if reference:
        procs = [_start_reference(ctx) for _ in range(processes)]
    else:
        env = ctx.env("intake")
        procs = [env.service("intake") for _ in range(processes)]
    ports = [int(p.url.rsplit(":", 1)[1]) for p in procs]
    name = procs[0].name + (f"_x{processes}" if processes > 1 else "")
    runs: dict[str, list[dict[str, Any]]] = {}
    knee_steps: list[dict[str, Any]] = []
    try:
        loadgen(ctx, ports, 100, 1.0)  # warm-up: imports, pools, first connections
        if env:
            wait_outbox_empty(env, "intake")
        for rep in range(cfg["repeats"] if processes == 1 else 1):
            for rate in cfg["intake_rates"]:
                r, cpu = _measured(procs, lambda rate=rate: loadgen(ctx, ports, rate, cfg["run_s"]))
                r["server_cpu_per_s"] = cpu
                if env:
                    r["relay_drain_s"] = wait_outbox_empty(env, "intake")
                runs.setdefault(str(rate), []).append(r)
                ctx.log(f"  {name} {rate}/s run {rep + 1}: {_brief(r)}")
        for rate in cfg["knee_rates" if processes == 1 else "knee_rates_multi"]:
            r, cpu = _measured(
                procs, lambda rate=rate: loadgen(ctx, ports, rate, cfg["knee_s"], 5.0)
            )
            r["server_cpu_per_s"] = cpu
            r["passes"] = passes_knee(r, cfg["knee_p99_ms"])
            if env:
                r["relay_drain_s"] = wait_outbox_empty(env, "intake")
            knee_steps.append(r)
            ctx.log(f"  {name} knee step {rate}/s: {_brief(r)} {'ok' if r['passes'] else 'KNEE'}")
            if not r["passes"]:
                break
    finally:
        for proc in procs:
            ctx.stop(proc)
        if env:
            ctx.cleanup(env)
    passing = [s for s in knee_steps if s["passes"]]
    return {
        "target": name,
        "processes": processes,
        "runs": runs,
        "knee_steps": knee_steps,
        "knee_rate": passing[-1]["offered_rate"] if passing else None,
        "knee_accepted_per_s": passing[-1]["accepted_per_s"] if passing else None,
        "max_accepted_per_s": max((s["accepted_per_s"] for s in knee_steps), default=None),
        "generator_limited": any((s["dispatch_lag_ms"]["p99"] or 0) > 20 for s in knee_steps),
        "ladder_top_passed": bool(knee_steps) and knee_steps[-1]["passes"],
    }


def _brief(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    return (
        f"{r['accepted_per_s']}/s ok, p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
        f"errors {r['error_ratio']:.1%}, server cpu {r.get('server_cpu_per_s')}"
    )


# --- 2. end to end ---------------------------------------------------------------------------


async def _e2e_runs(
    ctx: Ctx, env: Env, procs: dict[str, Proc], cfg: dict[str, Any]
) -> dict[str, Any]:
    port = int(procs["intake"].url.rsplit(":", 1)[1])
    consumer = AIOKafkaConsumer(
        env.topics["leads_assigned"],
        env.topics["leads_received"],  # its Kafka timestamps split the latency into hops
        bootstrap_servers=env.bootstrap,
        group_id=f"bench-e2e-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: dict[str, tuple[float, str]] = {}
    # lead id -> (lead.received Kafka timestamp, decision time in the event, lead.assigned
    # Kafka timestamp), all wall-clock seconds on this one machine
    hops: dict[str, list[float]] = {}
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50, max_records=2000)
            now = time.time()
            for tp, msgs in batch.items():
                received = tp.topic == env.topics["leads_received"]
                for m in msgs:
                    ev = orjson.loads(m.value)
                    lead = ev.get("subject") or ev.get("data", {}).get("lead_id")
                    h = hops.setdefault(lead, [0.0, 0.0, 0.0])
                    if received:
                        h[0] = m.timestamp / 1000
                        continue
                    if lead not in seen:
                        decided = datetime.fromisoformat(ev["time"]).timestamp()
                        h[1], h[2] = decided, m.timestamp / 1000
                    seen.setdefault(lead, (now, ev.get("type", "?")))

    task = asyncio.create_task(consume())
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for rate in cfg["e2e_rates"]:  # low rate first: a backlog must not spill into it
            for rep in range(cfg["repeats"]):
                with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
                    ids_path = f.name
                cpu0 = {k: p.cpu() for k, p in procs.items()}
                t0 = time.perf_counter()
                gen = await asyncio.create_subprocess_exec(
                    *loadgen_argv(port, rate, cfg["run_s"], 10.0, uuid.uuid4().hex[:6], ids_path),
                    env={**os.environ, **ctx.secrets},
                    cwd=ROOT,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                out, err = await gen.communicate()
                if gen.returncode != 0:
                    raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
                http = orjson.loads(out.splitlines()[-1])
                pairs = orjson.loads(await asyncio.to_thread(Path(ids_path).read_bytes))
                os.unlink(ids_path)
                deadline = time.perf_counter() + cfg["e2e_grace_s"]
                missing = {lid for lid, _ in pairs}
                while missing and time.perf_counter() < deadline:
                    await asyncio.sleep(0.2)
                    missing = {lid for lid in missing if lid not in seen}
                wall = time.perf_counter() - t0
                lat = [seen[lid][0] - sched for lid, sched in pairs if lid in seen]
                kinds: dict[str, int] = {}
                for lid, _ in pairs:
                    if lid in seen:
                        kinds[seen[lid][1]] = kinds.get(seen[lid][1], 0) + 1
                r = {
                    "offered_rate": rate,
                    "accepted": len(pairs),
                    "http_error_ratio": http["error_ratio"],
                    "http_latency_ms": http["latency_ms"],
                    "decided": len(lat),
                    "missing": len(pairs) - len(lat),
                    "event_types": kinds,
                    "latency_ms": summary_ms(lat),
                    "hops_ms": _hops(pairs, seen, hops),
                    "cpu_per_s": {
                        k: round((p.cpu() - cpu0[k]) / wall, 3) for k, p in procs.items()
                    },
                }
                runs.setdefault(str(rate), []).append(r)
                lat_ms = r["latency_ms"]
                ctx.log(
                    f"  e2e {rate}/s run {rep + 1}: {r['decided']}/{r['accepted']} assigned, "
                    f"p50 {lat_ms['p50']} p95 {lat_ms['p95']} p99 {lat_ms['p99']} ms; hops p50/p99 "
                    + ", ".join(f"{k} {v['p50']}/{v['p99']}" for k, v in r["hops_ms"].items())
                )
                await asyncio.sleep(1.0)
    finally:
        stop.set()
        await task
        await consumer.stop()
    return {"runs": runs}


def _hops(
    pairs: list[list[Any]], seen: dict[str, tuple[float, str]], hops: dict[str, list[float]]
) -> dict[str, dict[str, float | None]]:
    """Where the end-to-end time goes, per lead: webhook sent -> intake's relay publishes
    lead.received; -> the router decides (the decision's event time); -> the router's relay
    publishes the decision; -> the outside consumer reads it."""
    parts: dict[str, list[float]] = {"intake": [], "router_in": [], "router_out": [], "read": []}
    for lid, sched in pairs:
        h = hops.get(lid)
        if lid not in seen or not h or not all(h):
            continue
        parts["intake"].append(h[0] - sched)
        parts["router_in"].append(h[1] - h[0])
        parts["router_out"].append(h[2] - h[1])
        parts["read"].append(seen[lid][0] - h[2])
    return {k: summary_ms(v) for k, v in parts.items()}


def end_to_end(ctx: Ctx, cfg: dict[str, Any]) -> dict[str, Any]:
    env = ctx.env("e2e")
    procs: dict[str, Proc] = {}
    try:
        for name in ("intake", "router", "followup"):
            procs[name] = env.service(name)
        return asyncio.run(_e2e_runs(ctx, env, procs, cfg))
    finally:
        for p in procs.values():
            ctx.stop(p)
        ctx.cleanup(env)


# --- 3. router catch-up ------------------------------------------------------------------------


async def _preload(env: Env, n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    events = await asyncio.to_thread(lead_received_events, n, uuid.uuid4().hex[:6])
    built = time.perf_counter() - t0
    producer = AIOKafkaProducer(
        bootstrap_servers=env.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    t1 = time.perf_counter()
    try:
        futs = [
            await producer.send(env.topics["leads_received"], value=v, key=k) for k, v in events
        ]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return {
        "events": n,
        "bytes": sum(len(v) for _, v in events),
        "build_s": round(built, 2),
        "produce_s": round(time.perf_counter() - t1, 2),
    }


async def _raw_consume(env: Env, n: int) -> dict[str, Any]:
    """Reference: a plain aiokafka consumer reading the same topic, nothing done per message."""
    consumer = AIOKafkaConsumer(
        env.topics["leads_received"],
        bootstrap_servers=env.bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    t0 = time.perf_counter()
    await consumer.start()
    count, first, first_count = 0, None, 0
    try:
        while count < n and time.perf_counter() - t0 < 120:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            got = sum(len(msgs) for msgs in batch.values())
            if got and first is None:
                first, first_count = time.perf_counter(), got  # rate after the first fetch
            count += got
        last = time.perf_counter()
    finally:
        await consumer.stop()
    steady = (count - first_count) / (last - first) if first and count > first_count else None
    return {
        "consumed": count,
        "total_s": round(last - t0, 2),
        "msgs_per_s": round(steady, 1) if steady else None,
        "msgs_per_s_incl_join": round(count / (last - t0), 1),
    }


async def _offsets(env: Env, group: str) -> tuple[int, int]:
    """(committed by the router's group, published on leads.assigned)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=env.bootstrap)
    await admin.start()
    await probe.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        done = sum(
            meta.offset
            for tp, meta in committed.items()
            if tp.topic == env.topics["leads_received"] and meta.offset > 0
        )
        tps = [TopicPartition(env.topics["leads_assigned"], p) for p in range(PARTITIONS)]
        out = sum((await probe.end_offsets(tps)).values())
        return done, out
    finally:
        await probe.stop()
        await admin.close()


def router_catchup(ctx: Ctx, cfg: dict[str, Any]) -> dict[str, Any]:
    n = cfg["router_events"]
    env = ctx.env("router")
    result: dict[str, Any] = {"events": n}
    proc: Proc | None = None
    try:
        result["preload"] = asyncio.run(_preload(env, n))
        ctx.log(f"  preloaded {n} lead.received events: {result['preload']}")
        result["reference"] = asyncio.run(_raw_consume(env, n))
        ctx.log(f"  raw aiokafka consume: {result['reference']}")
        group = f"{env.prefix}-router"
        t_start = time.perf_counter()
        proc = env.service("router")
        c0 = proc.cpu()
        samples: list[tuple[float, int, int]] = []
        t_out_done: float | None = None
        while time.perf_counter() - t_start < cfg["router_cap_s"]:
            done, out = asyncio.run(_offsets(env, group))
            now = time.perf_counter()
            samples.append((now, done, out))
            if out >= n and t_out_done is None:
                t_out_done = now
            if done >= n and out >= n:
                break
            time.sleep(0.5)
        cpu = proc.cpu() - c0
        moving = [s for s in samples if s[1] > 0]
        t_first, c_first = (moving[0][0], moving[0][1]) if moving else (t_start, 0)
        t_last, c_last, out_last = samples[-1]
        span = t_last - t_first
        result.update(
            {
                "decided": c_last,
                "published": out_last,
                "completed": c_last >= n,
                "startup_to_first_commit_s": round(t_first - t_start, 2),
                "decided_per_s": round((c_last - c_first) / span, 1) if span > 0 else None,
                "published_per_s": round(out_last / (t_last - t_start), 1),
                "wall_to_lag0_s": round(t_last - t_start, 2) if c_last >= n else None,
                "router_cpu_per_s": round(cpu / (t_last - t_start), 3),
                "router_cpu_ms_per_lead": round(1000 * cpu / max(1, c_last), 3),
                "samples": [
                    (round(t - t_start, 2), d, o)
                    for t, d, o in samples[:: max(1, len(samples) // 40)]
                ],
            }
        )
        ctx.log(
            f"  router: {c_last}/{n} decided, {result['decided_per_s']}/s steady, "
            f"cpu {result['router_cpu_per_s']}/s, {result['router_cpu_ms_per_lead']} ms/lead"
        )
    finally:
        if proc is not None:
            ctx.stop(proc)
        ctx.cleanup(env)
    return result


# --- 4. clocks at scale ------------------------------------------------------------------------

OWNER = '{"id": "rep-emma", "name": "Emma Wilson", "email": "emma.wilson@example.com"}'
MANAGER = '{"name": "Priya Patel", "email": "priya.patel@example.com"}'
CHAIN = '[{"level": 1, "action": "remind_owner", "after_seconds": 0}]'
_INSERT_CLOCKS = f"""
INSERT INTO followup.clocks (lead_id, assignment_seq, owner, manager, team_id, tier,
    window_seconds, started_at, due_at, status, next_level, next_fire_at, chain)
SELECT gen_random_uuid(), 1, '{OWNER}'::jsonb, '{MANAGER}'::jsonb, 'inbound', 'warm', 3600,
       now(), t, 'open', 1, t, '{CHAIN}'::jsonb
FROM (SELECT {{when}} AS t FROM generate_series(0, $1 - 1) AS i) AS s
"""


async def _insert_clocks(dsn: str, n: int, when: str, *args: Any) -> float:
    conn = await asyncpg.connect(dsn)
    t0 = time.perf_counter()
    try:
        await conn.execute("SET synchronous_commit = off")  # bench set-up only
        await conn.execute(_INSERT_CLOCKS.replace("{when}", when), n, *args)
        await conn.execute("ANALYZE followup.clocks")
    finally:
        await conn.close()
    return round(time.perf_counter() - t0, 2)


async def _due_stream(dsn: str, n: int, rate: float, lead_s: float) -> float:
    """Insert n clocks due at T0 + i/rate, T0 = now + lead_s; returns T0 (epoch seconds)."""
    conn = await asyncpg.connect(dsn)
    try:
        t0 = float(await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())")) + lead_s
        await conn.execute(
            _INSERT_CLOCKS.replace(
                "{when}", "to_timestamp($2) + (i / $3::float8) * interval '1 second'"
            ),
            n,
            t0,
            rate,
        )
        return t0
    finally:
        await conn.close()


async def _fired(dsn: str) -> tuple[int, list[float]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM fired_at - due_at) AS late FROM followup.escalations"
        )
        return len(rows), [float(r["late"]) for r in rows]
    finally:
        await conn.close()


async def _escalated_lateness(env: Env, expected: int, wait_s: float) -> list[float]:
    """Lateness as an outside consumer sees it: Kafka timestamp of lead.escalated - due time."""
    from datetime import datetime

    consumer = AIOKafkaConsumer(
        env.topics["leads_escalated"],
        bootstrap_servers=env.bootstrap,
        group_id=f"bench-esc-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[float] = []
    t0 = time.perf_counter()
    try:
        while len(out) < expected and time.perf_counter() - t0 < wait_s:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for msgs in batch.values():
                for m in msgs:
                    due = datetime.fromisoformat(orjson.loads(m.value)["data"]["due_at"])
                    out.append(m.timestamp / 1000 - due.timestamp())
    finally:
        await consumer.stop()
    return out


def clocks_case(ctx: Ctx, cfg: dict[str, Any], background: int) -> dict[str, Any]:
    env = ctx.env("clocks")
    proc: Proc | None = None
    rate, secs = cfg["clock_due_rate"], cfg["clock_due_s"]
    n_due = int(rate * secs)
    try:
        insert_s = asyncio.run(
            _insert_clocks(
                env.asyncpg_dsn, background, "now() + interval '1 day' + i * interval '1 ms'"
            )
        )
        ctx.log(f"  {background:,} open clocks inserted in {insert_s}s")
        proc = env.service("followup")
        time.sleep(2.0)
        c0, w0 = proc.cpu(), time.perf_counter()
        time.sleep(cfg["clock_idle_s"])
        idle_cpu = (proc.cpu() - c0) / (time.perf_counter() - w0)
        t_due = asyncio.run(_due_stream(env.asyncpg_dsn, n_due, rate, 2.0))
        time.sleep(max(0.0, t_due - time.time()))
        pg = postgres_pids(ctx.pg_port)
        c0, pg0, w0 = proc.cpu(), group_cpu_seconds(pg), time.perf_counter()
        time.sleep(secs)
        window = time.perf_counter() - w0
        cpu_window = (proc.cpu() - c0) / window
        pg_window = (group_cpu_seconds(pg) - pg0) / window
        deadline = time.perf_counter() + cfg["clock_drain_s"]
        fired = 0
        while time.perf_counter() < deadline:
            fired, _ = asyncio.run(_fired(env.asyncpg_dsn))
            if fired >= n_due:
                break
            time.sleep(0.5)
        cpu_total = proc.cpu() - c0
        drain_wall = time.perf_counter() - w0
        fired, late = asyncio.run(_fired(env.asyncpg_dsn))
        visible = asyncio.run(_escalated_lateness(env, fired, 20.0))
        result = {
            "open_clocks_background": background,
            "due": n_due,
            "due_rate": rate,
            "fired": fired,
            "all_fired": fired >= n_due,
            "insert_s": insert_s,
            "idle_cpu_per_s": round(idle_cpu, 3),
            "cpu_per_s": round(cpu_window, 3),
            "postgres_cpu_per_s": round(pg_window, 3),
            "cpu_ms_per_escalation": round(1000 * cpu_total / max(1, fired), 3),
            "fired_per_s": round(fired / drain_wall, 1),
            "lateness_ms": summary_ms(late),
            "published_lateness_ms": summary_ms(visible),
        }
        ctx.log(
            f"  {background:,} clocks: fired {fired}/{n_due}, lateness p50 "
            f"{result['lateness_ms']['p50']} p99 {result['lateness_ms']['p99']} ms, "
            f"followup cpu {result['cpu_per_s']}/s ({result['cpu_ms_per_escalation']} ms/esc), "
            f"idle {result['idle_cpu_per_s']}/s"
        )
        return result
    finally:
        if proc is not None:
            ctx.stop(proc)
        ctx.cleanup(env)


def clocks(ctx: Ctx, cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "large": clocks_case(ctx, cfg, cfg["clock_background_large"]),
        "small": clocks_case(ctx, cfg, cfg["clock_background_small"]),
    }
