#!/usr/bin/env bash
# Egret's benchmark: one command, one run, every figure beside the baseline it is judged against.
#
#   bench/run.sh [--profile sidecar|gateway]   # about 3.5 minutes; a markdown table and JSON lines
#
# Loopback only (127.0.0.1, ports the kernel picks). Installs wrk, nginx, haproxy and squid from
# Debian when they are missing. Uses proxy/target/egret.jar (builds it when absent), so it
# measures whatever the branch builds; it depends only on the jar, the config format (docs/config.md) and
# the admin port, never on Egret's internals.
#
#   nginx    HTTPS upstream (keep-alive; /100b and /1m bodies) and the same files over plain HTTP
#   peers doing Egret's upgrade job: absolute-form http:// in, verified TLS 1.3 out to the nginx
#   upstream on pooled keep-alive connections, one access-log line per request:
#     nginx-proxy  a second nginx: proxy_pass https:// to an upstream block with keepalive,
#                  proxy_ssl_verify on; every figure of the peers' table is a ratio to its own
#     haproxy      server ... ssl verify required, http-reuse always, option httplog
#     egret        the jar with a JVM profile's flags (deploy/jvm/PROFILE.flags, sidecar unless
#                  --profile) plus -XX:MaxRAM at the limit the profile is sized for (its
#                  "# memory limit" line), mapping the build's class-data archive
#                  (proxy/target/egret.jsa) or, when that does not map on this Java, one it trains
#   squid    plain forward proxy (no cache) in front of nginx's plain port: the incumbent, with
#            no TLS on either side (a lighter job than the others')
#
# Knobs (environment): BENCH_DURATION (s per warm wrk run, 10), BENCH_WARMUP (s, 10; 40 for
# the gateway profile),
# BENCH_CONNECT_MIB (MiB per CONNECT transfer set, 200), BENCH_ROUNDS (CONNECT rounds, 3),
# BENCH_NEWCONN (requests for the new-connection figure, 200), BENCH_JAVA (java binary; the image's
# Java, found by bench/lib.sh's image_java),
# BENCH_JVM_EXTRA (flags added after the profile's), BENCH_MAXRAM (the profile's memory limit),
# BENCH_PROFILE (sidecar; --profile wins),
# BENCH_JAR, BENCH_OUT (target/bench). Results: $BENCH_OUT/results.md and results.jsonl.
# Every process it starts is stopped on exit, failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"
DURATION=${BENCH_DURATION:-10}
COLD=5
CONNECT_MIB=${BENCH_CONNECT_MIB:-200}
ROUNDS=${BENCH_ROUNDS:-3}
NEWCONN=${BENCH_NEWCONN:-200}
JAVA=${BENCH_JAVA:-$(image_java "$ROOT/Dockerfile")}
JAR=${BENCH_JAR:-$ROOT/proxy/target/egret.jar}
OUT=${BENCH_OUT:-$ROOT/target/bench}
THREADS=2
CONNECTIONS=50

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: FAIL: %s\n' "$*" >&2; exit 1; }

PROFILE=${BENCH_PROFILE:-sidecar}
while (($#)); do
  case $1 in
    --profile) PROFILE=${2:-}; shift 2 || die "--profile needs sidecar or gateway" ;;
    --profile=*) PROFILE=${1#--profile=}; shift ;;
    *) die "unknown argument '$1' (usage: bench/run.sh [--profile sidecar|gateway])" ;;
  esac
done
FLAGS_FILE=$ROOT/deploy/jvm/$PROFILE.flags
[[ $PROFILE == sidecar || $PROFILE == gateway ]] && [[ -f $FLAGS_FILE ]] \
  || die "--profile is '$PROFILE': it must be sidecar or gateway (deploy/jvm/*.flags)"
MAXRAM=${BENCH_MAXRAM:-$(profile_limit "$FLAGS_FILE")}
# The gateway profile compiles with C2, whose hot methods are still compiling after 10 s on two
# shared cores; judged before that, it measures the compiler, not the proxy.
if [[ $PROFILE == gateway ]]; then WARMUP=${BENCH_WARMUP:-40}; else WARMUP=${BENCH_WARMUP:-10}; fi

