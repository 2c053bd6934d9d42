#!/usr/bin/env bash
# Start-up of a sidecar: how long and how much CPU from process start to /readyz 200, what the
# first upgraded request costs after that, and the memory at idle, for this build's jar against a
# baseline jar, alternating, in one run. Loopback only; about 1 minute for the default 7 starts.
#
#   bench/start.sh /tmp/main-egret.jar            # this branch's jar (A) against a baseline (B)
#   bench/start.sh                                # the jar against itself (noise)
#   START_B_OPTS=-XX:CICompilerCount=1 bench/start.sh    # same jar, one flag more for B
#
# Each jar is copied into the run's folder and gets a class-data archive trained there the way
# the image's build trains its own (`egret run` driven by dev.egret.lambda.Training, the sidecar
# profile's flags, one static archive of its class list), so both start as the image does. Each
# start runs the JVM profile's flags (deploy/jvm/sidecar.flags as an @argument-file) plus
# -XX:MaxRAM at the profile's limit and the archive, with a config that trusts the JDK's CA set
# and the run's CA (as a default config reads the JDK's CA set), behind one nginx HTTPS upstream.
# Per start it records:
#
#   ready       wall milliseconds from the fork to the first /readyz 200, and the process's CPU
#               seconds then (/proc/PID/stat: user + system, every thread, the JIT's included)
#   first       wall milliseconds of the first absolute-form http:// request through the proxy,
#               upgraded to the nginx upstream (curl's time_total), and the CPU seconds it added:
#               what start-up left to the first request
#   rss         VmRSS and its anonymous part (RssAnon) once that request is done, in MiB
#   load        with START_LOAD=SECS: wrk (2 threads, 50 connections, 100 B bodies, absolute-form
#               http:// requests upgraded to the nginx upstream, bench/wrk-report.lua) for SECS
#               seconds after the first request; its rate, then the peak RSS (VmHWM) of the
#               whole start, in MiB (without load: the VmHWM after the first request)
#
# Then the median of each figure, and B's medians as ratios to A's. Wall time swings with the
# neighbours' load; CPU seconds much less: judge by those. Knobs: START_N (7 starts each),
# START_A_OPTS, START_B_OPTS (JVM flags after the profile's), START_LOAD (0 s), START_JAVA (the image's Java),
# START_FLAGS (deploy/jvm/sidecar.flags), START_MAXRAM (the profile's limit), START_KEEP=1 (keep
# the logs). Every process it starts is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
JAR_A=$ROOT/proxy/target/egret.jar
JAR_B=${1:-$JAR_A}
N=${START_N:-7}
JAVA=${START_JAVA:-$(image_java "$ROOT/Dockerfile")}
FLAGS_FILE=${START_FLAGS:-$ROOT/deploy/jvm/sidecar.flags}
MAXRAM=${START_MAXRAM:-$(profile_limit "$FLAGS_FILE")}
export PATH=$PATH:/usr/sbin
LOAD=${START_LOAD:-0}
for tool in nginx openssl python3 curl $( ((LOAD > 0)) && echo wrk); do
  command -v "$tool" >/dev/null || { echo "start: needs $tool" >&2; exit 1; }
done
[[ -f $JAR_A && -f $JAR_B ]] || { echo "start: no jar at $JAR_A or $JAR_B (mvn -B package -DskipTests)" >&2; exit 1; }

W=$(mktemp -d /tmp/egret-start.XXXXXX)
chmod 755 "$W"   # nginx's worker reads $W/www as another user
pids=()
stop_on_exit start 50 "${START_KEEP:-}"
say() { printf '== %s\n' "$*" >&2; }
die() { printf 'start: FAIL: %s\n' "$*" >&2; exit 1; }

mkdir -p "$W/pki" "$W/www" "$W/nginx/tmp"
make_ca "$W/pki" ca "egret start CA"
make_leaf "$W/pki" server ca IP:127.0.0.1
head -c 100 /dev/zero | tr '\0' x >"$W/www/100b"
chmod 644 "$W/www/100b"
TLS_PORT=$(free_port)
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $W/nginx/tmp/body;
  proxy_temp_path $W/nginx/tmp/proxy;
  fastcgi_temp_path $W/nginx/tmp/fastcgi;
  uwsgi_temp_path $W/nginx/tmp/uwsgi;
  scgi_temp_path $W/nginx/tmp/scgi;
  keepalive_requests 10000000;
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

