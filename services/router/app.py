"""Router app: lifespan owns the pool, producer, relay and the consumer; SIGHUP reloads policy."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from types import SimpleNamespace

from fastapi import FastAPI

from services.router import admin, handlers
from services.router.api import reload_policy, router
from services.router.metrics import RouterMetrics
from services.router.service import PolicyHolder, RouterService
from shared.auth import parse_tokens
from shared.errors import DomainError
from shared.events import utcnow
from shared.http import install_error_handlers, install_metrics_middleware, ops_router
from shared.logs import get_logger
from shared.policy import load_policy
from shared.runtime import Runtime
from shared.settings import Settings

log = get_logger(__name__)
GAUGE_REFRESH_SECONDS = 15.0


def create_app(settings: Settings) -> FastAPI:
    holder = PolicyHolder(load_policy(settings.policy_path))
    runtime = Runtime.build(settings, "router", custom_plans=True)  # look-ups: see CUSTOM_PLANS
    metrics = RouterMetrics(runtime.metrics.registry)
    metrics.policy_info.set(time.time())
    service = RouterService(
        holder=holder,
        outbox=runtime.outbox,
        metrics=metrics,
        assigned_topic=settings.topics.leads_assigned,
        erased_topic=settings.topics.contacts_erased,
    )
    runtime.consume(
        group_id=f"{settings.consumer_group_prefix}-router",
        topics=[
            settings.topics.leads_received,
            settings.topics.leads_escalated,
            settings.topics.leads_activity,
        ],
        fn=handlers.build(service),
        many=handlers.build_many(service),
    )

    async def refresh_gauges(wake: asyncio.Event) -> None:
        """Eligibility changes with the clock (working hours, out of office) and on reload:
        refresh the gauges and route leads that were parked for want of an eligible rep."""
        while True:
            try:
                async with runtime.sessions() as session:
                    await service.refresh_team_gauges(session, now=utcnow())
                async with runtime.sessions() as session, session.begin():
                    moved = await service.retry_parked(session, now=utcnow())
                if moved:
                    runtime.relay.wake()
            except Exception as exc:  # a database blip must not end the loop
                log.warning("router.gauges_failed", error=type(exc).__name__)
            with suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=GAUGE_REFRESH_SECONDS)
            wake.clear()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        app.state.gauges_wake = wake
        gauges = asyncio.create_task(refresh_gauges(wake), name="router-gauges")

        def on_hup() -> None:
            try:
                result = reload_policy(SimpleNamespace(app=app))  # type: ignore[arg-type]
                log.info("policy.reloaded", version=result["version"])
            except DomainError as exc:
                log.error("policy.reload_rejected", error=exc.detail)

        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, on_hup)
        try:
            yield
        finally:
            with suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGHUP)
            gauges.cancel()
            with suppress(asyncio.CancelledError):
                await gauges
            app.state.gauges_wake = None
            await runtime.stop()

    app = FastAPI(title="Baton router", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.policy = holder
    app.state.policy_path = settings.policy_path
    app.state.router_metrics = metrics
    app.state.router_service = service
    app.state.tokens = parse_tokens(settings.api_tokens)
    install_error_handlers(app)
    install_metrics_middleware(app, runtime.metrics)
    app.include_router(ops_router(runtime.checks(), runtime.metrics))
    app.include_router(router)
    app.include_router(admin.router)
    return app
