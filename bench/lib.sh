# Shared by bench/run.sh, bench/ab.sh and bench/soak.sh (sourced, not run): free ports, the
# run's throwaway certificates, the image's JVM and the JVM profiles' flags (deploy/jvm), so the
# three never drift apart (.ci/deploy-checks.sh takes the image's JVM from here too).

# stop_all TENTHS PID...: SIGTERM to every PID, then up to TENTHS tenths of a second for each to
# exit before SIGKILL; reaps them. PIDs must be children of the calling shell.
stop_all() {
  local tenths=$1 pid
  shift
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq "$tenths"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# stop_on_exit NAME TENTHS KEEP: on exit, failure or Ctrl-C, stop every PID in the caller's
# `pids` array (stop_all TENTHS) and remove its work folder $W, which is kept (and named) when
# the run failed or KEEP is not empty.
stop_on_exit() {
  _stop_name=$1 _stop_tenths=$2 _stop_keep=$3
  trap _stop_now EXIT
  trap 'exit 130' INT TERM
}
_stop_now() {
  local rc=$?
  stop_all "$_stop_tenths" "${pids[@]}"
  if ((rc)) || [[ -n $_stop_keep ]]; then
    echo "$_stop_name: logs kept in $W" >&2
  else
    rm -rf "$W"
  fi
}

# A TCP port on 127.0.0.1 that the kernel picked and nothing holds now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# make_ca DIR NAME CN: DIR/NAME.pem and DIR/NAME.key, a P-256 CA valid for two days.
make_ca() {
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 2 \
    -subj "/CN=$3" -keyout "$1/$2.key" -out "$1/$2.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# make_leaf DIR NAME CA SAN: DIR/NAME.pem and .key, a server certificate for SAN (e.g.
# IP:127.0.0.1,DNS:localhost) issued by DIR/CA.pem.
make_leaf() {
  local dir=$1 name=$2 ca=$3 san=$4
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -subj "/CN=$name" -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
    "$san" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.pem" -CAkey "$dir/$ca.key" -CAcreateserial \
    -sha256 -days 2 -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null
}

# archive_form JAR: how the build makes the class-data archive for this jar: "static" (one static
# archive of the training's class list, Training --static-archive) or, for a jar whose Training
# predates that, "dynamic" (-XX:ArchiveClassesAtExit on the JDK's default archive), so that a
# baseline jar built before still starts as its own image did.
archive_form() {
  if python3 - "$1" <<'PY'
import sys, zipfile
training = zipfile.ZipFile(sys.argv[1]).read("dev/egret/lambda/Training.class")
sys.exit(0 if b"--static-archive" in training else 1)
PY
  then echo static; else echo dynamic; fi
}

# profile_flags FILE: the JVM flags of a profile (deploy/jvm/sidecar.flags or gateway.flags, a java
# @argument-file), one per line, as the JVM reads them: from # to the end of a line is dropped.
profile_flags() {
  sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$1" | grep -v '^$'
}

# profile_limit FILE: the container memory limit the profile is sized for, from its
# "# memory limit: SIZE" line (128m, 512m): what -XX:MaxRAM stands in for outside a container.
profile_limit() {
  local limit
  limit=$(sed -n 's/^# memory limit: *\([0-9]*[kmgKMG]\).*/\1/p' "$1" | head -1)
  [[ -n $limit ]] || { echo "profile_limit: $1 has no '# memory limit: SIZE' line" >&2; return 1; }
  echo "$limit"
}

# image_java DOCKERFILE: the java launcher of the JDK the runtime stage runs (its FROM names
# eclipse-temurin:MAJOR...): `java` when that is the default JDK's major version, else the JDK
# in $JAVA_MAJOR_HOME (JAVA25_HOME, say) or under /usr/lib/jvm (temurin-MAJOR-*), where these
# machines keep their second JDK. Fails, naming what it looked for, when there is none.
image_java() {
  local major want found
  want=$(python3 - "$1" <<'PY'
import re, sys
froms = [l for l in open(sys.argv[1]) if re.match(r"\s*FROM\s", l, re.I)]
m = re.search(r"eclipse-temurin:(\d+)", froms[-1])
print(m.group(1) if m else "")
PY
)
  [[ -n $want ]] || { echo "image_java: the runtime stage of $1 is not an eclipse-temurin image" >&2; return 1; }
  major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  if [[ $major == "$want" ]]; then echo java; return 0; fi
  local home_var=JAVA${want}_HOME
  for found in ${!home_var:+"${!home_var}/bin/java"} /usr/lib/jvm/temurin-"$want"-*/bin/java \
      /usr/lib/jvm/java-"$want"-*/bin/java; do
    if [[ -x $found ]]; then echo "$found"; return 0; fi
  done
  echo "image_java: the image runs Java $want; the default java is $major and there is no" \
    "\$$home_var nor /usr/lib/jvm/temurin-$want-*" >&2
  return 1
}