# ---- tools ---------------------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
command -v squid >/dev/null || [[ -x /usr/sbin/squid ]] || missing+=(squid)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
  say "installing ${missing[*]} from Debian"
  apt-get update -q
  # Debian's postinst would start nginx, haproxy and squid as system services on their default ports;
  # policy-rc.d (exit 101) tells invoke-rc.d not to, unless the machine already has one.
  own_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt_rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
    --no-install-recommends "${missing[@]}" || apt_rc=$?
  if [[ -n $own_policy ]]; then rm -f /usr/sbin/policy-rc.d; fi
  ((apt_rc == 0)) || die "apt-get install ${missing[*]} failed"
fi
export PATH=$PATH:/usr/sbin
if [[ ! -f $JAR ]]; then
  say "building $JAR"
  (cd "$ROOT" && mvn -B -q package -DskipTests)
fi

# ---- processes: every one started here is stopped on exit ----------------------------------
W=$(mktemp -d /tmp/egret-bench.XXXXXX)
chmod 755 "$W"   # nginx workers and squid run as unprivileged users and read files here
pids=()
# Up to 30 s each: a training run (Training --static-archive, -XX:AOTCacheOutput) writes its
# archive on the way out.
stop_on_exit bench 300 "${BENCH_KEEP:-}"

TLS_PORT=$(free_port); PLAIN_PORT=$(free_port); SQUID_PORT=$(free_port)
EGRET_PORT=$(free_port); ADMIN_PORT=$(free_port); NGXP_PORT=$(free_port); HAP_PORT=$(free_port)
U=127.0.0.1:$TLS_PORT   # the HTTPS upstream's authority, an IP literal: no DNS, no hosts file

# Wait for a TCP port to accept, at most 10 s.
await_port() {
  local deadline=$((SECONDS + 10))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    ((SECONDS < deadline)) || die "nothing listens on 127.0.0.1:$1 ($2)"
    sleep 0.05
  done
}

mkdir -p "$OUT"
# One run per results folder: a second run writing the same raw.jsonl would mix its records into
# this run's report (and its labels). The lock goes with this shell's exit.
exec 9>"$OUT/.lock"
flock -n 9 || die "another bench/run.sh is writing to $OUT; give this one its own BENCH_OUT"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RAW=$OUT/raw.jsonl
: >"$RAW"
record() { echo "$1" >>"$RAW"; }   # one JSON object per measurement; report.py turns them into figures

# ---- certificates (throwaway: a CA and one server certificate for 127.0.0.1) ---------------
say "certificates"
mkdir -p "$W/pki"
make_ca "$W/pki" ca "egret bench CA"
# IP:127.0.0.1 for Egret (which verifies an IP literal against the IP SAN); DNS:localhost for
# nginx and HAProxy, which verify a name (their SNI and verifyhost).
make_leaf "$W/pki" server ca IP:127.0.0.1,DNS:localhost

# ---- nginx: the HTTPS upstream (and the plain one Squid forwards to) -----------------------
say "nginx on $U (TLS) and 127.0.0.1:$PLAIN_PORT (plain)"
mkdir -p "$W/www" "$W/nginx/tmp"
head -c 100 /dev/zero | tr '\0' 'x' >"$W/www/100b"
head -c 1048576 /dev/urandom >"$W/www/1m"
chmod 644 "$W/www/"*
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path $W/nginx/tmp/body;
  proxy_temp_path $W/nginx/tmp/proxy;
  fastcgi_temp_path $W/nginx/tmp/fastcgi;
  uwsgi_temp_path $W/nginx/tmp/uwsgi;
  scgi_temp_path $W/nginx/tmp/scgi;
  default_type application/octet-stream;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  sendfile on;
  # Who sent each request: Egret and Squid both add Via, so the log proves the path taken.
  log_format bench '\$server_port \$uri \$status "\$http_via"';
  access_log $W/nginx/access.log bench buffer=256k flush=1s;
  server {
    listen 127.0.0.1:$TLS_PORT ssl;
    ssl_certificate $W/pki/server.pem;
    ssl_certificate_key $W/pki/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:bench:10m;
    root $W/www;
  }
  server {
    listen 127.0.0.1:$PLAIN_PORT;
    root $W/www;
  }
}
EOF
nginx -c "$W/nginx/nginx.conf" -p "$W/nginx" -g 'daemon off;' 2>"$W/nginx/stderr" &
NGINX_PID=$!
pids+=("$NGINX_PID")
await_port "$TLS_PORT" nginx
await_port "$PLAIN_PORT" nginx
CURL_TLS=(curl -sS --fail --cacert "$W/pki/ca.pem")
"${CURL_TLS[@]}" -o /dev/null "https://$U/100b" || die "nginx does not answer over TLS"

