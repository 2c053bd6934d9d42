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
# and only those two files go onto a small, pinned JRE.
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
RUN mvn -B -q -pl proxy -am package -DskipTests -Degret.layer.skip=true
COPY proxy/src proxy/src
RUN mvn -B -q -o package -DskipTests -Degret.layer.skip=true

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
COPY --from=build --chown=0:0 /src/proxy/target/egret.jar /app/egret.jar
COPY --from=probe --chown=0:0 /egret-probe /usr/local/bin/egret-probe

# Class-data sharing: a training run of Egret's real start-up (dev.egret.lambda.Training, the
# build's training for the Lambda layer too: Run.start as `egret run` goes through it, against an
# Extensions API it fakes on loopback, two refused requests through the proxy, then its drain)
# records the classes a start loads in /app/egret.jsa, and the ENTRYPOINT maps them instead of
# loading them. Same JVM flags as the ENTRYPOINT (DockerfileTest holds them equal) and the same
# class path (/app/egret.jar). Measured with the jar on this 2-core machine: ready in 0.66-0.92 s
# instead of 1.21-1.50 s (0.8-1.0 CPU s instead of 1.4-1.65). -Xshare:auto: a JVM that cannot
# map the archive still starts, only slower.
RUN java -XX:ArchiveClassesAtExit=/app/egret.jsa -XX:MinRAMPercentage=30 -XX:MaxRAMPercentage=30 -XX:InitialRAMPercentage=10 -XX:MaxDirectMemorySize=16m -XX:MaxMetaspaceSize=64m -XX:ReservedCodeCacheSize=32m -Xss512k -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData -Dfile.encoding=UTF-8 \
      -cp /app/egret.jar dev.egret.lambda.Training >/dev/null \
 && chmod 0444 /app/egret.jsa \
 && rm -rf /tmp/egret-training* /tmp/libnetty*

# The allowlist is mounted here (ConfigMap, ECS volume, or docker -v). No config is baked in:
# an image that silently allowed a built-in list would be the wrong default for a firewall.
ENV EGRET_CONFIG=/etc/egret/egret.yaml
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

# The one place the server's command line lives (CI runs this exact argv against the built jar;
# bench/run.sh reads these flags too). Sized for a sidecar inside a 128 MiB container limit,
# measured with bench/run.sh (docs/performance.md); Egret refuses to start when heap + direct
# memory + the JVM's own reserve cannot fit the limit (dev.egret.Footprint):
#   SharedArchiveFile=/app/egret.jsa, Xshare:auto  the class-data archive trained above;
#   Min/MaxRAMPercentage=30  heap = 30% of the limit at every size (40 MiB at 128 MiB). Both are
#                         needed: below ~250 MiB HotSpot uses MinRAMPercentage (default 50%)
#                         and ignores MaxRAMPercentage;
#   MaxDirectMemorySize=16m  Netty's buffers; 6 MiB in use at peak under the benchmark load;
#   MaxMetaspaceSize=64m, ReservedCodeCacheSize=32m, Xss512k  bound what the JVM keeps for itself
#                         (used: 25, 12 and ~5 MiB);
#   TieredStopAtLevel=1   client compiler only: 35-45 MiB less peak RSS than with C2 (which
#                         did not fit 128 MiB), ready and warm in seconds, and on 1-2 shared
#                         CPUs the warm rate was higher than with C2 in the same run;
#   UseSerialGC           the right collector for a 40 MiB heap on 1-2 CPUs;
#   ExitOnOutOfMemoryError  die and be restarted rather than limp on;
#   -UsePerfData          no hsperfdata file, so nothing is written outside /tmp at all;
#   file.encoding=UTF-8   the access log is UTF-8 whatever the container locale is.
ENTRYPOINT ["java", "-XX:SharedArchiveFile=/app/egret.jsa", "-Xshare:auto", "-XX:MinRAMPercentage=30", "-XX:MaxRAMPercentage=30", "-XX:InitialRAMPercentage=10", "-XX:MaxDirectMemorySize=16m", "-XX:MaxMetaspaceSize=64m", "-XX:ReservedCodeCacheSize=32m", "-Xss512k", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError", "-XX:-UsePerfData", "-Dfile.encoding=UTF-8", "-jar", "/app/egret.jar"]
CMD ["run"]
