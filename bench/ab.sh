#!/usr/bin/env bash
# A/B of two Egret variants on the upgrade path, alternating, in one run: how the figures behind
# a change were measured (docs/performance.md). Loopback only; about 2 minutes.
#
#   bench/ab.sh                                              # the jar against itself (noise)
#   AB_B_OPTS=-Degret.tls.engine=jdk bench/ab.sh             # BoringSSL (A) vs the JDK's SSLEngine
#   AB_A_JAR=/tmp/before.jar AB_B_JAR=proxy/target/egret.jar bench/ab.sh   # two builds
#
# Both Egrets run at once with the sidecar JVM profile's flags plus -XX:MaxRAM=128m, behind
# one nginx HTTPS upstream (100 B body, keep-alive); wrk (2 threads, 50 connections, the
# absolute-form requests of bench/wrk-report.lua) warms each for two runs, then measures A and B
# in turn AB_ROUNDS times, so the machine's load falls on both alike. Per run it prints req/s,
# p99 and Egret's CPU seconds per 10k requests (/proc/PID/stat: the figure that moves least with
# the neighbours' load), then each one's peak RSS (and of its anonymous part, sampled) and thread count, and direct HTTPS to nginx as
# the limit. Knobs: AB_A_JAR, AB_B_JAR (proxy/target/egret.jar), AB_A_OPTS, AB_B_OPTS (JVM flags
# after the image's), AB_A_ENV, AB_B_ENV (VAR=value for A's or B's environment), AB_A_YAML, AB_B_YAML
# (config appended to A's or B's; @OTLP@ is a local OTLP sink's URL), AB_A_YAML_FILE,
# AB_B_YAML_FILE (the same from a file, for configs too long for the environment), AB_A_PROXY_AUTH,
# AB_B_PROXY_AUTH (a Proxy-Authorization for wrk to send to A or B), AB_SECS (8), AB_ROUNDS (4),
# AB_JFR=1 (a JFR recording of each, kept with the logs), AB_NMT=1 (native memory tracking: each
# one's VM.native_memory summary at the end, kept with the logs), AB_MODE=connect (CONNECT tunnels
# instead: AB_MIB 1 MiB transfers per set, curl keep-alive, direct / A / B in turn; MiB/s and
# Egret's CPU seconds per GiB), AB_A_JAVA, AB_B_JAVA (the java launcher of each: the image's Java
# by default, or another JDK's bin/java to compare runtimes), AB_A_FLAGS, AB_B_FLAGS (another JVM
# profile file for A or B, e.g. deploy/jvm/gateway.flags, with its memory limit as -XX:MaxRAM),
# AB_A_DOCKERFILE, AB_B_DOCKERFILE (another Dockerfile's runtime Java for A or B). Every process
# is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
JAR_A=${AB_A_JAR:-$ROOT/proxy/target/egret.jar}
JAR_B=${AB_B_JAR:-$ROOT/proxy/target/egret.jar}
SECS=${AB_SECS:-8}
ROUNDS=${AB_ROUNDS:-4}
export PATH=$PATH:/usr/sbin
for tool in wrk nginx openssl python3 curl jcmd; do
  command -v "$tool" >/dev/null || { echo "ab: needs $tool (bench/run.sh installs wrk and nginx)" >&2; exit 1; }
done
[[ -f $JAR_A && -f $JAR_B ]] || { echo "ab: no jar at $JAR_A or $JAR_B (mvn -B package -DskipTests)" >&2; exit 1; }

W=$(mktemp -d /tmp/egret-ab.XXXXXX)
chmod 755 "$W"
pids=()
stop_on_exit ab 100 keep   # always kept: the JFR recordings and logs are the point