# ---- squid: plain forward proxy, no cache ---------------------------------------------------
say "squid on 127.0.0.1:$SQUID_PORT"
mkdir -p "$W/squid"
chown proxy:proxy "$W/squid" 2>/dev/null || chmod 777 "$W/squid"
cat >"$W/squid/squid.conf" <<EOF
http_port 127.0.0.1:$SQUID_PORT
visible_hostname bench-squid
http_access allow localhost
http_access deny all
cache deny all
cache_mem 8 MB
pid_filename $W/squid/squid.pid
cache_log $W/squid/cache.log
access_log stdio:$W/squid/access.log
coredump_dir $W/squid
shutdown_lifetime 1 seconds
EOF
squid -N -f "$W/squid/squid.conf" >"$W/squid/stdout" 2>&1 &
SQUID_PID=$!
pids+=("$SQUID_PID")
await_port "$SQUID_PORT" squid
curl -sS --fail -o /dev/null -x "http://127.0.0.1:$SQUID_PORT" "http://127.0.0.1:$PLAIN_PORT/100b" \
  || die "squid does not forward (see $W/squid/cache.log)"

# ---- the peers on Egret's upgrade job: nginx and HAProxy as TLS-originating proxies ----------
# Each takes the absolute-form `GET http://127.0.0.1:TLS_PORT/100b` wrk sends, opens verified TLS
# 1.3 to the nginx upstream (the run's CA, the name localhost), keeps those connections pooled
# and reused, adds a Via marker (so the upstream's log proves the path) and writes one
# access-log line per request, as Egret does.
say "nginx-proxy on 127.0.0.1:$NGXP_PORT, haproxy on 127.0.0.1:$HAP_PORT (both TLS 1.3 to $U)"
mkdir -p "$W/nginxp/tmp" "$W/haproxy"
cat >"$W/nginxp/nginx.conf" <<EOF
worker_processes auto;
pid $W/nginxp/nginx.pid;
error_log $W/nginxp/error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path $W/nginxp/tmp/body;
  proxy_temp_path $W/nginxp/tmp/proxy;
  fastcgi_temp_path $W/nginxp/tmp/fastcgi;
  uwsgi_temp_path $W/nginxp/tmp/uwsgi;
  scgi_temp_path $W/nginxp/tmp/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  log_format peer '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent \$request_time \$upstream_connect_time';
  access_log $W/nginxp/access.log peer buffer=64k flush=1s;
  upstream tls_upstream {
    server 127.0.0.1:$TLS_PORT;
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:$NGXP_PORT;
    location / {
      proxy_pass https://tls_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header Via "1.1 nginx-proxy";
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $W/pki/ca.pem;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
  }
}
EOF
nginx -c "$W/nginxp/nginx.conf" -p "$W/nginxp" -g 'daemon off;' 2>"$W/nginxp/stderr" &
NGXP_PID=$!
pids+=("$NGXP_PID")
# One thread per CPU, as nginx's worker_processes auto and Egret's event loops.
cat >"$W/haproxy/haproxy.cfg" <<EOF
global
  nbthread $(nproc)
  maxconn 4096
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 120s
frontend upgrade
  bind 127.0.0.1:$HAP_PORT
  http-request set-header Via "1.1 haproxy"
  default_backend tls_upstream
