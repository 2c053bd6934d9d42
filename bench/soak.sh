#!/usr/bin/env bash
# Egret's soak and fault test (docs/performance.md): one command, bounded, run by hand (not part of
# `mvn verify` or .ci/run).
#
#   bench/soak.sh                # about 12 minutes: 60 s warm-up, 600 s measured, 2 snapshots
#   SOAK_DURATION=60 bench/soak.sh                    # a short check of the script itself
#
# Mixed traffic from several worker threads through Egret, each operation checked against the
# outcome its scenario must have: upgrades (http:// re-sent over TLS; GET, POST, large bodies,
# new connections, plain HTTP inside a CONNECT), tunnels (CONNECT + TLS with the run's CA),
# denials (no rule, deny rule, wrong port, 127.0.0.2 refused by the address guard), TLS failures
# (an upstream whose CA Egret does not trust), DNS failures (new names under **.soak.invalid),
# client resets (SO_LINGER 0 mid-head, mid-body, mid-response, mid-ClientHello, mid-tunnel), slow
# readers (256 KiB read 4 KiB per 10 ms through an 8 KiB receive buffer) and upstream resets
# mid-body (headers + 64 KiB of 256 KiB, then an RST). The config file is rewritten (atomically,
# a real rule change) every SOAK_RELOAD_EVERY seconds, /metrics is scraped every second.
#
# After the warm-up and at the end the traffic pauses and, once Egret's egret_client_connections
# and egret_tunnels_active read 0 and its pools have timed out, two full GCs are forced (jcmd
# GC.run) and open file descriptors, heap after GC, RSS and threads are read. It prints a
# markdown table (also target/soak/results.md; JSON lines in target/soak/results.jsonl, one
# line per scrape in target/soak/timeline.jsonl) and exits 1 when any operation had an outcome
# its fault does not explain, when a rewrite was not counted as a successful reload (or any
# reload failed), when Egret counted a failure no fault causes, or when a figure ends more than
# 10 % above its start (FDs + 5, threads + 2).
#
# The warm-up rewrites the config every 2.5 s: Vert.x starts one more thread of its internal
# blocking pool per reload until the pool's 4 are there (Run.start sizes it), and the baseline should be the steady
# state, not that ramp. A warm-up much under 60 s leaves part of the ramp in the measured phase,
# and the thread figure then fails.
#
# Loopback only (127.0.0.1 and 127.0.0.3, ports the kernel picks); certificates made with openssl
# per run; Egret is a copy of proxy/target/egret.jar (built when absent) with the Dockerfile's
# sidecar JVM profile (deploy/jvm/sidecar.flags) plus -XX:MaxRAM=128m. Python 3 standard library only (bench/soak.py).
#
# Knobs (environment): SOAK_DURATION (s measured, 600), SOAK_WARMUP (s, 60), SOAK_WORKERS
# (threads, 8), SOAK_RATE (operations/s aimed at across the workers, 80; slow readers make the
# real rate about 50), SOAK_RELOAD_EVERY (s, 10), SOAK_WARMUP_RELOAD_EVERY (s, 2.5),
# SOAK_SCRAPE_EVERY (s, 1), SOAK_TOLERANCE (0.10), SOAK_SEED (1), SOAK_JAVA (java binary, the
# image's Java by default, found by bench/lib.sh's image_java; jcmd is taken from the same JDK),
# SOAK_JVM_EXTRA (flags after the image's, e.g. -XX:NativeMemoryTracking=summary to break an RSS
# change down), SOAK_MAXRAM (128m), SOAK_JAR, SOAK_OUT (target/soak), SOAK_KEEP=1 (keep the work
# folder with Egret's logs). Every process it starts is stopped on exit, failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BENCH=$ROOT/bench
DURATION=${SOAK_DURATION:-600}
WARMUP=${SOAK_WARMUP:-60}
WORKERS=${SOAK_WORKERS:-8}
RATE=${SOAK_RATE:-80}
RELOAD_EVERY=${SOAK_RELOAD_EVERY:-10}
WARMUP_RELOAD_EVERY=${SOAK_WARMUP_RELOAD_EVERY:-2.5}
SCRAPE_EVERY=${SOAK_SCRAPE_EVERY:-1}
TOLERANCE=${SOAK_TOLERANCE:-0.10}
SEED=${SOAK_SEED:-1}
JAVA=${SOAK_JAVA:-$(image_java "$ROOT/Dockerfile")}
MAXRAM=${SOAK_MAXRAM:-128m}
JAR=${SOAK_JAR:-$ROOT/proxy/target/egret.jar}
OUT=${SOAK_OUT:-$ROOT/target/soak}
MARGIN=300   # s beyond warm-up + duration for the two snapshots and the report, at most

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'soak: FAIL: %s\n' "$*" >&2; exit 1; }

