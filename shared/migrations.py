"""Alembic plumbing shared by every service's migration tree.

Each service owns one PostgreSQL schema and one Alembic tree under services/<name>/migrations,
with its version table inside its own schema. `upgrade()` applies the trees it is given; the
list of services is the top floor's (`ops.migrate.run_all`), not shared's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

_ROOT = Path(__file__).resolve().parent.parent


def alembic_config(service: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url)
    cfg.attributes["schema"] = service
    return cfg


def upgrade(database_url: str, services: Iterable[str]) -> None:
    """Upgrade each named service's schema to its head, in the order given."""
    for service in services:
        command.upgrade(alembic_config(service, database_url), "head")


def run_env(context: object) -> None:
    """Body of every service's migrations/env.py: online, async engine, schema-local version table."""
    from alembic import context as ctx

    cfg = ctx.config
    schema = cfg.attributes.get("schema") or cfg.get_main_option("schema")
    url = cfg.get_main_option("sqlalchemy.url")
    assert schema and url, "alembic config needs schema and sqlalchemy.url"

    def do_run(connection: Connection) -> None:
        connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        ctx.configure(
            connection=connection,
            version_table_schema=schema,
            include_schemas=True,
            transaction_per_migration=True,
        )
        with ctx.begin_transaction():
            ctx.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    asyncio.run(main())


def create_plumbing(op: Operations, schema: str) -> None:
    """Outbox and inbox tables plus the NOTIFY trigger that wakes the relay on commit."""
    op.execute(
        f"""
        CREATE TABLE {schema}.outbox (
            id bigserial PRIMARY KEY,
            event_id text NOT NULL UNIQUE,
            topic text NOT NULL,
            key text NOT NULL,
            payload bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE {schema}.inbox (
            event_id text PRIMARY KEY,
            topic text NOT NULL,
            handled_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(f"CREATE INDEX inbox_handled_at ON {schema}.inbox (handled_at)")
    op.execute(
        f"""
        CREATE FUNCTION {schema}.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('baton_outbox_{schema}', ''); RETURN NULL; END $$
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER outbox_notify AFTER INSERT ON {schema}.outbox
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.outbox_notify()
        """
    )
