"""`baton` command: serve a service, migrate the database, create topics, write the contract
docs, check a policy, purge expired personal data; and the operator tools: simulate a policy on
history, explain a lead, report calibration. Every subcommand's flags and its runner are here.

The operator tools each open one READ ONLY transaction (rolled back), so running them against
production never changes a lead, a rep's load or a round-robin pointer.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import sys
import time
from pathlib import Path

import orjson

from ops.services import SERVICES
from shared.errors import DomainError
from shared.logs import configure_logging, get_logger
from shared.policy import PolicyError, load_policy
from shared.settings import Settings

log = get_logger("baton.cli")
GC_GEN0_THRESHOLD = 20_000  # allocations between young collections (CPython default: 700)


def _serve(settings: Settings, service: str) -> int:
    import uvicorn

    module = importlib.import_module(f"services.{service}.app")
    try:
        app = module.create_app(settings)
    except PolicyError as exc:
        log.error("policy.invalid", service=service, error=str(exc))
        what = getattr(exc, "what", "routing policy")  # notify's config error says its own
        print(f"baton {service}: invalid {what}: {exc}", file=sys.stderr)
        return 2
    port = getattr(settings, f"{service}_port")
    # The objects built so far (modules, policy, app) live as long as the process: freeze them
    # out of the collector's view, and collect the young generation less often. Each request
    # or event allocates many short-lived objects; the default threshold (700) runs a
    # collection every few requests, each walking every tracked object of its generation.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)
    uvicorn.run(
        app,
        host=settings.host,
        port=port,
        loop="uvloop",
        log_config=None,
        timeout_graceful_shutdown=10,
        access_log=False,
    )
    return 0


def _operator_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """What-if (services/router/whatif), explain (ops/explain), calibration (ops/calibration)."""
    sim = sub.add_parser("simulate", help="replay stored leads through a proposed policy")
    sim.add_argument("--policy", required=True, help="the proposed policy file")
    sim.add_argument("--since", default="30d", help="30d, 12h, 2w or an ISO date (default 30d)")
    sim.add_argument("--until", help="end of the period (default now)")
    sim.add_argument("--json", action="store_true", help="print the full report as JSON")
    sim.add_argument("--changes", type=int, default=20, help="owner changes to list in text")
    explain = sub.add_parser("explain", help="a lead's decisions and follow-up in plain words")
    explain.add_argument("lead_id")
    explain.add_argument("--policy", help="policy for rep names (default POLICY_PATH)")
    report = sub.add_parser("report", help="reports on stored history")
    kinds = report.add_subparsers(dest="report", required=True)
    cal = kinds.add_parser("calibration", help="outcomes by score band, stage, source and rule")
    cal.add_argument("--policy", help="policy for costs and signals (default POLICY_PATH)")
    cal.add_argument("--since", default="365d")
    cal.add_argument("--until")
    cal.add_argument("--keep", type=float, default=1.0, help="share of conversions to keep")
    cal.add_argument("--json", action="store_true")
    cal.add_argument("--png", help="also write the plot to this PNG file")
    cal.add_argument(
        "--prom", help="also write the figures as Prometheus text (textfile collector)"
    )


def _dump(data: object) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


async def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from services.router.whatif.run import period, run_simulation
    from services.router.whatif.simulate import render_text
    from shared.db import read_only_session
    from shared.events import utcnow

    policy = load_policy(args.policy)
    since, until = period(args.since, args.until, now=utcnow())
    async with read_only_session(settings.database_url) as session:
        started = time.perf_counter()
        report = await run_simulation(session, policy=policy, since=since, until=until)
        elapsed = time.perf_counter() - started
    if args.json:
        _dump(report.as_dict())
    else:
        sys.stdout.write(render_text(report, max_changes=args.changes))
    print(f"replayed {report.leads} leads in {elapsed:.1f} s", file=sys.stderr)
    return 0


async def _explain(settings: Settings, args: argparse.Namespace) -> int:
    from ops.explain import explain_lead
    from shared.db import read_only_session

    policy = load_policy(args.policy or settings.policy_path)
    async with read_only_session(settings.database_url) as session:
        sys.stdout.write(await explain_lead(session, args.lead_id, policy=policy))
    return 0


async def _calibration(settings: Settings, args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, generate_latest

    from ops.calibration import run_calibration
    from ops.calibration.metrics import calibration_gauges
    from ops.calibration.plot import plot_png
    from ops.calibration.report import render_text
    from services.router.whatif.run import period
    from shared.db import read_only_session
    from shared.events import utcnow

    policy = load_policy(args.policy or settings.policy_path)
    since, until = period(args.since, args.until, now=utcnow())
    async with read_only_session(settings.database_url) as session:
        report = await run_calibration(
            session, policy=policy, since=since, until=until, keep=args.keep
        )
    if args.json:
        _dump(report.as_dict())
    else:
        sys.stdout.write(render_text(report))
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


def _operator(settings: Settings, args: argparse.Namespace) -> int:
    tools = {"simulate": _simulate, "explain": _explain, "report": _calibration}
    try:
        return asyncio.run(tools[args.cmd](settings, args))
    except PolicyError as exc:
        print(f"invalid policy: {exc}", file=sys.stderr)
        return 2
    except (DomainError, ValueError) as exc:
        print(f"baton {args.cmd}: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="baton")
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="run one service")
    serve.add_argument("service", choices=SERVICES)
    sub.add_parser("migrate", help="apply every service's Alembic migrations")
    sub.add_parser("topics", help="create the contract's Kafka topics (idempotent)")
    sub.add_parser("docs", help="regenerate docs/asyncapi.yaml and docs/openapi/*.json")
    check = sub.add_parser("check-policy", help="validate a routing policy file")
    check.add_argument("path", nargs="?")
    purge_p = sub.add_parser(
        "purge", help="retention: erase personal data of leads older than retention.lead_days"
    )
    purge_p.add_argument("--days", type=int, help="override the policy's retention.lead_days")
    _operator_parsers(sub)
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging(settings.log_level)
    if args.cmd == "serve":
        return _serve(settings, args.service)
    if args.cmd == "migrate":
        from ops.migrate import run_all

        run_all(settings.database_url)
        print("migrations applied")
        return 0
    if args.cmd == "topics":
        from shared.kafka import ensure_topics

        asyncio.run(ensure_topics(settings))
        print("topics ready: " + ", ".join(settings.topics.all()))
        return 0
    if args.cmd == "docs":
        from ops.contract_docs import write

        for path in write():
            print(f"wrote {path}")
        return 0
    if args.cmd == "purge":
        from ops.retention import purge

        days = args.days or load_policy(settings.policy_path).retention.lead_days
        result = asyncio.run(purge(settings, days=days))
        print(f"purged leads older than {days} days: intake {result[0]}, router {result[1]}")
        return 0
    if args.cmd in ("simulate", "explain", "report"):
        return _operator(settings, args)
    if args.cmd == "check-policy":
        try:
            policy = load_policy(args.path or settings.policy_path)
        except PolicyError as exc:
            print(f"invalid policy: {exc}", file=sys.stderr)
            return 2
        # What only a service can check (notify's templates) is checked here too, so a file
        # that passes check-policy also starts every service.
        from services.notify.domain.people import template_errors

        if missing := template_errors(policy):
            print(f"invalid policy: {'; '.join(missing)}", file=sys.stderr)
            return 2
        print(f"policy ok: {policy.label} ({policy.version_id})")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
