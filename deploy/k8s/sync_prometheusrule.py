"""Write deploy/k8s/production/prometheusrule.yaml from deploy/prometheus/rules.yml.

The Prometheus Operator takes rules only inline in a PrometheusRule, so the one rules file is
copied into it; tests/ecosystem/test_k8s_production.py fails when the copy is stale. Run
`.venv/bin/python deploy/k8s/sync_prometheusrule.py` after editing rules.yml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[1]
RULES = DEPLOY / "prometheus" / "rules.yml"
OUT = DEPLOY / "k8s" / "production" / "prometheusrule.yaml"
HEADER = (
    "# Generated from deploy/prometheus/rules.yml by deploy/k8s/sync_prometheusrule.py: edit\n"
    "# the rules there (promtool tests them) and run the script. Needs the Prometheus\n"
    "# Operator's CRDs (monitoring.coreos.com/v1).\n"
)


def prometheus_rule() -> dict[str, Any]:
    rules = yaml.safe_load(RULES.read_text())
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "baton",
            "namespace": "baton",
            "labels": {"app.kubernetes.io/part-of": "baton"},
        },
        "spec": {"groups": rules["groups"]},
    }


def render() -> str:
    return HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=100)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
