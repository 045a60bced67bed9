"""Router app: lifespan owns the pool, producer, relay, the consumer and the gauges ticker;
SIGHUP reloads the policy."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from services.router import handlers
from services.router.api import router
from services.router.metrics import RouterMetrics
from services.router.service import PolicyHolder, RouterService
from services.router.ticker import Ticker
from shared.auth import parse_tokens
from shared.errors import DomainError
from shared.http import install_error_handlers, install_metrics_middleware, ops_router
from shared.logs import get_logger
from shared.policy import load_policy
from shared.runtime import Runtime
from shared.settings import Settings

log = get_logger(__name__)


def create_app(settings: Settings) -> FastAPI:
    holder = PolicyHolder(load_policy(settings.policy_path))
    runtime = Runtime.build(settings, "router", custom_plans=True)  # look-ups: see CUSTOM_PLANS
    metrics = RouterMetrics(runtime.metrics.registry)
    metrics.record_policy(holder.policy.version_id)
    service = RouterService(
        holder=holder,
        outbox=runtime.outbox,
        metrics=metrics,
        assigned_topic=settings.topics.leads_assigned,
        erased_topic=settings.topics.contacts_erased,
        status_topic=settings.topics.reps_status,
    )
    ticker = Ticker(runtime=runtime, service=service)
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

    def on_hup() -> None:
        try:
            result = service.reload_policy(settings.policy_path)
        except DomainError as exc:
            log.error("policy.reload_rejected", error=exc.detail)
            return
        ticker.wake()  # eligible-reps gauges follow the new teams at once
        log.info("policy.reloaded", version=result["version"])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await ticker.start()
        loop = asyncio.get_running_loop()
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, on_hup)
        try:
            yield
        finally:
            with suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGHUP)
            await ticker.stop()
            await runtime.stop()

    app = FastAPI(title="Baton router", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.policy_path = settings.policy_path
    app.state.router_service = service
    app.state.ticker = ticker
    app.state.tokens = parse_tokens(settings.api_tokens)
    install_error_handlers(app)
    install_metrics_middleware(app, runtime.metrics)
    app.include_router(ops_router(runtime.checks(), runtime.metrics))
    app.include_router(router)
    return app