mkdir -p "$W/pki" "$W/www" "$W/nginx/tmp"
make_ca "$W/pki" ca "egret ab CA"
make_leaf "$W/pki" server ca IP:127.0.0.1
head -c 100 /dev/zero | tr '\0' x >"$W/www/100b"
head -c 1048576 /dev/urandom >"$W/www/1m"
chmod 644 "$W/www/100b" "$W/www/1m"
TLS_PORT=$(free_port)
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/nginx/tmp/body;
  proxy_temp_path $W/nginx/tmp/proxy;
  fastcgi_temp_path $W/nginx/tmp/fastcgi;
  uwsgi_temp_path $W/nginx/tmp/uwsgi;
  scgi_temp_path $W/nginx/tmp/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$TLS_PORT ssl;
    ssl_certificate $W/pki/server.pem;
    ssl_certificate_key $W/pki/server.key;
    root $W/www;
  }
}
EOF
nginx -c "$W/nginx/nginx.conf" -p "$W/nginx" -g 'daemon off;' 2>"$W/nginx/stderr" &
pids+=($!)

# The JVM profile's flags (deploy/jvm/sidecar.flags), without a CDS archive (warm runs do not
# need one; bench/run.sh maps the build's). AB_A_FLAGS / AB_B_FLAGS: another profile file for A
# or B (deploy/jvm/gateway.flags, or an older commit's: git show HEAD~1:deploy/jvm/sidecar.flags
# >/tmp/old.flags); its "# memory limit" line gives -XX:MaxRAM. AB_A_DOCKERFILE /
# AB_B_DOCKERFILE: another Dockerfile's runtime Java for A or B.
declare -A FLAGS JAVA_OF MAXRAM_OF
for v in A B; do
  df_var=AB_${v}_DOCKERFILE flags_var=AB_${v}_FLAGS
  FLAGS[$v]=$(profile_flags "${!flags_var:-$ROOT/deploy/jvm/sidecar.flags}")
  MAXRAM_OF[$v]=$(profile_limit "${!flags_var:-$ROOT/deploy/jvm/sidecar.flags}")
  JAVA_OF[$v]=$(image_java "${!df_var:-$ROOT/Dockerfile}")
done

# AB_A_YAML / AB_B_YAML: more top-level config for A or B (e.g. a tracing: section). @OTLP@ in
# it stands for the URL of a small OTLP/HTTP sink this script starts (it answers every export
# 200 and counts the bytes), so that tracing can be measured without a collector.
OTLP_URL=""
if [[ ${AB_A_YAML:-}${AB_B_YAML:-} == *@OTLP@* ]]; then
  otlp_port=$(free_port)
  python3 - "$otlp_port" >"$W/otlp.log" 2>&1 <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
received = 0
class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        global received
        n = int(self.headers.get("Content-Length", "0"))
        received += len(self.rfile.read(n))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
        print(f"received {received} bytes", flush=True)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
  pids+=($!)
  OTLP_URL="http://127.0.0.1:$otlp_port/v1/traces"
fi

declare -A PORT PID
for v in A B; do
  jar_var=JAR_$v opts_var=AB_${v}_OPTS java_var=AB_${v}_JAVA
  port=$(free_port) admin=$(free_port)
  PORT[$v]=$port
  cat >"$W/$v.yaml" <<EOF
version: 1
listen: {proxy: 127.0.0.1:$port, admin: 127.0.0.1:$admin}
tls: {trust: [$W/pki/ca.pem]}
addresses: {allow: [127.0.0.1/32]}
allow:
  - host: 127.0.0.1
    ports: [$TLS_PORT]