backend tls_upstream
  http-reuse always
  server nginx 127.0.0.1:$TLS_PORT ssl verify required ca-file $W/pki/ca.pem sni str(localhost) verifyhost localhost ssl-min-ver TLSv1.3 pool-max-conn 64
EOF
haproxy -c -f "$W/haproxy/haproxy.cfg" >"$W/haproxy/check.log" 2>&1 || die "haproxy refused its config: $(cat "$W/haproxy/check.log")"
haproxy -db -f "$W/haproxy/haproxy.cfg" >"$W/haproxy/access.log" 2>"$W/haproxy/stderr" &
HAP_PID=$!
pids+=("$HAP_PID")
await_port "$NGXP_PORT" nginx-proxy
await_port "$HAP_PORT" haproxy
for peer in "nginx-proxy $NGXP_PORT" "haproxy $HAP_PORT"; do
  read -r name port <<<"$peer"
  curl -sS --fail -o /dev/null -x "http://127.0.0.1:$port" "http://$U/100b" \
    || die "$name does not forward http://$U/100b over TLS (see $W)"
done

# ---- helpers ---------------------------------------------------------------------------------
ACCESS=$W/nginx/access.log
log_lines() { wc -l <"$ACCESS"; }
# Flush nginx's buffered access log (USR1 reopens it, writing the buffer first) and wait, at most
# 5 s, until at least $2 lines after line $1 carry the Via marker $3.
await_logged() {
  local from=$1 want=$2 marker=$3 deadline=$((SECONDS + 5)) got=0
  while :; do
    kill -USR1 "$NGINX_PID"
    got=$(tail -n +"$((from + 1))" "$ACCESS" | grep -c -- "$marker" || true)
    ((got >= want)) && { echo "$got"; return; }
    ((SECONDS < deadline)) || { echo "$got"; return; }
    sleep 0.1
  done
}

# run_wrk NAME SECONDS URL [TARGET HOST] -> records the wrk summary under NAME
run_wrk() {
  local name=$1 secs=$2 url=$3; shift 3
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" --timeout 5s -s "$BENCH/wrk-report.lua" "$url" \
        ${1:+--} "$@" 2>&1) || die "wrk $name failed: $out"
  local json
  json=$(sed -n 's/^WRKJSON //p' <<<"$out")
  [[ -n $json ]] || die "wrk $name printed no summary: $out"
  record "{\"name\":\"$name\",\"wrk\":$json}"
  echo "$json"
}
wrk_requests() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["requests"])' "$1"; }

# CPU seconds so far (user + system ticks of /proc/PID/stat) of PID and its child processes
# (nginx's workers; Egret and HAProxy are one process each, with threads).
cpu_seconds() {
  python3 - "$1" <<'PY'
import os, sys
def ticks(pid):
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])
pid = sys.argv[1]
kids = []
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            stat = open(f"/proc/{p}/stat").read()
            if stat[stat.rindex(")") + 2:].split()[1] == pid:
                kids.append(p)
        except OSError:
            pass
print(sum(ticks(p) for p in [pid] + kids) / os.sysconf("SC_CLK_TCK"))
PY
}
# Peak RSS (VmHWM, KiB) of PID and its child processes, summed.
hwm_kb() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '/^VmHWM:/ {print $2}' "/proc/$p/status")))
  done
  echo "$total"
}

# ---- direct HTTPS and Squid baselines -------------------------------------------------------
say "direct HTTPS to nginx: ${WARMUP}s warm-up, ${DURATION}s measured"
run_wrk direct_warmup "$((WARMUP / 2 > 0 ? WARMUP / 2 : 1))" "https://$U/100b" >/dev/null
run_wrk direct "$DURATION" "https://$U/100b" >/dev/null