# ---- tools ---------------------------------------------------------------------------------
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  say "installing ${missing[*]} from Debian"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
    --no-install-recommends "${missing[@]}" || die "apt-get install ${missing[*]} failed"
fi
JAVA_BIN=$(readlink -f "$(command -v "$JAVA")") || die "no $JAVA on PATH"
JCMD=$(dirname "$JAVA_BIN")/jcmd
# jcmd must come from the JDK that runs Egret (attach is version-checked); a JRE has none.
[[ -x $JCMD ]] || die "no jcmd beside $JAVA_BIN (a JRE?); install the matching JDK (Debian: openjdk-17-jdk-headless) or set SOAK_JAVA"
if [[ ! -f $JAR ]]; then
  say "building $JAR"
  (cd "$ROOT" && { mvn -B -q -o package -DskipTests || mvn -B -q package -DskipTests; })
fi

# ---- processes: every one started here is stopped on exit ----------------------------------
W=$(mktemp -d /tmp/egret-soak.XXXXXX)
pids=()
stop_on_exit soak 100 "${SOAK_KEEP:-}"

EGRET_PORT=$(free_port); ADMIN_PORT=$(free_port)
mkdir -p "$OUT"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- certificates: the run's CA (Egret trusts it) and a rogue CA (it does not) ---------------
say "certificates"
mkdir -p "$W/pki"
# good: 127.0.0.1 and localhost, from the trusted CA; bad: 127.0.0.3, from the rogue CA.
make_ca "$W/pki" ca "egret soak ca"
make_ca "$W/pki" rogue "egret soak rogue"
make_leaf "$W/pki" good ca IP:127.0.0.1,DNS:localhost
make_leaf "$W/pki" bad rogue IP:127.0.0.3

