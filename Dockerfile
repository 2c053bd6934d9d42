# Egret container image: a sidecar HTTPS egress proxy.
#
#   docker build -t egret:dev .
#   docker run --read-only --tmpfs /tmp -v "$PWD/egret-config:/etc/egret:ro" egret:dev
#
# Mount the config's directory (egret-config/ holds egret.yaml and any PEM files it names), not
# the single file: editors and kubelet replace the file, and a single-file bind mount keeps
# showing the old one, so hot reload would never see an edit.
#
# Three stages: Maven builds the shaded jar, a Debian stage builds the static health-check probe,
# and only those two files, the launcher and its two JVM profiles (deploy/jvm) go onto a small,
# pinned JRE.
# The base images are pinned to exact versions (never :latest); pin them by digest as well
# when you mirror them into your own registry.

# ---- build ---------------------------------------------------------------------------------
FROM maven:3.9.9-eclipse-temurin-17 AS build
WORKDIR /src
# The poms first, so the dependency download is a cached layer that survives source edits.
# `dependency:go-offline` alone misses what plugins resolve only when they run (the shade
# plugin's own dependencies, snakeyaml 2.0 among them), so the layer runs the real build
# (`package`, tests skipped) on the poms alone: every plugin of the build runs once and fetches
# what it needs. The source build after it runs offline (-o): a missing artifact fails the build
# here, not a download at package time. CI runs these two commands the same way.
COPY pom.xml ./
COPY proxy/pom.xml proxy/
RUN mvn -B -q -pl proxy -am package -DskipTests -Degret.layer.skip=true -Degret.cds.skip=true
COPY proxy/src proxy/src
RUN mvn -B -q -o package -DskipTests -Degret.layer.skip=true -Degret.cds.skip=true

# ---- health-check probe --------------------------------------------------------------------
# A static HTTP probe (about 40 KB, musl) so the HEALTHCHECK needs neither a shell nor a second
# JVM: see deploy/healthcheck/egret-probe.c.
FROM debian:12.11-slim AS probe
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY deploy/healthcheck/ deploy/healthcheck/
RUN sh deploy/healthcheck/build.sh /egret-probe

# ---- runtime -------------------------------------------------------------------------------
# glibc, not Alpine's musl: Netty's native epoll transport and BoringSSL (netty-tcnative) are
# built against glibc and do not load on musl, and Egret would fall back to Java NIO and the
# JDK's SSLEngine, which cost more CPU per request (docs/performance.md).
FROM eclipse-temurin:17.0.15_6-jre-noble AS runtime

# A fixed numeric user and group, so Kubernetes' runAsNonRoot can verify it without a passwd
# lookup and ECS/Kubernetes files can be owned by the same id.
RUN groupadd --system --gid 10001 egret \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin egret \
 && mkdir -p /etc/egret \
 && chown 10001:10001 /etc/egret

# Owned by root and not writable by the user: the process cannot change its own code.
# /app holds the jar, the launcher (/app/egret, the ENTRYPOINT) and the two JVM profiles beside
# it (sidecar.flags, gateway.flags: java @argument-files, the only place the JVM's flags are
# written; see deploy/jvm).
COPY --from=build --chown=0:0 /src/proxy/target/egret.jar /app/egret.jar
COPY --chown=0:0 deploy/jvm/ /app/
COPY --from=probe --chown=0:0 /egret-probe /usr/local/bin/egret-probe

# Class-data sharing: a training run of Egret's real start-up (`egret run` in a JVM of its own,
# driven by dev.egret.lambda.Training, the build's training for the Lambda layer and for
# target/egret.jsa too: an upgraded request and a CONNECT tunnel to an HTTPS server it runs on
# loopback, two refused requests, then SIGTERM and the drain) records the classes a start and its
# first requests load as a class list, and one static archive of it is dumped into /app/egret.jsa
# (the JDK's classes Egret loads and Egret's own, in place of the JDK's default archive and a
# dynamic one on top: less memory mapped); the launcher maps them instead of loading them. The
# driver's own classes stay out of the archive. The sidecar profile's flags and the launcher's
# class path (/app/egret.jar); the gateway profile maps the same archive. -Xshare:auto in the
# launcher: a JVM that cannot map the archive still starts, only slower.
RUN java -cp /app/egret.jar dev.egret.lambda.Training --static-archive /app/egret.jsa \
      java @/app/sidecar.flags -cp /app/egret.jar dev.egret.cli.Egret run >/dev/null \
 && chmod 0444 /app/egret.jsa \
 && rm -rf /tmp/egret-training* /tmp/libnetty*

# The allowlist is mounted here (ConfigMap, ECS volume, or docker -v). No config is baked in:
# an image that silently allowed a built-in list would be the wrong default for a firewall.
ENV EGRET_CONFIG=/etc/egret/egret.yaml
# The JVM profile (deploy/jvm): sidecar (small: C1 only, sized for a 128 MiB limit) or gateway
# (cheap per request: C2, sized for 512 MiB). The launcher refuses anything else.
ENV EGRET_JVM_PROFILE=sidecar
# Declared volumes give /tmp (JVM scratch) and /etc/egret a writable home under
# `docker run --read-only`, and on ECS Fargate a bind mount at these paths inherits the
# image's ownership (10001 for /etc/egret), so the non-root config writer can fill it.
VOLUME ["/etc/egret", "/tmp"]
WORKDIR /app
USER 10001:10001

# 3128: the proxy. It listens on 127.0.0.1 inside the pod/task (containers share loopback).
# 9901: admin (/metrics, /healthz, /readyz); bind it to 0.0.0.0 in the config for Prometheus.
EXPOSE 3128 9901

# No shell, curl or second JVM: egret-probe GETs http://127.0.0.1:9901/readyz and exits 0 on
# 200 (about 1 ms of CPU and 1 MB per check; `java -jar /app/egret.jar ready` does the same in a
# second JVM for 0.4 CPU-seconds and 50 MB, so it stays a command, not the health check).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/egret-probe", "127.0.0.1:9901", "/readyz"]

# The launcher (deploy/jvm/egret) execs java with the profile's flags, the class-data archive and
# the jar, so the JVM is PID 1 and gets the orchestrator's SIGTERM. CI runs this exact
# ENTRYPOINT + CMD against the built jar (.ci/deploy-checks.sh, proxy/target laid out as /app),
# for both profiles. Egret refuses to start when heap + direct memory + the JVM's own reserve
# cannot fit the memory limit (dev.egret.Footprint).
ENTRYPOINT ["/app/egret"]
CMD ["run"]
