"""A real Prometheus (Debian's package) scrapes the three running services; every rule evaluates."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.conftest import Stack, free_port

pytestmark = pytest.mark.e2e


async def test_prometheus_scrapes_all_services_and_rules_evaluate(
    stack: Stack, tmp_path: Path
) -> None:
    exe = shutil.which("prometheus")
    assert exe, "prometheus is missing: `make tools` installs Debian's prometheus package"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy" / "prometheus" / "rules.yml")],
        "scrape_configs": [
            {
                "job_name": f"baton-{svc}",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{stack.ports[svc]}"], "labels": {"service": svc}}
                ],
            }
            for svc in ("intake", "router", "followup")
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as prom:
            up: dict[str, str] = {}
            rules: list[dict[str, Any]] = []
            for _ in range(120):
                await asyncio.sleep(0.5)
                try:
                    targets = (await prom.get("/api/v1/targets")).json()["data"]["activeTargets"]
                    groups = (await prom.get("/api/v1/rules")).json()["data"]["groups"]
                except (httpx.HTTPError, KeyError, ValueError):
                    continue
                up = {t["labels"]["job"]: t["health"] for t in targets}
                rules = [r for g in groups for r in g["rules"]]
                evaluated = all(r.get("lastEvaluation", "").startswith("20") for r in rules)
                if len(up) == 3 and set(up.values()) == {"up"} and rules and evaluated:
                    break
            assert up == {"baton-intake": "up", "baton-router": "up", "baton-followup": "up"}
            assert len(rules) >= 18
            broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
            assert broken == {}, broken
            result = await prom.get("/api/v1/query", params={"query": "baton_sla_clocks_open"})
            assert result.json()["data"]["result"], "followup's gauges are scraped"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
