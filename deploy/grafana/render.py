"""Render deploy/grafana/dashboards/baton.json to a PNG from a real Prometheus.

Grafana itself cannot be installed on our build machines (it is in none of the package
registries they reach), so this draws the same panels, with the same PromQL and units, from
Prometheus' query API. Used for the picture in docs/dashboard.md (`make dashboard-png`).

    python deploy/grafana/render.py --prometheus http://127.0.0.1:9090 --minutes 15 \
        --out docs/dashboard.png
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DASHBOARD = Path(__file__).parent / "dashboards" / "baton.json"


def query_range(prom: str, expr: str, start: float, end: float, step: float) -> list[Any]:
    resp = httpx.get(
        f"{prom}/api/v1/query_range",
        params={"query": expr, "start": start, "end": end, "step": step},
        timeout=30,
    )
    resp.raise_for_status()
    return list(resp.json()["data"]["result"])


def label(fmt: str, metric: dict[str, str]) -> str:
    out = fmt or ",".join(f"{k}={v}" for k, v in metric.items()) or "value"
    for key, value in metric.items():
        out = out.replace("{{" + key + "}}", value)
    return out


def render(prom: str, minutes: int, out: Path) -> None:
    dash = json.loads(DASHBOARD.read_text())
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    end = time.time()
    start = end - minutes * 60
    step = max(5.0, minutes * 60 / 120)
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(18, 3.2 * rows), squeeze=False)
    fig.suptitle(f"{dash['title']} — last {minutes} min (rendered from Prometheus)", fontsize=14)
    for ax, panel in zip(axes.flat, panels, strict=False):
        ax.set_title(panel["title"], fontsize=10)
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        drawn = 0
        for target in panel["targets"]:
            for series in query_range(prom, target["expr"], start, end, step):
                pts = [
                    (float(t), float(v)) for t, v in series["values"] if v not in ("NaN", "+Inf")
                ]
                if not pts:
                    continue
                xs = [(t - end) / 60 for t, _ in pts]
                ys = [v * 100 if unit == "percentunit" else v for _, v in pts]
                if panel["type"] == "stat":
                    ax.text(
                        0.5,
                        0.45,
                        f"{ys[-1]:.3g}{'%' if unit == 'percentunit' else ''}",
                        ha="center",
                        va="center",
                        fontsize=26,
                        transform=ax.transAxes,
                    )
                    ax.set_axis_off()
                else:
                    ax.plot(xs, ys, label=label(target.get("legendFormat", ""), series["metric"]))
                drawn += 1
        if panel["type"] != "stat":
            ax.set_xlabel("minutes ago", fontsize=8)
            ax.set_ylabel(
                {"percentunit": "%", "s": "seconds", "reqps": "req/s", "ops": "ops/s"}.get(
                    unit, ""
                ),
                fontsize=8,
            )
            ax.tick_params(labelsize=7)
            if drawn:
                ax.legend(fontsize=6, loc="upper left")
        if not drawn:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            if panel["type"] == "stat":
                ax.set_axis_off()
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_axis_off()
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--minutes", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard.png"))
    args = parser.parse_args()
    render(args.prometheus, args.minutes, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
