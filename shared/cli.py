"""`baton` command: serve a service, migrate the database, create topics, check a policy;
and the operator tools: simulate a policy on history, explain a lead, report calibration."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import sys
from datetime import datetime, timedelta

from shared.logs import configure_logging, get_logger
from shared.settings import Settings

log = get_logger("baton.cli")
GC_GEN0_THRESHOLD = 20_000  # allocations between young collections (CPython default: 700)
SERVICES = ("intake", "router", "followup")


def _serve(settings: Settings, service: str) -> int:
    import uvicorn

    from shared.policy import PolicyError

    module = importlib.import_module(f"services.{service}.app")
    try:
        app = module.create_app(settings)
    except PolicyError as exc:
        log.error("policy.invalid", service=service, error=str(exc))
        print(f"baton {service}: invalid routing policy: {exc}", file=sys.stderr)
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
    """What-if, audit and calibration (services/router/whatif, services/router/calibration)."""
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


def _operator(settings: Settings, args: argparse.Namespace) -> int:
    from services.router.whatif import cli as tools

    return tools.run(settings, args)


async def purge(settings: Settings, *, days: int, now: datetime | None = None) -> tuple[int, int]:
    """Retention (`baton purge`, run daily from cron or a CronJob): anonymise leads received
    more than `days` ago, keeping their non-personal facts. Intake and router erase their own
    rows here, in batches; each router batch publishes `contact.erased` through the router's
    outbox (its relay sends it), and followup erases its notes when it consumes that.
    Returns (intake leads, router leads) erased."""
    from services.intake.service import purge_expired as purge_intake
    from services.router.service import purge_expired as purge_router
    from services.router.store import forget_erased_contacts
    from shared.db import Outbox, make_engine, make_sessionmaker
    from shared.events import utcnow

    now = now or utcnow()
    before = now - timedelta(days=days)
    engine = make_engine(settings.database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    outbox = Outbox("router")
    counts = [0, 0]
    try:
        while True:
            async with sessions() as session, session.begin():
                done = await purge_intake(session, before=before, now=now)
            counts[0] += len(done)
            if not done:
                break
        while True:
            async with sessions() as session, session.begin():
                done = await purge_router(
                    session,
                    outbox=outbox,
                    topic=settings.topics.contacts_erased,
                    before=before,
                    now=now,
                )
            counts[1] += len(done)
            if not done:
                break
        # Erased contacts' digests are needed only while a lead from before the erasure can
        # still be in Kafka: the topics' retention, plus a day of margin.
        forget_before = now - timedelta(hours=settings.topic_retention_hours + 24)
        async with sessions() as session, session.begin():
            forgotten = await forget_erased_contacts(session, before=forget_before)
    finally:
        await engine.dispose()
    log.info(
        "retention.purged",
        days=days,
        intake=counts[0],
        router=counts[1],
        erased_contacts_forgotten=forgotten,
    )
    return counts[0], counts[1]


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
        from shared.migrations import run_all

        run_all(settings.database_url)
        print("migrations applied")
        return 0
    if args.cmd == "topics":
        from shared.kafka import ensure_topics

        asyncio.run(ensure_topics(settings))
        print("topics ready: " + ", ".join(settings.topics.all()))
        return 0
    if args.cmd == "docs":
        from shared.contract_docs import write

        for path in write():
            print(f"wrote {path}")
        return 0
    if args.cmd == "purge":
        from shared.policy import load_policy

        days = args.days or load_policy(settings.policy_path).retention.lead_days
        result = asyncio.run(purge(settings, days=days))
        print(f"purged leads older than {days} days: intake {result[0]}, router {result[1]}")
        return 0
    if args.cmd in ("simulate", "explain", "report"):
        return _operator(settings, args)
    if args.cmd == "check-policy":
        from shared.policy import PolicyError, load_policy

        try:
            policy = load_policy(args.path or settings.policy_path)
        except PolicyError as exc:
            print(f"invalid policy: {exc}", file=sys.stderr)
            return 2
        print(f"policy ok: {policy.label} ({policy.version_id})")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
