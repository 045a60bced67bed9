"""Alerts reach someone: the Alertmanager configuration is valid (amtool, Debian's
prometheus-alertmanager), every severity the rules use is routed to its receiver, and neither
the rules nor the dashboard need the `service` label only the bundled scrape configs add."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
RULES = DEPLOY / "prometheus" / "rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "baton.json"
RECEIVERS = {"page": "baton-pages", "ticket": "baton-tickets"}
SERVICE_LABEL = re.compile(r"\bservice\s*(=|!=|=~|!~)|by\s*\([^)]*\bservice\b|labels\.service\b")


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("amtool")
    assert exe, (
        "amtool is missing: `make tools` installs it (Debian package prometheus-alertmanager)"
    )
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


def test_the_alertmanager_configuration_is_valid() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_severity_the_rules_use_reaches_its_receiver() -> None:
    rules = yaml.safe_load(RULES.read_text())
    severities = {
        r["labels"]["severity"] for g in rules["groups"] for r in g["rules"] if "alert" in r
    }
    assert severities == set(RECEIVERS), "a new severity needs a route and a receiver"
    for severity, receiver in RECEIVERS.items():
        result = amtool(
            "config", "routes", "test", f"--config.file={CONFIG}",
            f"--verify.receivers={receiver}", "alertname=BatonX", f"severity={severity}",
        )  # fmt: skip
        assert result.returncode == 0, f"severity={severity}: {result.stdout}{result.stderr}"


def test_rules_and_dashboard_do_not_need_the_service_label() -> None:
    rules = yaml.safe_load(RULES.read_text())
    texts = [
        (r.get("alert") or r["record"], r["expr"] + json.dumps(r.get("annotations", {})))
        for g in rules["groups"]
        for r in g["rules"]
    ]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    texts += [(p["title"], json.dumps(p.get("targets", []))) for p in panels]
    uses = [where for where, text in texts if SERVICE_LABEL.search(text)]
    assert uses == [], f"these select or group by `service`, which not every scrape sets: {uses}"
