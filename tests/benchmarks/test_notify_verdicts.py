"""The notify rows of `make bench`'s target table: the isolation ratio prints NO when the dead
endpoint moves the healthy p99, and also when deliveries are missing (a backlog was measured,
not isolation); notify's RSS goal is 150 MB, not the other services' 200."""

from __future__ import annotations

import sys
from typing import Any

from tests.conftest import ROOT

if str(ROOT) not in sys.path:  # bench/ is a top-level directory, not an installed package
    sys.path.insert(0, str(ROOT))

from bench.run import summarise, verdicts


def _results(with_p99: float, without_p99: float, missing: int, rss: float) -> dict[str, Any]:
    return {
        "notify": {
            "rate": 200.0,
            "with_dead_p50_ms": 10.0,
            "with_dead_p99_ms": with_p99,
            "without_dead_p50_ms": 10.0,
            "without_dead_p99_ms": without_p99,
            "p99_ratio": round(with_p99 / without_p99, 3),
            "missing": missing,
            "cpu_ms_per_delivered": 2.5,
            "peak_rss_mb": rss,
        },
        "rss_peak_mb": {"notify": rss, "router": 140.0},
    }


def _met(results: dict[str, Any]) -> dict[str, str]:
    return {what: met for what, _goal, _measured, met in verdicts(summarise(results))}


RATIO = "notify healthy p99, with / without a dead endpoint"


def test_an_unmoved_p99_with_everything_delivered_is_ok() -> None:
    met = _met(_results(55.0, 50.0, 0, 120.0))
    assert met[RATIO] == "yes"
    assert met["notify healthy deliveries missing after the grace"] == "yes"
    assert met["peak RSS notify (MB)"] == "yes"
    assert met["peak RSS router (MB)"] == "yes"  # 140 < 200: the general goal


def test_a_moved_p99_prints_no() -> None:
    assert _met(_results(61.0, 50.0, 0, 120.0))[RATIO] == "NO"


def test_missing_deliveries_print_no_even_with_an_equal_p99() -> None:
    met = _met(_results(50.0, 50.0, 3, 120.0))
    assert met[RATIO] == "NO"
    assert met["notify healthy deliveries missing after the grace"] == "NO"


def test_notify_rss_goal_is_150_mb() -> None:
    assert _met(_results(50.0, 50.0, 0, 160.0))["peak RSS notify (MB)"] == "NO"
