"""Plumbing shared by the benchmarks: machine facts, percentiles, process stats (from /proc),
service processes, the dedicated bench database and the bench routing policy.

Nothing here touches `make run`'s database or topics: every scenario gets a database cloned
from a migrated template (`baton_bench_<tag>_tpl`) and topics with a fresh prefix.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- numbers -------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, round(q / 100.0 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def summary_ms(values_s: list[float]) -> dict[str, float | None]:
    v = sorted(values_s)
    out: dict[str, float | None] = {}
    for name, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p999", 99.9)):
        p = percentile(v, q)
        out[name] = None if p is None else round(p * 1000, 2)
    out["max"] = round(v[-1] * 1000, 2) if v else None
    return out


def median(values: list[float]) -> float | None:
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


# --- the machine ---------------------------------------------------------------------------


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_at_start": loadavg(),
    }


# --- processes -----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the process's peak resident set so far."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def postgres_pids(port: int) -> list[int]:
    """The local PostgreSQL cluster's processes (postmaster and its children)."""
    root: int | None = None
    for pidfile in (ROOT / ".local").glob("**/postmaster.pid"):
        try:
            lines = pidfile.read_text().splitlines()
            if len(lines) > 3 and lines[3].strip() == str(port):
                root = int(lines[0])
        except (OSError, ValueError):
            continue
    if root is None:
        return []
    pids = [root]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == root:
            pids.append(int(stat.parent.name))
    return pids


def group_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += cpu_seconds(pid)
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode} during start-up")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {timeout}s")


@dataclass
class Proc:
    """One process the bench started (a service or the reference server); stopped by its pid."""

    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def peak_rss_mb(self) -> float | None:
        return peak_rss_mb(self.pid)

    def stop(self) -> float | None:
        """Terminate (SIGTERM, then SIGKILL after 30 s); returns the peak RSS it reached."""
        rss = self.peak_rss_mb()
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        return rss


def start_process(name: str, argv: list[str], env: dict[str, str], port: int, logdir: Path) -> Proc:
    log = logdir / f"{name}-{port}.log"
    handle = log.open("ab")
    popen = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    proc = Proc(name=name, popen=popen, url=f"http://127.0.0.1:{port}", log=log)
    try:
        wait_ready(proc.url, popen)
    except Exception:
        proc.stop()
        raise
    profiler = os.environ.get("BENCH_PYSPY")
    if profiler:  # sample the whole life of the process; py-spy exits with it
        out = logdir / f"profile-{name}-{popen.pid}.txt"
        subprocess.Popen(
            [profiler, "record", "--pid", str(popen.pid), "--rate", "97", "--format", "raw",
             "--nonblocking", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    return proc


# --- the bench environment -----------------------------------------------------------------


def bench_secrets() -> dict[str, str]:
    """Fresh secrets for the policy's signed sources (never written anywhere but env)."""
    return {
        "BATON_SECRET_CHAT_WIDGET": "whsec_" + base64.b64encode(os.urandom(24)).decode(),
        "BATON_SECRET_TYPEFORM": base64.b64encode(os.urandom(24)).decode(),
        "BATON_SECRET_HUBSPOT": base64.b64encode(os.urandom(24)).decode(),
        "BATON_SECRET_CRM_ACTIVITIES": "whsec_" + base64.b64encode(os.urandom(24)).decode(),
    }


def bench_policy(path: Path) -> Path:
    """The example policy, made fit for load: every rep on duty around the clock with room for
    any number of open leads, no rate limit on the chat widget (a bench is one sender posting
    thousands a second), SLA windows of a day so nothing escalates during intake/e2e runs."""
    policy: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "policy.example.yaml").read_text())
    all_day = {d: ["00:00", "24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    for team in policy["teams"]:
        for rep in team["reps"]:
            rep["working_hours"] = all_day
            rep["capacity"] = 1_000_000_000
            rep.pop("out_of_office", None)
    for src in policy["sources"]:
        if src["auth"]["scheme"] != "none":
            src.pop("rate_limit", None)
    for tier in policy["sla"]["tiers"].values():
        tier["window_seconds"] = 86400
        tier["clock"] = "wall"
    path.write_text(yaml.safe_dump(policy))
    return path


def topic_names(prefix: str) -> dict[str, str]:
    from shared.settings import Topics

    return {name: f"{prefix}.{default}" for name, default in Topics().model_dump().items()}


@dataclass
class Env:
    """Database, topics and process environment of one scenario."""

    database_url: str
    dbname: str
    prefix: str
    topics: dict[str, str]
    env: dict[str, str]
    logdir: Path
    bootstrap: str

    def settings(self) -> Any:
        from shared.settings import Settings, Topics

        return Settings(
            database_url=self.database_url,
            topics=Topics.model_validate(self.topics),
            consumer_group_prefix=self.prefix,
            kafka_bootstrap_servers=self.bootstrap,
        )

    @property
    def asyncpg_dsn(self) -> str:
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    def service(self, name: str, **extra_env: str) -> Proc:
        port = free_port()
        env = {**self.env, f"{name.upper()}_PORT": str(port), **extra_env}
        return start_process(
            name, [sys.executable, "-m", "ops.cli", "serve", name], env, port, self.logdir
        )


class BenchDatabases:
    """A migrated template database, cloned per scenario (CREATE DATABASE ... TEMPLATE)."""

    def __init__(self, base_url: str, tag: str) -> None:
        self.base_url = base_url
        self.admin_dsn = base_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.template = f"baton_bench_{tag}_tpl"
        self.created: list[str] = []

    def url_for(self, name: str) -> str:
        return self.base_url.rsplit("/", 1)[0] + "/" + name

    def prepare(self) -> None:
        from ops.migrate import run_all

        asyncio.run(admin_sql(self.admin_dsn, f'CREATE DATABASE "{self.template}"'))
        self.created.append(self.template)
        run_all(self.url_for(self.template))

    def clone(self, scenario: str) -> tuple[str, str]:
        name = f"{self.template[:-4]}_{scenario}_{uuid.uuid4().hex[:4]}"
        asyncio.run(
            admin_sql(self.admin_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        )
        self.created.append(name)
        return name, self.url_for(name)

    def drop(self, name: str) -> None:
        asyncio.run(admin_sql(self.admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in reversed(list(self.created)):
            try:
                self.drop(name)
            except Exception as exc:  # keep dropping the others
                print(f"bench: could not drop {name}: {exc}", file=sys.stderr)


async def admin_sql(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def make_env(
    dbs: BenchDatabases, scenario: str, logdir: Path, policy: Path, secrets_env: dict[str, str]
) -> Env:
    from shared.kafka import ensure_topics

    dbname, url = dbs.clone(scenario)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    topics = topic_names(prefix)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    env = {
        **os.environ,
        **secrets_env,
        **{f"TOPIC_{k.upper()}": v for k, v in topics.items()},
        "CONSUMER_GROUP_PREFIX": prefix,
        "DATABASE_URL": url,
        "POLICY_PATH": str(policy),
        "API_TOKENS": "bench:admin:" + hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
    }
    e = Env(
        database_url=url,
        dbname=dbname,
        prefix=prefix,
        topics=topics,
        env=env,
        logdir=logdir,
        bootstrap=bootstrap,
    )
    asyncio.run(ensure_topics(e.settings()))
    return e


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Remove a scenario's topics (the 100k-event one is ~150 MB)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
