"""Unit tests open no connections: a pytest plugin (loaded by tests/conftest.py).

`make test-unit` (`-m "not integration and not e2e"`) is the suite that must pass on a machine
without Kafka or PostgreSQL, so a test that needs a server has to say so with a mark. Left to
review, marks were forgotten (two files used the real servers unmarked). Here an unmarked test
fails when it opens a TCP connection, in its setup, body or teardown, or when it asks for
`migrated`, the fixture every server fixture builds on (a session fixture an earlier test already
made would otherwise let it use the servers without connecting anew).

The refusal is a RuntimeError, not an OSError: code that retries while a dependency is out
(`shared.outage.is_outage` treats OSError as an outage) must not retry forever here, and a
refusal the code under test swallows still fails the test when the phase ends.
"""

from __future__ import annotations

import socket
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

SERVER_MARKS = ("integration", "e2e", "faults")
SERVER_FIXTURE = "migrated"
_INET = (socket.AF_INET, socket.AF_INET6)


class UnmarkedConnection(RuntimeError):
    """An unmarked (unit) test tried to open a TCP connection."""


def _needs_servers(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(mark) is not None for mark in SERVER_MARKS)


def _advice(item: pytest.Item, what: str) -> str:
    return (
        f"{item.nodeid} {what}, but has none of the marks {', '.join(SERVER_MARKS)}: "
        "mark it (e.g. pytestmark = pytest.mark.integration) or keep it free of I/O"
    )


@contextmanager
def _refusing_connections(item: pytest.Item) -> Iterator[list[Any]]:
    attempts: list[Any] = []
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        if sock.family in _INET:
            attempts.append(address)
            raise UnmarkedConnection(_advice(item, f"opened a TCP connection to {address!r}"))
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        if sock.family in _INET:
            attempts.append(address)
            raise UnmarkedConnection(_advice(item, f"opened a TCP connection to {address!r}"))
        return connect_ex(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", guarded_connect)
        patch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
        yield attempts


def _guarded(item: pytest.Item) -> Generator[None, object, object]:
    if _needs_servers(item):
        return (yield)
    with _refusing_connections(item) as attempts:
        result = yield
    if attempts:  # the code under test caught the refusal: fail the test all the same
        pytest.fail(_advice(item, f"opened TCP connection(s) to {attempts!r}"), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    if not _needs_servers(item) and SERVER_FIXTURE in getattr(item, "fixturenames", ()):
        pytest.fail(_advice(item, f"uses the `{SERVER_FIXTURE}` fixture (real servers)"))
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    if nextitem is None:  # the last test's teardown also finalises the session's fixtures
        return (yield)  # (`migrated` drops its database there, whichever test ran last)
    return (yield from _guarded(item))
