#!/usr/bin/env bash
# Fuzzes one Jazzer @FuzzTest for a set time and keeps what it finds as a regression input.
#
#   bench/fuzz.sh CLASS[#METHOD] [SECONDS]      (default 600 s)
#   bench/fuzz.sh dev.egret.listener.StrictRequestDecoderFuzzTest 600
#   bench/fuzz.sh dev.egret.policy.HostNameFuzzTest#namesAndPatterns 60
#
# METHOD may be left out when CLASS has one @FuzzTest. Runs from the repository root, offline
# (the local Maven repository must hold jazzer-junit already: `mvn -B test-compile` once).
#
# Plain `mvn test` runs every @FuzzTest in regression mode: once per file in
# proxy/src/test/resources/<package path>/<Class>Inputs/<method>/, plus the empty input. This
# script runs the one test in fuzzing mode instead (JAZZER_FUZZ=1), for SECONDS
# (JAZZER_MAX_DURATION, which overrides the @FuzzTest's maxDuration), with coverage from Egret's
# classes and Netty's HTTP codec (the differential test's reference). Jazzer keeps its growing
# corpus in proxy/.cifuzz-corpus/ (git-ignored; a later run starts from it) and writes a failing
# input as crash-<sha1> into the Inputs folder above, where the next `mvn test` replays it; a
# crash file that lands in proxy/ instead (Jazzer's fallback) is moved there. Commit the new
# file with the fix, under a name that says what it is. Exit status: Maven's (non-zero when the
# fuzzer found something). One fuzzer at a time: it takes a core and a 1 GiB heap.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $# -lt 1 || $# -gt 2 ]]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
target=$1
seconds=${2:-600}
class=${target%%#*}
method=""
[[ $target == *#* ]] && method=${target#*#}

source_file=proxy/src/test/java/${class//.//}.java
if [[ ! -f $source_file ]]; then
  echo "fuzz.sh: no test source $source_file" >&2
  exit 2
fi
if [[ -z $method ]]; then
  # The method after each @FuzzTest annotation.
  mapfile -t methods < <(awk '/@FuzzTest/ {f=1; next} f && /void [A-Za-z0-9_]+\(/ {
      sub(/.*void /, ""); sub(/\(.*/, ""); print; f=0 }' "$source_file")
  if [[ ${#methods[@]} -ne 1 ]]; then
    echo "fuzz.sh: $class has ${#methods[@]} @FuzzTest methods (${methods[*]}); name one as CLASS#METHOD" >&2
    exit 2
  fi
  method=${methods[0]}
fi

inputs=proxy/src/test/resources/${class//.//}Inputs/$method
mkdir -p "$inputs"
marker=$(mktemp)
trap 'rm -f "$marker"' EXIT
log=proxy/target/fuzz-${class##*.}-$method.log
mkdir -p proxy/target

echo "fuzz.sh: fuzzing $class#$method for ${seconds}s; log in $log"
rc=0
JAZZER_FUZZ=1 JAZZER_MAX_DURATION="${seconds}s" \
  mvn -B -o -pl proxy test -Dtest="$class#$method" -Dsurefire.failIfNoSpecifiedTests=false \
  -Djazzer.hooks=true -Djazzer.instrument='dev.egret.**,io.netty.handler.codec.http.**' \
  >"$log" 2>&1 || rc=$?

# Jazzer's fallback place for a crash file is the module's folder.
for f in proxy/crash-* proxy/timeout-* proxy/slow-unit-*; do
  [[ -e $f ]] && [[ $f -nt $marker || ! -e $inputs/$(basename "$f") ]] && mv "$f" "$inputs/"
done
new=$(find "$inputs" -type f -newer "$marker" | sort)

# libFuzzer's closing line: "Done N runs in S second(s)"; or the last status line before a crash.
grep -E '^Done [0-9]+ runs|^#[0-9]+ ' "$log" | tail -1 || true
grep -E 'INFO: Loaded|INFO: seed corpus|cov: ' "$log" | tail -1 || true
if [[ -n $new ]]; then
  echo "fuzz.sh: new regression inputs (commit them with the fix):"
  echo "$new" | sed 's/^/  /'
  grep -E -m1 -A12 '^== Java Exception|^== Jazzer|Exception|Error:' "$log" | head -20 || true
else
  echo "fuzz.sh: no new finding"
fi
if ((rc)); then
  echo "fuzz.sh: mvn exited $rc; see $log" >&2
fi
exit "$rc"
