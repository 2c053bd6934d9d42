#!/usr/bin/env bash
# Checks the observability files under deploy/ the way CI does:
#   - prometheus.yml (and its commented kubernetes_sd variant) with `promtool check config`,
#   - egret-alerts.yaml with `promtool check rules` and its unit tests with `promtool test rules`,
#   - the Grafana dashboard: valid JSON, the stable uid, and every PromQL `expr` in it parses.
# Runs as root on a fresh Debian 12 and installs what is missing (Debian's `prometheus`
# package for promtool, jq) without leaving a Prometheus server running. Safe to re-run.
# Usage: .ci/observability-checks.sh   (from anywhere; it works from the repository root)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly PROM_DIR=deploy/prometheus
readonly DASHBOARD=deploy/grafana/egret.json
readonly DASHBOARD_UID=egret-overview
readonly POLICY_RC=/usr/sbin/policy-rc.d

work="$(mktemp -d)"
made_policy_rc=""
cleanup() {
  rm -rf "$work"
  rm -f "$PROM_DIR/.prometheus-kubernetes-check.yml"
  if [[ -n "$made_policy_rc" ]]; then rm -f "$POLICY_RC"; fi
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

install_missing_tools() {
  local packages=()
  command -v promtool >/dev/null || packages+=(prometheus)
  command -v jq >/dev/null || packages+=(jq)
  ((${#packages[@]})) || return 0

  step "installing ${packages[*]}"
  # Debian's prometheus package starts a server on :9090 from its maintainer scripts. A
  # policy-rc.d that answers 101 ("action forbidden") makes invoke-rc.d and
  # deb-systemd-invoke skip the start, so no port that tests need is taken. Only ours is
  # removed afterwards; an existing one (as in Docker images) is left as it was.
  if [[ ! -e "$POLICY_RC" ]]; then
    printf '#!/bin/sh\n# Written by .ci/observability-checks.sh while it installs packages.\nexit 101\n' >"$POLICY_RC"
    chmod 0755 "$POLICY_RC"
    made_policy_rc=1
  fi
  apt-get update -q
  # No recommends: they pull prometheus-node-exporter, another server (:9100).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
  if [[ -n "$made_policy_rc" ]]; then rm -f "$POLICY_RC"; made_policy_rc=""; fi

  # The unit is still enabled, so it would start at the next boot; and an init system that
  # ignored policy-rc.d may have started it. Stop and disable it either way.
  if [[ " ${packages[*]} " == *" prometheus "* ]]; then
    if [[ -d /run/systemd/system ]]; then
      systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/prometheus ]]; then
      /etc/init.d/prometheus stop >/dev/null 2>&1 || true
      update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
  fi
}

check_prometheus_config() {
  # promtool resolves rule_files against the config file's folder, so the relative
  # `egret-alerts.yaml` in prometheus.yml is checked (rules included) from any directory.
  step "promtool check config $PROM_DIR/prometheus.yml"
  promtool check config "$PROM_DIR/prometheus.yml"

  # The kubernetes_sd example is commented out in place of static_configs; check it too.
  # The copy sits beside the original so that its rule_files path resolves the same way.
  local k8s="$PROM_DIR/.prometheus-kubernetes-check.yml"
  awk '
    /# BEGIN kubernetes_sd example/ { inside = 1; next }
    /# END kubernetes_sd example/   { inside = 0; next }
    inside                          { sub(/# /, ""); print; next }
    /^    static_configs:/          { skip = 1; next }
    skip && /^      /               { next }
    { skip = 0; print }
  ' "$PROM_DIR/prometheus.yml" >"$k8s"
  grep -q '^    kubernetes_sd_configs:' "$k8s" || { echo "kubernetes_sd example not found" >&2; return 1; }
  step "promtool check config (kubernetes_sd variant)"
  local out rc=0
  out="$(promtool check config "$k8s" 2>&1)" || rc=$?
  if ((rc != 0)) && grep -q 'field kubernetes_sd_configs not found' <<<"$out"; then
    # Debian builds Prometheus without Kubernetes discovery. Check the rest of the job
    # (the relabel rules) with a static target in the discovery's place.
    echo "  this promtool has no kubernetes_sd (Debian's build); checking the relabel rules with a static target"
    sed -i -e 's/^    kubernetes_sd_configs:/    static_configs:/' \
           -e 's/^      - role: pod$/      - targets: ["pod.example:9901"]/' "$k8s"
    rc=0
    out="$(promtool check config "$k8s" 2>&1)" || rc=$?
  fi
  printf '%s\n' "$out"
  rm -f "$k8s"
  return "$rc"
}

check_alert_rules() {
  step "promtool check rules $PROM_DIR/egret-alerts.yaml"
  promtool check rules "$PROM_DIR/egret-alerts.yaml"
  # The test file names its rule file relative to its own folder.
  step "promtool test rules $PROM_DIR/egret-alerts.test.yaml"
  promtool test rules "$PROM_DIR/egret-alerts.test.yaml"
}

check_dashboard() {
  step "dashboard $DASHBOARD"
  jq empty "$DASHBOARD"
  local uid
  uid="$(jq -r '.uid' "$DASHBOARD")"
  if [[ "$uid" != "$DASHBOARD_UID" ]]; then
    echo "$DASHBOARD: uid is '$uid', expected the stable '$DASHBOARD_UID' (links and provisioning rely on it)" >&2
    return 1
  fi
  # Grafana sends each expr to Prometheus after substituting its variables. Do the same
  # with representative values and let promtool parse every expression as a recording rule.
  local rules="$work/dashboard-exprs.rules.yaml"
  {
    echo "groups:"
    echo "  - name: dashboard-exprs"
    echo "    rules:"
    jq -r '[.. | objects | .expr? // empty | strings] | to_entries[]
           | (.value | gsub("\\$__rate_interval"; "5m") | gsub("\\$__interval"; "1m") | gsub("\\$__range"; "6h")) as $expr
           | "      - record: dashboard:expr_\(.key)\n        expr: \($expr | tojson)"' "$DASHBOARD"
  } >"$rules"
  local count
  count="$(grep -c 'record:' "$rules" || true)"
  if ((count == 0)); then echo "$DASHBOARD: no expr found" >&2; return 1; fi
  if ! promtool check rules "$rules" >/dev/null; then
    echo "$DASHBOARD: dashboard:expr_N above is the dashboard's N-th expr (from 0) after variable substitution" >&2
    return 1
  fi
  echo "  uid $uid, $count PromQL expressions parse"
}

install_missing_tools
check_prometheus_config
check_alert_rules
check_dashboard
step "observability checks passed"
