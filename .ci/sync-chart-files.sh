#!/usr/bin/env bash
# Keeps the Helm chart's copies of the monitoring files in step with their sources:
#   deploy/prometheus/egret-alerts.yaml -> helm/egret/files/egret-alerts.yaml
#   deploy/grafana/egret.json           -> helm/egret/files/egret.json
# Helm can only read files inside the chart, hence the copies.
#
#   .ci/sync-chart-files.sh          copy the sources over the chart's copies
#   .ci/sync-chart-files.sh --check  change nothing; exit 1 if a copy differs or a source is missing
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=(
  "deploy/prometheus/egret-alerts.yaml:helm/egret/files/egret-alerts.yaml"
  "deploy/grafana/egret.json:helm/egret/files/egret.json"
)

mode=copy
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

status=0
for pair in "${pairs[@]}"; do
  src=${pair%%:*}
  dst=${pair#*:}
  if [[ ! -f "$src" ]]; then
    echo "sync-chart-files: source $src is missing (the chart's $dst cannot be checked)" >&2
    status=1
    continue
  fi
  if cmp -s "$src" "$dst"; then
    echo "sync-chart-files: $dst matches $src"
  elif [[ $mode == check ]]; then
    echo "sync-chart-files: $dst differs from $src; run .ci/sync-chart-files.sh and commit" >&2
    diff -u "$dst" "$src" | head -40 >&2 || true
    status=1
  else
    cp "$src" "$dst"
    echo "sync-chart-files: copied $src to $dst"
  fi
done
exit $status
