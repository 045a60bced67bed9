"""The one outage rule: which failures mean "a dependency is out" (retry / 503) and which mean
"this input is bad" (dead-letter / 4xx-5xx). Real PostgreSQL errors are in
tests/faults/test_classification.py; these cover the wrappers without a server."""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.outage import is_outage


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _wrapped(sqlstate: str) -> DBAPIError:
    return DBAPIError("SELECT 1", None, _PgError(sqlstate))


def test_dependency_failures_are_outages() -> None:
    assert is_outage(PoolTimeout("QueuePool limit reached"))
    assert is_outage(KafkaConnectionError())
    assert is_outage(ConnectionRefusedError())
    assert is_outage(TimeoutError())
    for code in ("08006", "53300", "57P01", "57P03"):
        assert is_outage(_wrapped(code)), code


def test_sqlstate_found_through_the_cause_chain() -> None:
    try:
        try:
            raise _PgError("57P03")
        except _PgError as inner:
            raise RuntimeError("while handling the event") from inner
    except RuntimeError as exc:
        assert is_outage(exc)


def test_bad_input_is_not_an_outage() -> None:
    assert not is_outage(ValueError("bad"))
    assert not is_outage(_wrapped("22P02"))
    assert not is_outage(_wrapped("23505"))