say "squid plain forward: warm-up, ${DURATION}s measured"
before=$(log_lines)
run_wrk squid_warmup "$((WARMUP / 2 > 0 ? WARMUP / 2 : 1))" "http://127.0.0.1:$SQUID_PORT/" \
  "http://127.0.0.1:$PLAIN_PORT/100b" "127.0.0.1:$PLAIN_PORT" >/dev/null
before=$(log_lines)
json=$(run_wrk squid "$DURATION" "http://127.0.0.1:$SQUID_PORT/" "http://127.0.0.1:$PLAIN_PORT/100b" "127.0.0.1:$PLAIN_PORT")
n=$(wrk_requests "$json")
seen=$(await_logged "$before" "$n" "(squid/")
record "{\"name\":\"squid_seen_by_nginx\",\"requests\":$n,\"logged\":$seen}"

# ---- Egret -----------------------------------------------------------------------------------
# The profile's JVM flags, read by the JVM from the profile file itself (a java @argument-file,
# as the image's launcher passes it), so the benchmark and the image never drift apart. The
# image maps the class-data archive its build trains; `mvn package` writes the same archive to
# proxy/target/egret.jsa. Use it when it maps on this Java with this jar (-Xshare:on refuses
# otherwise), else train one here the same way (the sidecar profile's flags, this class path).
ARCHIVE=$ROOT/proxy/target/egret.jsa
if [[ $JAR -ef $ROOT/proxy/target/egret.jar && -f $ARCHIVE ]] \
    && "$JAVA" "@$FLAGS_FILE" "-XX:SharedArchiveFile=$ARCHIVE" -Xshare:on -cp "$JAR" dev.egret.cli.Egret --help >/dev/null 2>&1; then
  say "class-data archive: $ARCHIVE (mvn package's) maps on $JAVA"
else
  say "training a class-data archive (dev.egret.lambda.Training), as the image build does"
  ARCHIVE=$W/egret.jsa
  training=("$JAVA" -XX:ArchiveClassesAtExit="$ARCHIVE")
  [[ $(archive_form "$JAR") == dynamic ]] || training=(--static-archive "$ARCHIVE" "$JAVA")
  "$JAVA" -cp "$JAR" dev.egret.lambda.Training "${training[@]}" \
    "@$ROOT/deploy/jvm/sidecar.flags" -cp "$JAR" dev.egret.cli.Egret run >"$W/training.log" 2>&1 \
    || die "the training run failed: $(tail -5 "$W/training.log")"
fi
# shellcheck disable=SC2206
EXTRA=(${BENCH_JVM_EXTRA:-})
JVM=("$JAVA" "@$FLAGS_FILE" "-XX:SharedArchiveFile=$ARCHIVE" -Xshare:auto "-XX:MaxRAM=$MAXRAM" "${EXTRA[@]}")

mkdir -p "$W/egret"
cat >"$W/egret/egret.yaml" <<EOF
version: 1
listen:
  proxy: 127.0.0.1:$EGRET_PORT
  admin: 127.0.0.1:$ADMIN_PORT
tls:
  trust: [$W/pki/ca.pem]
addresses:
  allow: [127.0.0.1/32]
allow:
  - host: 127.0.0.1
    ports: [$TLS_PORT]
EOF
"$JAVA" -jar "$JAR" check "$W/egret/egret.yaml" >/dev/null || die "egret check refused the bench config"

say "egret ($PROFILE profile): ${JVM[*]} -jar $JAR"
start_ns=$(date +%s%N)
(cd "$W/egret" && exec "${JVM[@]}" -jar "$JAR" run --config "$W/egret/egret.yaml" \
  >"$W/egret/access.log" 2>"$W/egret/stderr") &
EGRET_PID=$!
pids+=("$EGRET_PID")
deadline=$((SECONDS + 30))
until curl -s -o /dev/null --fail "http://127.0.0.1:$ADMIN_PORT/readyz"; do
  kill -0 "$EGRET_PID" 2>/dev/null || die "egret exited before it was ready: $(cat "$W/egret/stderr")"
  ((SECONDS < deadline)) || die "egret not ready after 30 s"
  sleep 0.01