EOF
  yaml_var=AB_${v}_YAML
  if [[ -n ${!yaml_var:-} ]]; then printf '%s\n' "${!yaml_var//@OTLP@/$OTLP_URL}" >>"$W/$v.yaml"; fi
  yaml_file_var=AB_${v}_YAML_FILE
  if [[ -n ${!yaml_file_var:-} ]]; then cat "${!yaml_file_var}" >>"$W/$v.yaml"; fi
  # shellcheck disable=SC2206
  extra=(${!opts_var:-})
  envs=()
  env_var=AB_${v}_ENV
  if [[ -n ${!env_var:-} ]]; then envs=("${!env_var}"); fi
  jfr=()
  if [[ -n ${AB_JFR:-} ]]; then jfr=("-XX:StartFlightRecording=filename=$W/$v.jfr,settings=profile"); fi
  if [[ -n ${AB_NMT:-} ]]; then jfr+=("-XX:NativeMemoryTracking=summary"); fi
  mapfile -t image_flags_v <<<"${FLAGS[$v]}"
  env "${envs[@]}" "${!java_var:-${JAVA_OF[$v]}}" "${image_flags_v[@]}" "-XX:MaxRAM=${MAXRAM_OF[$v]}" "${extra[@]}" "${jfr[@]}" \
    -jar "${!jar_var}" run --config "$W/$v.yaml" >"$W/$v.access.log" 2>"$W/$v.stderr" &
  PID[$v]=$!
  pids+=($!)
  deadline=$((SECONDS + 30))
  until curl -sf -o /dev/null "http://127.0.0.1:$admin/readyz"; do
    kill -0 "${PID[$v]}" 2>/dev/null || { echo "ab: $v exited: $(cat "$W/$v.stderr")" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "ab: $v not ready after 30 s" >&2; exit 1; }
    sleep 0.05
  done
  echo "$v: ${!java_var:-${JAVA_OF[$v]}} ${image_flags_v[*]} ${!jar_var} ${!opts_var:-} ${envs[*]} | $(grep -h 'upstream TLS by' "$W/$v.stderr")"
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The kernel keeps the peak of the whole RSS (VmHWM) but not of its anonymous part, the part a
# container limit cannot reclaim (file-backed pages of the jar and libraries can be dropped):
# sample RssAnon every 100 ms into $W/V.anon, the peak so far.
for v in A B; do
  (peak=0
   while kill -0 "${PID[$v]}" 2>/dev/null; do
     now=$(awk '/^RssAnon:/ {print $2}' "/proc/${PID[$v]}/status" 2>/dev/null || echo 0)
     if ((${now:-0} > peak)); then peak=$now; echo "$peak" >"$W/$v.anon"; fi
     sleep 0.1
   done) &
  pids+=($!)
