"""`make bench` / `make bench-quick`: run the issue #8 benchmarks and issue #16's notify one,
print a table, write bench/results.json.

    python -m bench.run [--quick] [--only intake,reference,e2e,router,clocks,notify] [--out FILE]

Needs the local stack (`make stack`). Uses a dedicated database per scenario, cloned from a
migrated `baton_bench_<tag>_tpl`, and topics with a fresh prefix; drops them all at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench import notify, scenarios
from bench.common import BenchDatabases, bench_policy, bench_secrets, loadavg, machine, median

FULL: dict[str, Any] = {
    "repeats": 3,
    "run_s": 8.0,
    "intake_rates": [500, 2000],
    "knee_rates": [250, 500, 750, 1000, 1500, 2000, 2250, 2500, 3000, 4000, 5000, 6000, 8000],
    "intake_processes": 2,  # the *_multi scenarios: this many intake (reference) processes
    "knee_rates_multi": [1000, 2000, 2500, 3000, 4000, 5000, 6000, 8000],
    "knee_s": 5.0,
    "knee_p99_ms": 500.0,
    "e2e_rates": [200, 1000],
    "e2e_grace_s": 30.0,
    "router_events": 100_000,
    "router_cap_s": 180.0,
    "clock_background_large": 1_000_000,
    "clock_background_small": 10_000,
    "clock_due_rate": 5000.0,
    "clock_due_s": 10.0,
    "clock_idle_s": 3.0,
    "clock_drain_s": 45.0,
    "notify_rate": 200.0,
    "notify_s": 30.0,
    "notify_pairs": 1,  # runs without and with the dead endpoint (order alternates per pair)
    "notify_warmup": 40,
    "notify_grace_s": 15.0,
    "notify_planted_delay_ms": 0.0,  # > 0: healthy receivers answer this late, with-dead run
    "notify_processes": 1,  # notify replicas (one database, one consumer group); 2 to check scaling
}
QUICK: dict[str, Any] = {
    **FULL,
    "repeats": 1,
    "run_s": 2.0,
    "knee_rates": [250, 500, 1000],
    "knee_rates_multi": [500, 1000, 2000],
    "knee_s": 2.0,
    "e2e_grace_s": 10.0,
    "router_events": 3_000,
    "router_cap_s": 20.0,
    "clock_background_large": 100_000,
    "clock_due_s": 2.0,
    "clock_idle_s": 1.0,
    "clock_drain_s": 8.0,
    "notify_s": 8.0,
    "notify_grace_s": 8.0,
}
ALL = (
    "intake", "reference", "intake_multi", "reference_multi", "e2e", "router", "clocks", "notify"
)  # fmt: skip


def _med(runs: list[dict[str, Any]], *path: str) -> float | None:
    vals = []
    for r in runs:
        v: Any = r
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        if isinstance(v, int | float):
            vals.append(float(v))
    return median(vals)


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {}
    for target in ("intake", "reference", "intake_multi", "reference_multi"):
        res = results.get(target)
        if not res:
            continue
        for rate, runs in res["runs"].items():
            s[f"{target}_{rate}_accepted_per_s"] = _med(runs, "accepted_per_s")
            s[f"{target}_{rate}_p50_ms"] = _med(runs, "latency_ms", "p50")
            s[f"{target}_{rate}_p99_ms"] = _med(runs, "latency_ms", "p99")
            s[f"{target}_{rate}_errors"] = _med(runs, "error_ratio")
            s[f"{target}_{rate}_cpu_per_s"] = _med(runs, "server_cpu_per_s")
        s[f"{target}_knee_rate"] = res["knee_rate"]
        s[f"{target}_knee_accepted_per_s"] = res["knee_accepted_per_s"]
        s[f"{target}_max_accepted_per_s"] = res["max_accepted_per_s"]
        s[f"{target}_generator_limited"] = res["generator_limited"]
        s[f"{target}_ladder_top_passed"] = res.get("ladder_top_passed")
        s[f"{target}_processes"] = res.get("processes", 1)
    if results.get("e2e"):
        for rate, runs in results["e2e"]["runs"].items():
            for q in ("p50", "p95", "p99"):
                s[f"e2e_{rate}_{q}_ms"] = _med(runs, "latency_ms", q)
            s[f"e2e_{rate}_missing"] = _med(runs, "missing")
    if results.get("router"):
        r = results["router"]
        s["router_decided_per_s"] = r.get("decided_per_s")
        s["router_completed"] = r.get("completed")
        s["router_reference_msgs_per_s"] = (r.get("reference") or {}).get("msgs_per_s")
    if results.get("clocks"):
        for size in ("large", "small"):
            c = results["clocks"][size]
            s[f"clocks_{size}_open"] = c["open_clocks_background"]
            s[f"clocks_{size}_p50_ms"] = c["lateness_ms"]["p50"]
            s[f"clocks_{size}_p99_ms"] = c["lateness_ms"]["p99"]
            s[f"clocks_{size}_published_p99_ms"] = c["published_lateness_ms"]["p99"]
            s[f"clocks_{size}_cpu_per_s"] = c["cpu_per_s"]
            s[f"clocks_{size}_cpu_ms_per_escalation"] = c["cpu_ms_per_escalation"]
            s[f"clocks_{size}_fired_per_s"] = c["fired_per_s"]
            s[f"clocks_{size}_all_fired"] = c["all_fired"]
    if results.get("notify"):
        n = results["notify"]
        for key in ("rate", "without_dead_p50_ms", "without_dead_p99_ms", "with_dead_p50_ms",
                    "with_dead_p99_ms", "p99_ratio", "missing", "cpu_ms_per_delivered",
                    "cpu_ms_per_delivered_with_dead", "peak_rss_mb"):  # fmt: skip
            s[f"notify_{key}"] = n.get(key)
    s["rss_peak_mb"] = results.get("rss_peak_mb", {})
    return s


def verdicts(s: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, target, measured, met?) rows against the issue's targets."""
    rows: list[tuple[str, str, str, str]] = []

    def row(what: str, target: str, value: Any, ok: bool | None, digits: int = 1) -> None:
        shown = (
            "n/a"
            if value is None
            else (f"{value:,.{digits}f}" if isinstance(value, float) else str(value))
        )
        rows.append((what, target, shown, "-" if ok is None else ("yes" if ok else "NO")))

    for sfx in ("", "_multi"):
        n = s.get(f"intake{sfx}_processes", 1)
        procs = "1 process" if n == 1 else f"{n} processes"
        knee = s.get(f"intake{sfx}_knee_accepted_per_s")
        if sfx and knee is None:
            continue
        ok = None if knee is None else knee >= 2000
        row(f"intake leads/s at the knee, {procs}", ">= 2,000", knee, ok)
        ref = s.get(f"reference{sfx}_knee_accepted_per_s")
        ratio = (knee / ref) if knee and ref else None
        # a reference that passed the top of the ladder has a higher knee still: the ratio is
        # then an upper bound, so it can prove a miss but never a pass ("-" if above 0.5)
        bound = bool(s.get(f"reference{sfx}_ladder_top_passed"))
        met = (
            None
            if ratio is None
            else (ratio >= 0.5 if not bound else (False if ratio < 0.5 else None))
        )
        row(
            f"intake / reference knee, {procs}{' (upper bound)' if bound else ''}",
            ">= 0.5",
            ratio,
            met,
            digits=3,  # 0.497 must not print as 0.50 beside a "NO"
        )
        if not sfx:
            p99 = s.get("intake_500_p99_ms")
            row("intake p99 @ 500/s (ms)", "<= 50", p99, None if p99 is None else p99 <= 50)
    e = s.get("e2e_200_p99_ms")
    row("end to end p99 @ 200/s (ms)", "<= 150", e, None if e is None else e <= 150)
    rt = s.get("router_decided_per_s")
    row("router catch-up leads/s", ">= 2,000", rt, None if rt is None else rt >= 2000)
    cp = s.get("clocks_large_p99_ms")
    row(
        f"escalation lateness p99, {s.get('clocks_large_open', 0):,} clocks (ms)",
        "<= 1,000",
        cp,
        None if cp is None else cp <= 1000 and bool(s.get("clocks_large_all_fired")),
    )
    a, b = s.get("clocks_large_cpu_ms_per_escalation"), s.get("clocks_small_cpu_ms_per_escalation")
    cr = (a / b) if a and b else None
    cr_ok = None if cr is None else cr <= 1.2
    row("followup CPU per escalation, large/small", "<= 1.2", cr, cr_ok, digits=2)
    if "notify_p99_ratio" in s:
        rate = f"@ {s.get('notify_rate', 200):,.0f}/s"
        p99 = s.get("notify_without_dead_p99_ms")
        row(f"notify Kafka -> first attempt p99 {rate}, no dead endpoint (ms)", "-", p99, None)
        missing = s.get("notify_missing")
        row("notify healthy deliveries missing after the grace", "0", missing,
            None if missing is None else missing == 0)  # fmt: skip
        nr = s["notify_p99_ratio"]
        # a run that did not deliver everything measured a backlog, not isolation: NO
        ok = None if nr is None else nr <= 1.2 and missing == 0
        row("notify healthy p99, with / without a dead endpoint", "<= 1.2", nr, ok, digits=2)
        cpu = s.get("notify_cpu_ms_per_delivered")
        row("notify CPU per delivered message (ms)", "-", cpu, None, digits=3)
    limits = {"reference": None, "notify": 150.0}
    for name, mb in sorted((s.get("rss_peak_mb") or {}).items()):
        limit = limits.get(name, 200.0)
        row(f"peak RSS {name} (MB)", "-" if limit is None else f"< {limit:.0f}", mb,
            None if limit is None else mb < limit)  # fmt: skip
    return rows


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        cells = zip(r, widths, strict=True)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))

    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)])


