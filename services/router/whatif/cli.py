"""`baton simulate | explain | report calibration`: parse nothing, run one tool, print.

Each tool opens one READ ONLY transaction (rolled back), so running them against production
never changes a lead, a rep's load or a round-robin pointer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry, generate_latest

from services.router.calibration.metrics import calibration_gauges
from services.router.calibration.plot import plot_png
from services.router.calibration.report import render_text as render_calibration
from services.router.whatif.run import (
    explain_lead,
    period,
    read_only_session,
    run_calibration,
    run_simulation,
)
from services.router.whatif.simulate import render_text as render_simulation
from shared.errors import DomainError
from shared.events import utcnow
from shared.policy import Policy, PolicyError, load_policy
from shared.settings import Settings


def _policy(path: str | Path) -> Policy:
    return load_policy(path)


def _dump(data: object) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


async def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    policy = _policy(args.policy)
    since, until = period(args.since, args.until, now=utcnow())
    async with read_only_session(settings.database_url) as session:
        started = time.perf_counter()
        report = await run_simulation(session, policy=policy, since=since, until=until)
        elapsed = time.perf_counter() - started
    if args.json:
        _dump(report.as_dict())
    else:
        sys.stdout.write(render_simulation(report, max_changes=args.changes))
    print(f"replayed {report.leads} leads in {elapsed:.1f} s", file=sys.stderr)
    return 0


async def _explain(settings: Settings, args: argparse.Namespace) -> int:
    policy = _policy(args.policy or settings.policy_path)
    async with read_only_session(settings.database_url) as session:
        sys.stdout.write(await explain_lead(session, args.lead_id, policy=policy))
    return 0


async def _calibration(settings: Settings, args: argparse.Namespace) -> int:
    policy = _policy(args.policy or settings.policy_path)
    since, until = period(args.since, args.until, now=utcnow())
    async with read_only_session(settings.database_url) as session:
        report = await run_calibration(
            session, policy=policy, since=since, until=until, keep=args.keep
        )
    if args.json:
        _dump(report.as_dict())
    else:
        sys.stdout.write(render_calibration(report))
    if args.png:
        await asyncio.to_thread(Path(args.png).write_bytes, plot_png(report))
        print(f"wrote {args.png}", file=sys.stderr)
    if args.prom:
        # Prometheus text format for node_exporter's textfile collector (or a Pushgateway):
        # the calibration is a periodic report, not a per-request measurement.
        registry = CollectorRegistry()
        calibration_gauges(report, registry)
        await asyncio.to_thread(Path(args.prom).write_bytes, generate_latest(registry))
        print(f"wrote {args.prom}", file=sys.stderr)
    return 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    tools = {"simulate": _simulate, "explain": _explain, "report": _calibration}
    try:
        return asyncio.run(tools[args.cmd](settings, args))
    except PolicyError as exc:
        print(f"invalid policy: {exc}", file=sys.stderr)
        return 2
    except (DomainError, ValueError) as exc:
        print(f"baton {args.cmd}: {exc}", file=sys.stderr)
        return 2
