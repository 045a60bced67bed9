"""The one rule for "a dependency is out" versus "this input is bad".

Consumers retry an event forever while PostgreSQL or Kafka is out (and dead-letter it only when
the event itself is at fault); intake answers 503 + Retry-After instead of 500 when PostgreSQL
could not make a lead durable. Both ask the same question, so the answer lives here once. Only
exception classes are imported: no web framework, no connection is opened.
"""

from __future__ import annotations

from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATE classes that mean "the database cannot serve us right now", not "this input is bad":
# 08 connection exception, 53 insufficient resources (e.g. 53300 too many connections),
# 57 operator intervention (57P01 admin shutdown, 57P03 cannot connect now: starting/stopping).
_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57")
# asyncpg errors seen raw (not wrapped by SQLAlchemy) when a connection drops or is refused.
_OUTAGE_ERROR_NAMES = frozenset(
    {"ConnectionDoesNotExistError", "CannotConnectNowError", "ConnectionRefusedError"}
)
_OUTAGE_TYPES = (OperationalError, InterfaceError, PoolTimeout, OSError, KafkaError, TimeoutError)


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, looking through SQLAlchemy's and asyncpg's wrappers."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(code, str):
            return code
        orig = getattr(e, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, e.__cause__]
    return None


def is_outage(exc: BaseException) -> bool:
    """True when a dependency (PostgreSQL, Kafka, the network) failed rather than the input.

    The pool's own timeout (no connection free within `pool_timeout`) counts: the database is
    too busy to take the work now, which retrying later can fix.
    """
    if isinstance(exc, _OUTAGE_TYPES):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    code = _sqlstate(exc)
    if code is not None and code[:2] in _OUTAGE_SQLSTATE_CLASSES:
        return True
    return type(exc).__name__ in _OUTAGE_ERROR_NAMES