def detail_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    keys = [k for k in s if k != "rss_peak_mb"]
    return [(k, "n/a" if s[k] is None else str(s[k])) for k in keys]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="~4-minute smoke version")
    p.add_argument("--only", default=",".join(ALL), help="comma list of " + ",".join(ALL))
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results.json"))
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (JSON), e.g. --set run_s=2 --set 'e2e_rates=[50]'",
    )
    args = p.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in cfg:
            p.error(f"unknown config key {key!r}; known: {', '.join(cfg)}")
        cfg[key] = orjson.loads(value)
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(only) - set(ALL)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    tag = uuid.uuid4().hex[:6]
    logdir = Path(tempfile.mkdtemp(prefix=f"baton-bench-{tag}-"))
    started = time.time()
    info = machine()
    print(f"baton bench ({'quick' if args.quick else 'full'}), logs in {logdir}")
    print(f"machine: {info['nproc']} x {info['cpu_model']}, load {info['load_at_start']}")
    base_url = os.environ.get("DATABASE_URL", "postgresql+asyncpg://baton@127.0.0.1:55432/baton")
    dbs = BenchDatabases(base_url, tag)
    ctx = scenarios.Ctx(
        dbs=dbs,
        logdir=logdir,
        policy=bench_policy(logdir / "policy.yaml"),
        secrets=bench_secrets(),
        pg_port=int(base_url.rsplit(":", 1)[1].split("/")[0]),
        rss={},
        log=lambda msg: print(msg, flush=True),
    )
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    try:
        t0 = time.time()
        dbs.prepare()
        timings["template_db"] = round(time.time() - t0, 1)
        steps = {
            "intake": lambda: scenarios.intake(ctx, cfg, reference=False),
            "reference": lambda: scenarios.intake(ctx, cfg, reference=True),
            "intake_multi": lambda: scenarios.intake(
                ctx, cfg, reference=False, processes=cfg["intake_processes"]
            ),
            "reference_multi": lambda: scenarios.intake(
                ctx, cfg, reference=True, processes=cfg["intake_processes"]
            ),
            "e2e": lambda: scenarios.end_to_end(ctx, cfg),
            "router": lambda: scenarios.router_catchup(ctx, cfg),
            "clocks": lambda: scenarios.clocks(ctx, cfg),
            "notify": lambda: notify.notify(ctx, cfg),
        }
        for name in ALL:
            if name not in only:
                continue
            print(f"[{name}] load {loadavg()}", flush=True)
            t0 = time.time()
            try:
                results[name] = steps[name]()
            except Exception as exc:  # one broken scenario must not hide the others
                print(f"[{name}] FAILED: {type(exc).__name__}: {exc}", flush=True)
                results[name] = None
                results.setdefault("failures", {})[name] = f"{type(exc).__name__}: {exc}"
            timings[name] = round(time.time() - t0, 1)
    finally:
        dbs.drop_all()
    results["rss_peak_mb"] = ctx.rss
    info["load_at_end"] = loadavg()
    summary = summarise(results)
    out = {
        "mode": "quick" if args.quick else "full",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_s": round(time.time() - started, 1),
        "machine": info,
        "config": cfg,
        "timings_s": timings,
        "summary": summary,
        "targets": [
            dict(zip(("what", "target", "measured", "met"), r, strict=True))
            for r in verdicts(summary)
        ],
        "results": results,
    }
    Path(args.out).write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    print()
    print(table(detail_rows(summary), ("measure (median of runs)", "value")))
    print()
    print(table(verdicts(summary), ("target", "goal", "measured", "met")))
    print(
        f"\nmachine: {info['nproc']} x {info['cpu_model']}; load {info['load_at_start']} at start, "
        f"{info['load_at_end']} at end; {out['wall_s']} s; results in {args.out}"
    )
    return 1 if results.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
