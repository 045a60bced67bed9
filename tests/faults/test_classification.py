"""Which database failures a consumer retries forever (the dependency is out) and which ones
dead-letter the event after a few attempts (the event is bad), on real PostgreSQL errors.

Found by the PostgreSQL-outage fault test: while PostgreSQL starts or stops it refuses
connections with SQLSTATE 57P03, which SQLAlchemy raises as a plain DBAPIError without
`connection_invalidated`; treated as a bad event, a lead.received arriving in that window
was dead-lettered after three quick retries, i.e. never assigned.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from sqlalchemy import text

from shared.db import make_engine
from shared.outage import is_outage
from shared.settings import Settings

pytestmark = pytest.mark.integration


async def _error_of(url: str, sql: str) -> BaseException:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("expected a database error")


async def test_refused_connections_are_transient(migrated: Settings) -> None:
    """53300 too many connections (same class of refusal as 57P03 while starting/stopping)."""
    role = f"faults_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(migrated.asyncpg_dsn)
    await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    try:
        url = migrated.database_url.replace("://baton@", f"://{role}@", 1)
        exc = await _error_of(url, "SELECT 1")
        assert "too many connections" in str(exc)
        assert is_outage(exc), repr(exc)
    finally:
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


async def test_terminated_session_is_transient(migrated: Settings) -> None:
    """57P01: the backend was terminated (what `pg_ctl stop -m fast` does to every session)."""
    engine = make_engine(migrated.database_url, pool_size=1)
    admin = await asyncpg.connect(migrated.asyncpg_dsn)
    try:
        async with engine.connect() as conn:
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(Exception) as info:
                await conn.execute(text("SELECT 1"))
        assert is_outage(info.value), repr(info.value)
    finally:
        await admin.close()
        await engine.dispose()


async def test_bad_data_is_not_transient(migrated: Settings) -> None:
    """22P02 invalid text representation: retrying cannot help, the event is dead-lettered."""
    exc = await _error_of(migrated.database_url, "SELECT 'not-a-uuid'::uuid")
    assert not is_outage(exc), repr(exc)