# Each variant's jar in a folder of its own with the archive trained for it there: an archive
# maps only for the class path it was recorded with.
# START_A_JAVA / START_B_JAVA: another java for A or B (to compare runtimes on one jar);
# START_A_ARCHIVE / START_B_ARCHIVE: cds (the build's: one static archive of the training's class
# list, Training --static-archive; for a jar built before that, the dynamic one), dynamic (a
# dynamic archive on the JDK's default one, -XX:ArchiveClassesAtExit),
# aot (JDK 25's AOT cache, -XX:AOTCacheOutput: classes loaded and linked, method profiles) or none.
# The training run gets the variant's START_*_OPTS too: an archive made with other flags is refused.
declare -A JAVA_OF ARCHIVE_OF
for v in A B; do
  jar_var=JAR_$v java_var=START_${v}_JAVA kind_var=START_${v}_ARCHIVE opts_var=START_${v}_OPTS
  # shellcheck disable=SC2206
  topts=(${!opts_var:-})
  JAVA_OF[$v]=${!java_var:-$JAVA}
  mkdir -p "$W/$v"
  cp -p "${!jar_var}" "$W/$v/egret.jar"
  static=()
  case ${!kind_var:-cds} in
    cds) ARCHIVE_OF[$v]="-XX:SharedArchiveFile=$W/$v/egret.jsa -Xshare:auto"
         train=() static=(--static-archive "$W/$v/egret.jsa")
         # a jar built before the static archive: the dynamic one its own build made
         if [[ $(archive_form "$W/$v/egret.jar") == dynamic ]]; then
           train=("-XX:ArchiveClassesAtExit=$W/$v/egret.jsa") static=()
         fi ;;
    dynamic) ARCHIVE_OF[$v]="-XX:SharedArchiveFile=$W/$v/egret.jsa -Xshare:auto"
         train=("-XX:ArchiveClassesAtExit=$W/$v/egret.jsa") ;;
    aot) ARCHIVE_OF[$v]="-XX:AOTCache=$W/$v/egret.aot"
         train=("-XX:AOTCacheOutput=$W/$v/egret.aot") ;;
    none) ARCHIVE_OF[$v]="" train=() ;;
    *) die "START_${v}_ARCHIVE is '${!kind_var}': cds, dynamic, aot or none" ;;
  esac
  ((${#train[@]} + ${#static[@]})) || continue
  say "training $v's ${!kind_var:-cds} archive (${!jar_var}, ${JAVA_OF[$v]})"
  "${JAVA_OF[$v]}" -cp "$W/$v/egret.jar" dev.egret.lambda.Training "${static[@]}" \
    "${JAVA_OF[$v]}" "${train[@]}" "@$FLAGS_FILE" "-XX:MaxRAM=$MAXRAM" "${topts[@]}" \
    -cp "$W/$v/egret.jar" dev.egret.cli.Egret run >"$W/$v/training.log" 2>&1 \
    || die "$v's training run failed: $(tail -5 "$W/$v/training.log")"
  say "$v's archive: $(du -h "$W/$v"/egret.jsa "$W/$v"/egret.aot 2>/dev/null | cut -f1)"
done

cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
status_mib() { awk -v k="$2:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# one VARIANT ROUND: one start, one request, one stop; appends a line to $W/results.
one() {
  local v=$1 round=$2 opts_var=START_${1}_OPTS dir=$W/$1/run$2 port admin start_ns pid ready_ms
  # shellcheck disable=SC2206
  local opts=(${!opts_var:-})
  mkdir -p "$dir"
  port=$(free_port)
  admin=$(free_port)
  cat >"$dir/egret.yaml" <<EOF
version: 1
listen:
  proxy: 127.0.0.1:$port
  admin: 127.0.0.1:$admin
tls:
  trust: [system, $W/pki/ca.pem]
addresses:
  allow: [127.0.0.1/32]
allow:
  - host: 127.0.0.1
    ports: [$TLS_PORT]
EOF
  start_ns=$(date +%s%N)
  # shellcheck disable=SC2206
  local archive=(${ARCHIVE_OF[$v]})
  "${JAVA_OF[$v]}" "@$FLAGS_FILE" "${archive[@]}" "-XX:MaxRAM=$MAXRAM" \
    "${opts[@]}" -jar "$W/$v/egret.jar" run --config "$dir/egret.yaml" >"$dir/stdout" 2>"$dir/stderr" &
  pid=$!
  pids+=("$pid")
  local deadline=$((SECONDS + 60))
  until curl -s -o /dev/null --fail "http://127.0.0.1:$admin/readyz"; do
    kill -0 "$pid" 2>/dev/null || die "$v exited before it was ready: $(cat "$dir/stderr")"
    ((SECONDS < deadline)) || die "$v not ready after 60 s"
    sleep 0.005
  done
  ready_ms=$((($(date +%s%N) - start_ns) / 1000000))
  local ready_cpu first_s first_cpu
  ready_cpu=$(cpu_s "$pid")
  first_s=$(curl -s -o "$dir/body" -w '%{time_total}' --fail -x "http://127.0.0.1:$port" \
    "http://127.0.0.1:$TLS_PORT/100b") || die "$v: the first request through the proxy failed"
  [[ $(wc -c <"$dir/body") == 100 ]] || die "$v: the first request's body is not the 100 B file"
  first_cpu=$(cpu_s "$pid")
  local rss anon rate=0
  rss=$(status_mib "$pid" VmRSS)
  anon=$(status_mib "$pid" RssAnon)
  if ((LOAD > 0)); then
    rate=$(wrk -t2 -c50 -d"${LOAD}s" --timeout 10s -s "$ROOT/bench/wrk-report.lua" "http://127.0.0.1:$port" \
      -- "http://127.0.0.1:$TLS_PORT/100b" "127.0.0.1:$TLS_PORT" \
      | python3 -c 'import json, sys
r = [json.loads(l[8:]) for l in sys.stdin if l.startswith("WRKJSON ")][0]
bad = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["status_errors"] + r["timeouts"]
print(-1 if bad else round(r["requests"] / (r["duration_us"] / 1e6)))') \
      || die "$v: wrk failed"
    ((rate >= 0)) || die "$v: requests failed under load (wrk counted errors)"
  fi
  printf '%s %s %s %s %s %s %s %s %s %s\n' "$v" "$round" "$ready_ms" "$ready_cpu" \
    "$(awk -v s="$first_s" 'BEGIN {printf "%d", s * 1000}')" \
    "$(awk -v a="$first_cpu" -v b="$ready_cpu" 'BEGIN {printf "%.2f", a - b}')" \
    "$rss" "$anon" "$rate" "$(status_mib "$pid" VmHWM)" >>"$W/results"
  # SIGKILL: the drain (shutdown.grace) is not what this measures.
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  pids=("${pids[@]/$pid/}")
}

say "$N starts each, alternating; $JAVA, @$FLAGS_FILE -XX:MaxRAM=$MAXRAM"
say "A: $JAR_A ${JAVA_OF[A]} ${ARCHIVE_OF[A]} ${START_A_OPTS:-}"
say "B: $JAR_B ${JAVA_OF[B]} ${ARCHIVE_OF[B]} ${START_B_OPTS:-}"
for round in $(seq "$N"); do
  one A "$round"
  one B "$round"
  tail -2 "$W/results" >&2
done

python3 - "$W/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
cols = ["ready ms", "ready CPU s", "first request ms", "first request CPU s",
        "RSS after it MiB", "RssAnon after it MiB", "load req/s", "peak RSS (VmHWM) MiB"]
med = {}
for v in "AB":
    runs = [[float(x) for x in r[2:]] for r in rows if r[0] == v]
    med[v] = [statistics.median(c) for c in zip(*runs)]
print("| figure (median of %d) | A | B | B / A |" % len([r for r in rows if r[0] == "A"]))
print("| --- | --- | --- | --- |")
for i, name in enumerate(cols):
    if name == "load req/s" and not med["A"][i]:
        continue
    a, b = med["A"][i], med["B"][i]
    ratio = "%.2f" % (b / a) if a else "-"
    print("| %s | %g | %g | %s |" % (name, a, b, ratio))
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); java: $("$JAVA" -version 2>&1 | head -1)"
