#!/usr/bin/env bash
# `make dashboard-png`: run the system, a local Prometheus scraping it, a few minutes of demo
# traffic, then render the Grafana dashboard's panels to docs/dashboard.png.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$BATON_ROOT/deploy/local/demo-env.sh"
cd "$BATON_ROOT"
MINUTES="${MINUTES:-5}"
dir="$BATON_LOCAL_DIR/prometheus"; mkdir -p "$dir"
sed 's/scrape_interval: 15s/scrape_interval: 2s/; s/evaluation_interval: 15s/evaluation_interval: 5s/' \
  deploy/prometheus/prometheus.yml > "$dir/prometheus.yml"
cp deploy/prometheus/rules.yml "$dir/rules.yml"
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --web.listen-address=127.0.0.1:9090 > "$dir/prometheus.log" 2>&1 &
prom=$!
.venv/bin/python deploy/local/run.py > "$BATON_LOCAL_DIR/dashboard-run.log" 2>&1 &
run=$!
trap 'kill $run $prom 2>/dev/null || true; wait $run $prom 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -sf http://127.0.0.1:8003/readyz >/dev/null && break; sleep 0.5; done
.venv/bin/python deploy/local/dashboard_demo.py "$MINUTES"
sleep 10
.venv/bin/python deploy/grafana/render.py --minutes "$((MINUTES + 1))" --out docs/dashboard.png
