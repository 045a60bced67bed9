"""Followup app: lifespan owns the pool, producer, relay, consumer and the clock ticker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from services.followup import handlers
from services.followup.api import router
from services.followup.domain.webhooks import ActivitySources
from services.followup.metrics import FollowupMetrics
from services.followup.service import FollowupService
from services.followup.ticker import Ticker
from shared.auth import parse_tokens
from shared.http import install_error_handlers, install_metrics_middleware, ops_router
from shared.policy import load_policy
from shared.runtime import Runtime
from shared.settings import Settings
from shared.webhook_secrets import load_secrets


def create_app(settings: Settings) -> FastAPI:
    policy = load_policy(settings.policy_path)
    senders = (
        (f"activity_sources[{i}].auth", s.name, s.auth)
        for i, s in enumerate(policy.activity_sources)
    )
    activity_sources = ActivitySources(
        by_name={s.name: s for s in policy.activity_sources},
        # a missing or bad secret stops start-up, naming the field
        secrets=load_secrets(senders, kind="activity source"),
    )
    runtime = Runtime.build(settings, "followup")
    metrics = FollowupMetrics(runtime.metrics.registry)
    service = FollowupService(
        policy=policy,
        outbox=runtime.outbox,
        metrics=metrics,
        escalated_topic=settings.topics.leads_escalated,
        activity_topic=settings.topics.leads_activity,
        dlq_topic=settings.topics.leads_dlq,
        unknown_lead_grace=timedelta(seconds=settings.followup_unknown_lead_grace_seconds),
    )
    ticker = Ticker(
        runtime=runtime,
        service=service,
        max_sleep=settings.ticker_max_sleep_seconds,
        health_interval=settings.followup_health_refresh_seconds,
    )
    runtime.consume(
        group_id=f"{settings.consumer_group_prefix}-followup",
        topics=[
            settings.topics.leads_assigned,
            settings.topics.leads_activity,
            settings.topics.contacts_erased,
        ],
        fn=handlers.build(service, ticker.wake),
        many=handlers.build_many(service, ticker.wake),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await ticker.start()
        try:
            yield
        finally:
            await ticker.stop()
            await runtime.stop()

    app = FastAPI(title="Baton followup", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.followup = service
    app.state.ticker = ticker
    app.state.activity_sources = activity_sources
    app.state.max_body_bytes = settings.max_body_bytes
    app.state.tokens = parse_tokens(settings.api_tokens)
    install_error_handlers(app)
    install_metrics_middleware(app, runtime.metrics)
    app.include_router(ops_router(runtime.checks(), runtime.metrics))
    app.include_router(router)
    return app