done
# AB_A_PROXY_AUTH / AB_B_PROXY_AUTH: the Proxy-Authorization wrk sends to A or B (a gateway
# client's token, e.g. with AB_B_YAML holding clients:).
auth_of() { local var=AB_${1}_PROXY_AUTH; printf '%s' "${!var:-}"; }
peak_anon() { awk '{printf "%.1f MiB", $1 / 1024}' "$W/$1.anon"; }
# measure V: one wrk run through variant V; prints "V req/s p99 CPU-per-10k"
measure() {
  local v=$1 t0 t1 json
  t0=$(ticks "${PID[$v]}")
  json=$(wrk -t2 -c50 -d"${SECS}s" --timeout 5s -s "$ROOT/bench/wrk-report.lua" \
    "http://127.0.0.1:${PORT[$v]}/" -- "http://127.0.0.1:$TLS_PORT/100b" "127.0.0.1:$TLS_PORT" \
    "$(auth_of "$v")" | sed -n 's/^WRKJSON //p')
  t1=$(ticks "${PID[$v]}")
  python3 - "$v" "$json" "$((t1 - t0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
v, d, ticks, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
n = d["requests"]
errors = d["status_errors"] + d["read_errors"] + d["write_errors"] + d["timeouts"]
print(f"{v}  {n / d['duration_us'] * 1e6:8.0f} req/s  p99 {d['p99_us'] / 1000:6.2f} ms  "
      f"CPU {ticks / hz / n * 1e4:.3f} s per 10k" + (f"  ERRORS {errors}" if errors else ""))
PY
}
# measure_connect V: AB_MIB transfers of 1 MiB through one CONNECT tunnel of variant V (curl,
# keep-alive); prints "V MiB/s CPU-per-GiB" (MiB/s from the sum of curl's own transfer times).
measure_connect() {
  local v=$1 t0 t1 proxy=${2:-}
  t0=$( [[ -n $proxy ]] && ticks "${PID[$v]}" || echo 0)
  curl -sS --fail --cacert "$W/pki/ca.pem" ${proxy:+-x "$proxy"} -K "$W/curl-1m.cfg" \
    -w '%{http_code} %{size_download} %{time_total}\n' >"$W/$v.times"
  t1=$( [[ -n $proxy ]] && ticks "${PID[$v]}" || echo 0)
  python3 - "$v" "$W/$v.times" "$((t1 - t0))" "$(getconf CLK_TCK)" <<'PY'
import sys
v, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [l.split() for l in open(path)]
bad = [r for r in rows if r[0] != "200" or int(r[1]) != 1048576]
mib = len(rows)
secs = sum(float(r[2]) for r in rows)
cpu = f"  CPU {ticks / hz / mib * 1024:.2f} s per GiB" if ticks else ""
print(f"{v}  {mib / secs:8.0f} MiB/s{cpu}" + (f"  BAD {len(bad)}" if bad else ""))
PY
}
if [[ ${AB_MODE:-upgrade} == connect ]]; then
  for _ in $(seq "${AB_MIB:-100}"); do
    printf 'url = "https://127.0.0.1:%s/1m"\noutput = "/dev/null"\n' "$TLS_PORT"
  done >"$W/curl-1m.cfg"
  for v in A B; do measure_connect "$v" "http://127.0.0.1:${PORT[$v]}" >/dev/null; done
  for _ in $(seq "$ROUNDS"); do
    measure_connect direct
    for v in A B; do measure_connect "$v" "http://127.0.0.1:${PORT[$v]}"; done
  done
  for v in A B; do
    echo "$v  peak RSS $(awk '/^VmHWM:/ {printf "%.1f MiB", $2 / 1024}' "/proc/${PID[$v]}/status"), peak RssAnon $(peak_anon "$v")"
    if [[ -n ${AB_JFR:-} ]]; then jcmd "${PID[$v]}" JFR.dump filename="$W/$v.jfr" >/dev/null; fi
  done
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi
for v in A B; do measure "$v" >/dev/null; measure "$v" >/dev/null; done
for _ in $(seq "$ROUNDS"); do for v in A B; do measure "$v"; done; done
direct=$(wrk -t2 -c50 -d"${SECS}s" -s "$ROOT/bench/wrk-report.lua" "https://127.0.0.1:$TLS_PORT/100b" \
  | sed -n 's/^WRKJSON //p')
python3 - "$direct" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
print(f"direct HTTPS {d['requests'] / d['duration_us'] * 1e6:.0f} req/s  p99 {d['p99_us'] / 1000:.2f} ms")
PY
for v in A B; do
  echo "$v  peak RSS $(awk '/^VmHWM:/ {printf "%.1f MiB", $2 / 1024}' "/proc/${PID[$v]}/status"),"\
    "peak RssAnon $(peak_anon "$v"),"\
    "$(ls "/proc/${PID[$v]}/task" | wc -l) threads"
  if [[ -n ${AB_JFR:-} ]]; then jcmd "${PID[$v]}" JFR.dump filename="$W/$v.jfr" >/dev/null; fi
  if [[ -n ${AB_NMT:-} ]]; then
    jcmd "${PID[$v]}" VM.native_memory summary scale=KB >"$W/$v.nmt"
    echo "$v  NMT committed: $(sed -n 's/^Total: .*committed=\([0-9]*\)KB.*/\1/p' "$W/$v.nmt" | awk '{printf "%.1f MiB", $1 / 1024}')"
    sed -n 's/^- *\([A-Za-z ]*[a-z]\) (reserved=[0-9]*KB, committed=\([0-9]*\)KB.*/\2 \1/p' "$W/$v.nmt" \
      | awk '$1 > 2048 {n = $1; $1 = ""; printf "    %-24s %6.1f MiB\n", $0, n / 1024}'
  fi
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