done
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
# CPU seconds spent getting ready: on a shared machine wall time depends on the neighbours'
# load, CPU time much less.
record "{\"name\":\"ready\",\"ms\":$ready_ms,\"cpu_s\":$(cpu_seconds "$EGRET_PID")}"

say "egret upgrade path: first ${COLD}s after ready (cold), then ${WARMUP}s warm-up, ${DURATION}s measured"
EG=("http://127.0.0.1:$EGRET_PORT/" "http://$U/100b" "$U")
cpu0=$(cpu_seconds "$EGRET_PID")
json=$(run_wrk egret_cold "$COLD" "${EG[@]}")
record "{\"name\":\"egret_cold_cpu\",\"cpu_s\":$(python3 -c "print($(cpu_seconds "$EGRET_PID") - $cpu0)"),\"requests\":$(wrk_requests "$json")}"
run_wrk egret_warmup "$WARMUP" "${EG[@]}" >/dev/null
before=$(log_lines)
cpu0=$(cpu_seconds "$EGRET_PID")
json=$(run_wrk egret "$DURATION" "${EG[@]}")
cpu1=$(cpu_seconds "$EGRET_PID")
n=$(wrk_requests "$json")
seen=$(await_logged "$before" "$n" "1.1 egret-")
record "{\"name\":\"egret_seen_by_nginx\",\"requests\":$n,\"logged\":$seen}"
record "{\"name\":\"egret_cpu\",\"cpu_s\":$(python3 -c "print($cpu1 - $cpu0)"),\"requests\":$n}"

# ---- the peers on the same job, the same way: warm-up, then measured with their CPU ----------
# peer NAME PORT PID MARKER ACCESS_LOG: the figures under NAME, NAME_cpu, NAME_seen_by_nginx and
# NAME_logged (its own access-log lines during the measured run).
peer() {
  local name=$1 port=$2 pid=$3 marker=$4 log=$5 json n c0 c1 seen l0 l1 before
  say "$name upgrade path: ${WARMUP}s warm-up, ${DURATION}s measured"
  run_wrk "${name}_warmup" "$WARMUP" "http://127.0.0.1:$port/" "http://$U/100b" "$U" >/dev/null
  before=$(log_lines)
  l0=$(wc -l <"$log")
  c0=$(cpu_seconds "$pid")
  json=$(run_wrk "$name" "$DURATION" "http://127.0.0.1:$port/" "http://$U/100b" "$U")
  c1=$(cpu_seconds "$pid")
  n=$(wrk_requests "$json")
  seen=$(await_logged "$before" "$n" "$marker")
  record "{\"name\":\"${name}_seen_by_nginx\",\"requests\":$n,\"logged\":$seen}"
  record "{\"name\":\"${name}_cpu\",\"cpu_s\":$(python3 -c "print($c1 - $c0)"),\"requests\":$n}"
  # nginx-proxy buffers its access log for up to 1 s: USR1 makes it write the buffer out.
  if [[ $name == nginx_proxy ]]; then kill -USR1 "$pid"; sleep 1.5; fi
  l1=$(wc -l <"$log")
  record "{\"name\":\"${name}_logged\",\"requests\":$n,\"lines\":$((l1 - l0))}"
}
peer nginx_proxy "$NGXP_PORT" "$NGXP_PID" "1.1 nginx-proxy" "$W/nginxp/access.log"
peer haproxy "$HAP_PORT" "$HAP_PID" "1.1 haproxy" "$W/haproxy/access.log"