# ---- the image's JVM flags: the sidecar profile (deploy/jvm/sidecar.flags) ---------------------
mapfile -t IMAGE_FLAGS < <(profile_flags "$ROOT/deploy/jvm/sidecar.flags")
((${#IMAGE_FLAGS[@]})) || die "cannot read the JVM flags of deploy/jvm/sidecar.flags"
# shellcheck disable=SC2206
EXTRA=(${SOAK_JVM_EXTRA:-})
JVM=("$JAVA" "${IMAGE_FLAGS[@]}" "-XX:MaxRAM=$MAXRAM" "${EXTRA[@]}")

# ---- parameters shared by the upstream, the config and the driver ----------------------------
mkdir -p "$W/egret"
PARAMS=$W/params.json
write_params() {   # write_params EXTRA-JSON-FIELDS
  python3 - "$PARAMS" "$1" <<PY
import json, sys
p = {
    "proxy_port": $EGRET_PORT, "admin_port": $ADMIN_PORT,
    "ca": "$W/pki/ca.pem",
    "good_cert": "$W/pki/good.pem", "good_key": "$W/pki/good.key",
    "bad_cert": "$W/pki/bad.pem", "bad_key": "$W/pki/bad.key",
    "upstream_ports": "$W/upstream.json",
    "config": "$W/egret/egret.yaml",
    "response_timeout": 10, "idle_timeout": 5, "conn_floor": 0,
    "duration": $DURATION, "warmup": $WARMUP, "workers": $WORKERS, "rate": $RATE,
    "reload_every": $RELOAD_EVERY, "warmup_reload_every": $WARMUP_RELOAD_EVERY, "scrape_every": $SCRAPE_EVERY, "tolerance": $TOLERANCE, "seed": $SEED, "margin": $MARGIN,
    "socket_timeout": 10, "jcmd": "$JCMD", "out": "$OUT", "load_before": "$LOAD_BEFORE",
}
p.update(json.loads(sys.argv[2]))
json.dump(p, open(sys.argv[1], "w"), indent=1)
PY
}
write_params '{}'

# ---- upstreams --------------------------------------------------------------------------------
say "upstreams (python asyncio): trusted on 127.0.0.1, untrusted on 127.0.0.3"
python3 "$BENCH/soak.py" upstream "$PARAMS" 2>"$W/upstream.stderr" &
pids+=("$!")
UPSTREAM_PID=$!
deadline=$((SECONDS + 10))
until [[ -s $W/upstream.json ]]; do
  kill -0 "$UPSTREAM_PID" 2>/dev/null || die "the upstream exited: $(cat "$W/upstream.stderr")"
  ((SECONDS < deadline)) || die "the upstream did not start in 10 s"
  sleep 0.05
done
GOOD_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["good"])' "$W/upstream.json")
BAD_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bad"])' "$W/upstream.json")

# ---- Egret -----------------------------------------------------------------------------------
# A private copy of the jar: a rebuild of proxy/target during the soak would otherwise swap the
# classes under the running JVM (NoClassDefFoundError on the first class it loads late).
cp "$JAR" "$W/egret.jar"
JAR_SHA=$(sha256sum "$W/egret.jar" | cut -c1-12)
JAR=$W/egret.jar
write_params "{\"good_port\": $GOOD_PORT, \"bad_port\": $BAD_PORT}"
python3 "$BENCH/soak.py" config "$PARAMS" 0 >"$W/egret/egret.yaml"
"$JAVA" -jar "$JAR" check "$W/egret/egret.yaml" >/dev/null || die "egret check refused the soak config"

say "egret: ${JVM[*]} -jar $JAR (sha256 $JAR_SHA…)"
(cd "$W/egret" && exec "${JVM[@]}" -jar "$JAR" run --config "$W/egret/egret.yaml" \
  >"$W/egret/access.log" 2>"$W/egret/stderr") &
EGRET_PID=$!
pids+=("$EGRET_PID")
deadline=$((SECONDS + 30))
until curl -s -o /dev/null --fail "http://127.0.0.1:$ADMIN_PORT/readyz"; do
  kill -0 "$EGRET_PID" 2>/dev/null || die "egret exited before it was ready: $(cat "$W/egret/stderr")"
  ((SECONDS < deadline)) || die "egret not ready after 30 s"
  sleep 0.05
done

JAVA_VERSION=$("$JAVA" -version 2>&1 | head -1)
write_params "$(python3 -c 'import json,sys; print(json.dumps({"good_port": int(sys.argv[1]), "bad_port": int(sys.argv[2]), "egret_pid": int(sys.argv[3]), "upstream_pid": int(sys.argv[4]), "java_version": sys.argv[5], "jar_sha256": sys.argv[6], "egret_stderr": sys.argv[7], "jvm": sys.argv[8:]}))' \
  "$GOOD_PORT" "$BAD_PORT" "$EGRET_PID" "$UPSTREAM_PID" "$JAVA_VERSION" "$JAR_SHA" "$W/egret/stderr" "${JVM[@]}")"

# ---- the soak --------------------------------------------------------------------------------
# The driver bounds every socket and wait itself; timeout(1) is the backstop (--foreground, so
# that Ctrl-C still reaches the driver).
rc=0
timeout --foreground --signal=TERM --kill-after=10 "$((WARMUP + DURATION + MARGIN + 60))" \
  python3 "$BENCH/soak.py" drive "$PARAMS" || rc=$?
kill -0 "$EGRET_PID" 2>/dev/null || { echo "soak: FAIL: Egret exited during the soak (see $W/egret/stderr)" >&2; rc=1; }
if ((rc)); then
  grep -v '^{' "$W/egret/stderr" | tail -20 >&2 || true
  cp "$W/egret/stderr" "$OUT/egret.stderr" 2>/dev/null || true
fi
exit "$rc"
