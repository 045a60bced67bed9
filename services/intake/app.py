"""Intake app: the lifespan owns the DB pool, producer and outbox relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.intake.api import router
from services.intake.domain.errors import IntakeError
from services.intake.metrics import IntakeMetrics
from services.intake.service import IntakeService, load_secrets
from shared.http import install_error_handlers, install_metrics_middleware, ops_router
from shared.policy import load_policy
from shared.runtime import Runtime
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    policy = load_policy(settings.policy_path)  # invalid policy: refuse to start, naming the field
    runtime = Runtime.build(settings, "intake")
    service = IntakeService(
        policy=policy,
        secrets=load_secrets(policy),
        outbox=runtime.outbox,
        topic=settings.topics.leads_received,
        max_body_bytes=settings.max_body_bytes,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="Baton intake", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.intake = service
    app.state.intake_metrics = IntakeMetrics(runtime.metrics.registry)
    install_error_handlers(app, IntakeError)
    install_metrics_middleware(app, runtime.metrics)
    app.include_router(ops_router(runtime.checks(), runtime.metrics))
    app.include_router(router)
    return app