# ---- CONNECT tunnels, 1 MiB bodies, curl keep-alive -----------------------------------------
say "CONNECT 1 MiB bodies: $ROUNDS rounds of ${CONNECT_MIB} MiB each direct, via egret, via squid"
cfg=$W/curl-1m.cfg
for _ in $(seq "$CONNECT_MIB"); do printf 'url = "https://%s/1m"\noutput = "/dev/null"\n' "$U"; done >"$cfg"
# transfer NAME [PROXY]: one curl process, one keep-alive connection (one tunnel), CONNECT_MIB
# transfers; MiB/s from the sum of curl's own per-transfer times.
transfer() {
  local name=$1 proxy=${2:-} f=$W/$1.times
  "${CURL_TLS[@]}" ${proxy:+-x "$proxy"} -K "$cfg" \
    -w '%{http_code} %{size_download} %{time_total} %{num_connects}\n' >"$f" || die "curl $name failed"
  python3 - "$name" "$f" "$RAW" "$CONNECT_MIB" <<'PY'
import json, sys
name, path, raw, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = [l.split() for l in open(path)]
bad = [r for r in rows if r[0] != "200" or int(r[1]) != 1048576]
if bad or len(rows) != want:
    sys.exit(f"curl {name}: {len(rows)} of {want} transfers, bad: {bad[:3]}")
with open(raw, "a") as f:
    f.write(json.dumps({"name": name, "mib": len(rows),
                        "seconds": sum(float(r[2]) for r in rows),
                        "connects": sum(int(r[3]) for r in rows)}) + "\n")
PY
}
for r in $(seq "$ROUNDS"); do
  transfer "connect_direct" ""
  transfer "connect_egret" "http://127.0.0.1:$EGRET_PORT"
  transfer "connect_squid" "http://127.0.0.1:$SQUID_PORT"
done

# ---- a new client connection per request -----------------------------------------------------
say "new connection per request: $NEWCONN x direct TLS, $NEWCONN x via egret (one curl each)"
newconn() { # newconn NAME CURL-ARGS...: one curl process per request, so nothing is reused
  local name=$1; shift
  local f=$W/$name.times
  : >"$f"
  for _ in $(seq "$NEWCONN"); do
    "$@" -o /dev/null -w '%{http_code} %{time_total}\n' >>"$f" || die "curl $name failed"
  done
  python3 - "$name" "$f" "$RAW" <<'PY'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[2])]
bad = [r for r in rows if r[0] != "200"]
if bad:
    sys.exit(f"{sys.argv[1]}: {len(bad)} answers were not 200: {bad[:3]}")
t = sorted(float(r[1]) * 1000 for r in rows)
with open(sys.argv[3], "a") as f:
    f.write(json.dumps({"name": sys.argv[1], "count": len(t), "p50_ms": statistics.median(t),
                        "p90_ms": t[int(len(t) * 0.9) - 1]}) + "\n")
PY
}
newconn newconn_direct "${CURL_TLS[@]}" "https://$U/100b"
newconn newconn_egret curl -sS --fail -x "http://127.0.0.1:$EGRET_PORT" "http://$U/100b"

# ---- memory ------------------------------------------------------------------------------------
kill -0 "$EGRET_PID" 2>/dev/null || die "egret died during the run: $(tail -5 "$W/egret/stderr")"
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$EGRET_PID/status")
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$EGRET_PID/status")
squid_hwm_kb=$(hwm_kb "$SQUID_PID")
record "{\"name\":\"memory\",\"egret_hwm_kb\":$hwm_kb,\"egret_rss_kb\":$rss_kb,\"squid_hwm_kb\":$squid_hwm_kb,\"nginx_proxy_hwm_kb\":$(hwm_kb "$NGXP_PID"),\"haproxy_hwm_kb\":$(hwm_kb "$HAP_PID")}"
record "{\"name\":\"setup\",\"profile\":\"$PROFILE\",\"nginx\":\"$(nginx -v 2>&1 | sed 's/.*\///')\",\"haproxy\":\"$(haproxy -v | head -1 | awk '{print $3}')\",\"jvm\":$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${JVM[@]}"),\"java\":\"$("$JAVA" -version 2>&1 | head -1 | sed 's/"/\\"/g')\",\"cpus\":$(nproc),\"load_before\":\"$LOAD_BEFORE\",\"load_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"cpu_model\":\"$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)\",\"duration_s\":$DURATION,\"threads\":$THREADS,\"connections\":$CONNECTIONS}"

python3 "$BENCH/report.py" "$RAW" "$OUT/results.md" "$OUT/results.jsonl"
