"""`baton migrate`: upgrade every service's schema (also used by `make run`, the test session
and the benchmarks)."""

from __future__ import annotations

from ops.services import SERVICES
from shared.migrations import upgrade


def run_all(database_url: str) -> None:
    upgrade(database_url, SERVICES)
