package dev.egret.telemetry;

import dev.egret.failure.HandshakeResult;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.egret.admin.AdminServer;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureClassifier;
import dev.egret.policy.Allowlist;
import dev.egret.policy.Kind;
import dev.egret.policy.Mode;
import dev.egret.policy.Target;
import dev.egret.tls.Pins;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateExpiredException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLHandshakeException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Feeds synthetic hops and handshakes through {@link Observability} and reads the result the way
 * Prometheus does: a GET of /metrics on a real admin listener.
 */
class ObservabilityTest {
  private static final Duration RETENTION = Duration.ofHours(24);
  private static final Pattern LABEL_VALUE = Pattern.compile("=\"([^\"]*)\"");

  private final AtomicLong ticker = new AtomicLong();
  private Metrics metrics;
  private Vertx vertx;
  private Observability telemetry;
  private AdminServer admin;
  private int port;
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  @BeforeEach
  void start() throws Exception {
    metrics = new Metrics();
    vertx = metrics.newVertx(new VertxOptions().setEventLoopPoolSize(1)
        .setPreferNativeTransport(true));
    telemetry = new Observability(metrics.registry(),
        new AccessLog(new ByteArrayOutputStream(), 100), RETENTION, ticker::get);
    admin = new AdminServer(vertx, "127.0.0.1", 0, telemetry::scrape);
    port = admin.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    admin.markReady();
  }

  @AfterEach
  void stop() throws Exception {
    telemetry.close();
    admin.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    metrics.close();
  }

  @Test
  void countsEachHopByDestinationKindOutcomeAndError() throws Exception {
    telemetry.hopFinished(Hops.upgrade("api.example.com", "/v1/items"));
    telemetry.hopFinished(Hops.tunnel("na1.salesforce.com"));
    telemetry.hopFinished(Hops.tunnel("eu2.salesforce.com"));
    telemetry.hopFinished(Hops.hop(Hops.ALLOWLIST,
        new Target(Kind.TLS, "exfil.attacker.example", 443, "GET", "/"),
        ErrorKind.REQUEST_DENIED, 403, 200_000));
    telemetry.hopFinished(Hops.hop(Hops.ALLOWLIST,
        new Target(Kind.TLS, "api.example.com", 443, "GET", "/"),
        ErrorKind.TLS_CERTIFICATE_ERROR, 502, 8_000_000));

    String scrape = scrape();

    assertThat(scrape).contains(
        "egret_requests_total{destination=\"api.example.com\",error=\"none\",kind=\"upgrade\","
            + "outcome=\"allowed\"} 1.0\n",
        "egret_requests_total{destination=\"**.salesforce.com\",error=\"none\",kind=\"tunnel\","
            + "outcome=\"allowed\"} 2.0\n",
        "egret_requests_total{destination=\"denied\",error=\"http_request_denied\",kind=\"tls\","
            + "outcome=\"denied\"} 1.0\n",
        "egret_requests_total{destination=\"api.example.com\",error=\"tls_certificate_error\","
            + "kind=\"tls\",outcome=\"failed\"} 1.0\n");
    // 3 ms falls in the 5 ms bucket and not in the 2.5 ms one; 40 ms tunnels in 50 ms.
    assertThat(scrape).contains(
        "egret_request_duration_seconds_bucket{destination=\"api.example.com\",kind=\"upgrade\","
            + "le=\"0.0025\"} 0\n",
        "egret_request_duration_seconds_bucket{destination=\"api.example.com\",kind=\"upgrade\","
            + "le=\"0.005\"} 1\n",
        "egret_request_duration_seconds_bucket{destination=\"**.salesforce.com\",kind=\"tunnel\","
            + "le=\"0.025\"} 0\n",
        "egret_request_duration_seconds_bucket{destination=\"**.salesforce.com\",kind=\"tunnel\","
            + "le=\"0.05\"} 2\n",
        "egret_request_duration_seconds_count{destination=\"denied\",kind=\"tls\"} 1\n");
    assertThat(bucketBounds(scrape, "egret_request_duration_seconds_bucket")).containsExactly(
        "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
        "1.0", "2.5", "5.0", "10.0", "30.0", "+Inf");
  }

  @Test
  void reportModeCountsAsReportedUnderTheClosestRuleOrDenied() throws Exception {
    Allowlist report = Hops.allowlist(Mode.REPORT);
    telemetry.hopFinished(Hops.hop(report, Target.tunnel("api.example.com", 8443), null, 200, 1));
    telemetry.hopFinished(Hops.hop(report, Target.tunnel("unlisted.example.net", 443), null, 200,
        1));

    assertThat(scrape()).contains(
        "egret_requests_total{destination=\"api.example.com\",error=\"none\",kind=\"tunnel\","
            + "outcome=\"reported\"} 1.0\n",
        "egret_requests_total{destination=\"denied\",error=\"none\",kind=\"tunnel\","
            + "outcome=\"reported\"} 1.0\n");
  }

  @Test
  void countsBytesTunnelsAndConnectTimes() throws Exception {
    Hop hop = Hops.upgrade("api.example.com", "/upload");
    hop.bytesUpstream = 1500;
    hop.bytesDownstream = 70_000;
    telemetry.hopFinished(hop);
    telemetry.tunnelOpened();
    telemetry.tunnelOpened();
    telemetry.tunnelClosed();
    telemetry.upstreamConnected("api.example.com", Duration.ofNanos(800_000));

    String scrape = scrape();

    assertThat(scrape).contains(
        "egret_bytes_total{destination=\"api.example.com\",direction=\"upstream\"} 1500.0\n",
        "egret_bytes_total{destination=\"api.example.com\",direction=\"downstream\"} 70000.0\n",
        "egret_tunnels_active 1.0\n",
        "egret_upstream_connect_duration_seconds_bucket{destination=\"api.example.com\","
            + "le=\"5.0E-4\"} 0\n",
        "egret_upstream_connect_duration_seconds_bucket{destination=\"api.example.com\","
            + "le=\"0.001\"} 1\n");
  }

  @Test
  void countsHandshakesByVersionCipherAndResult() throws Exception {
    X509Certificate leaf = TestCertificates.leaf("api.example.com", Instant.parse(
        "2031-05-17T12:00:00Z"));
    telemetry.upstreamHandshake("api.example.com", "api.example.com", "TLSv1.3",
        "TLS_AES_128_GCM_SHA256", HandshakeResult.OK, Duration.ofMillis(12), leaf);
    telemetry.upstreamHandshake("api.example.com", "api.example.com", "unknown", "unknown",
        handshakeResult(handshakeFailure(
            new Pins.PinMismatchException("no configured pin in the chain"))),
        Duration.ofMillis(3), null);
    SSLHandshakeException expired = handshakeFailure(new CertificateExpiredException("expired"));
    telemetry.upstreamHandshake("**.salesforce.com", "na1.salesforce.com", "unknown", "unknown",
        handshakeResult(expired), Duration.ofMillis(4), null);
    telemetry.upstreamHandshake("**.salesforce.com", "na1.salesforce.com", "unknown", "unknown",
        handshakeResult(new SSLHandshakeException("no cipher suites in common")),
        Duration.ofMillis(1), null);
    // A version or cipher outside the known sets must not mint a series of its own.
    telemetry.upstreamHandshake("**.salesforce.com", "na1.salesforce.com", "weird\"version",
        "x", HandshakeResult.PROTOCOL_ERROR, Duration.ofMillis(1), null);

    String scrape = scrape();

    assertThat(scrape).contains(
        "egret_upstream_tls_handshakes_total{cipher=\"TLS_AES_128_GCM_SHA256\","
            + "destination=\"api.example.com\",result=\"ok\",version=\"TLSv1.3\"} 1.0\n",
        "egret_upstream_tls_handshakes_total{cipher=\"unknown\",destination=\"api.example.com\","
            + "result=\"pin_mismatch\",version=\"unknown\"} 1.0\n",
        "egret_upstream_tls_handshakes_total{cipher=\"unknown\",destination=\"**.salesforce.com\","
            + "result=\"certificate_error\",version=\"unknown\"} 1.0\n",
        "egret_upstream_tls_handshakes_total{cipher=\"unknown\",destination=\"**.salesforce.com\","
            + "result=\"protocol_error\",version=\"unknown\"} 1.0\n",
        "egret_upstream_tls_handshakes_total{cipher=\"other\",destination=\"**.salesforce.com\","
            + "result=\"protocol_error\",version=\"other\"} 1.0\n",
        "egret_upstream_tls_handshake_duration_seconds_bucket{destination=\"api.example.com\","
            + "version=\"TLSv1.3\",le=\"0.025\"} 1\n");
    assertThat(expiry(scrape, "api.example.com", "api.example.com"))
        .contains((double) leaf.getNotAfter().toInstant().getEpochSecond());
  }

  @Test
  void certificateExpiryFollowsTheLatestLeafAndAgesOut() throws Exception {
    Instant first = Instant.parse("2030-01-01T00:00:00Z");
    Instant renewed = Instant.parse("2030-04-01T08:30:15Z");
    telemetry.upstreamHandshake("**.salesforce.com", "na1.salesforce.com", "TLSv1.2",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", HandshakeResult.OK, Duration.ofMillis(20),
        TestCertificates.leaf("na1.salesforce.com", first));
    telemetry.upstreamHandshake("**.salesforce.com", "eu2.salesforce.com", "TLSv1.2",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", HandshakeResult.OK, Duration.ofMillis(20),
        TestCertificates.leaf("eu2.salesforce.com", first));
    assertThat(expiry(scrape(), "**.salesforce.com", "na1.salesforce.com"))
        .contains((double) first.getEpochSecond());

    ticker.addAndGet(RETENTION.minusHours(1).toNanos());
    telemetry.upstreamHandshake("**.salesforce.com", "na1.salesforce.com", "TLSv1.2",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", HandshakeResult.OK, Duration.ofMillis(20),
        TestCertificates.leaf("na1.salesforce.com", renewed));
    ticker.addAndGet(Duration.ofHours(2).toNanos());

    String scrape = scrape();
    assertThat(expiry(scrape, "**.salesforce.com", "na1.salesforce.com"))
        .contains((double) renewed.getEpochSecond());
    assertThat(expiry(scrape, "**.salesforce.com", "eu2.salesforce.com"))
        .as("not seen for longer than the retention").isEmpty();

    // A host that comes back after ageing out is exported again.
    telemetry.upstreamHandshake("**.salesforce.com", "eu2.salesforce.com", "TLSv1.2",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", HandshakeResult.OK, Duration.ofMillis(20),
        TestCertificates.leaf("eu2.salesforce.com", renewed));
    assertThat(expiry(scrape(), "**.salesforce.com", "eu2.salesforce.com"))
        .contains((double) renewed.getEpochSecond());
  }

  @Test
  void exportsOnlyTheCurrentConfigHashAndCountsReloads() throws Exception {
    assertThat(scrape()).contains(
        "egret_config_reloads_total{result=\"success\"} 0.0\n",
        "egret_config_reloads_total{result=\"failure\"} 0.0\n");

    telemetry.configLoaded("aaaa1111");
    telemetry.configLoaded("bbbb2222");
    telemetry.configReloadFailed("line 3: unknown key 'alow'");

    String scrape = scrape();
    assertThat(scrape).contains("egret_config_info{sha256=\"bbbb2222\"} 1")
        .doesNotContain("aaaa1111")
        .contains("egret_config_reloads_total{result=\"success\"} 1.0\n",
            "egret_config_reloads_total{result=\"failure\"} 1.0\n");
  }

  @Test
  void keepsRawDeniedHostNamesOutOfEveryLabel() throws Exception {
    String secret = "exfil-7f3a.attacker.example";
    telemetry.hopFinished(Hops.hop(Hops.ALLOWLIST, new Target(Kind.UPGRADE, secret, 80, "POST",
        "/drop"), ErrorKind.REQUEST_DENIED, 403, 100_000));
    telemetry.hopFinished(Hops.hop(Hops.ALLOWLIST, Target.tunnel("x.pastebin.com", 443),
        ErrorKind.REQUEST_DENIED, 403, 100_000));
    // Report mode lets an unlisted host through; its handshake must not export its name either.
    Hop reported = Hops.hop(Hops.allowlist(Mode.REPORT), Target.tunnel(secret, 443), null, 200,
        1_000_000);
    telemetry.upstreamHandshake(reported.destination(), secret, "TLSv1.3",
        "TLS_AES_256_GCM_SHA384", HandshakeResult.OK, Duration.ofMillis(10),
        TestCertificates.leaf(secret, Instant.parse("2029-01-01T00:00:00Z")));
    telemetry.hopFinished(reported);

    String scrape = scrape();
    assertThat(scrape).contains("destination=\"denied\"");
    List<String> labelValues = LABEL_VALUE.matcher(scrape).results()
        .map(m -> m.group(1)).distinct().toList();
    assertThat(labelValues).noneMatch(v -> v.contains("attacker") || v.contains("pastebin"));
  }

  @Test
  void exportsJvmAndVertxMetersWithoutAddressLabels() throws Exception {
    scrape(); // the first scrape runs on Vert.x's worker pool, which Vert.x counts
    String scrape = scrape();

    assertThat(scrape).contains("jvm_memory_used_bytes{", "jvm_threads_live_threads ",
        "process_uptime_seconds ", "system_cpu_count ", "vertx_pool_completed_total{");
    assertThat(scrape).doesNotContain("remote=", "path=", "method=");
    assertThat(Pattern.compile("local=\"([^\"]*)\"").matcher(scrape).results()
        .map(m -> m.group(1)).distinct())
        .as("only the configured listen address, never a client's ephemeral port")
        .allMatch("127.0.0.1:0"::equals);
  }

  @Test
  void servesOutputThatPromtoolAccepts(@TempDir Path dir) throws Exception {
    Optional<Path> promtool = promtool();
    assumeTrue(promtool.isPresent(), "promtool is not installed");
    telemetry.hopFinished(Hops.upgrade("api.example.com", "/v1"));
    telemetry.hopFinished(Hops.tunnel("na1.salesforce.com"));
    telemetry.upstreamHandshake("api.example.com", "api.example.com", "TLSv1.3",
        "TLS_AES_128_GCM_SHA256", HandshakeResult.OK, Duration.ofMillis(10),
        TestCertificates.leaf("api.example.com", Instant.parse("2031-01-01T00:00:00Z")));
    telemetry.configLoaded("abc123");
    String scrape = scrape();
    String egretOnly = scrape.lines()
        .filter(l -> l.replaceFirst("^# (HELP|TYPE) ", "").startsWith("egret_"))
        .map(l -> l + "\n").reduce("", String::concat);

    PromtoolResult own = checkMetrics(promtool.get(), dir.resolve("egret.txt"), egretOnly);
    assertThat(own.exitCode()).as("Egret's own families must pass lint: %s", own.output())
        .isZero();
    // The JVM binders' names (process_cpu_time_ns_total, system_cpu_count) draw lint warnings
    // (exit 3), which are Micrometer's to fix; a parse error (exit 1) would be ours.
    PromtoolResult all = checkMetrics(promtool.get(), dir.resolve("all.txt"), scrape);
    assertThat(all.exitCode()).as(all.output()).isIn(0, 3);
    assertThat(all.output()).doesNotContain("egret_", "error while linting");
  }

  private record PromtoolResult(int exitCode, String output) {}

  private static PromtoolResult checkMetrics(Path promtool, Path file, String metrics)
      throws Exception {
    Files.writeString(file, metrics);
    Process check = new ProcessBuilder(promtool.toString(), "check", "metrics")
        .redirectInput(file.toFile())
        .redirectErrorStream(true)
        .start();
    assertThat(check.waitFor(30, TimeUnit.SECONDS)).as("promtool finished").isTrue();
    return new PromtoolResult(check.exitValue(),
        new String(check.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
  }

  private String scrape() throws Exception {
    HttpResponse<String> response = http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics"))
            .timeout(Duration.ofSeconds(10)).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.headers().firstValue("content-type"))
        .contains("text/plain; version=0.0.4; charset=utf-8");
    return response.body();
  }

  /** How the one classifier sorts a failed handshake. */
  private static HandshakeResult handshakeResult(Throwable failure) {
    return FailureClassifier.classify(failure, "api.example.com").handshake();
  }

  private static SSLHandshakeException handshakeFailure(Throwable cause) {
    SSLHandshakeException e = new SSLHandshakeException("handshake failed");
    e.initCause(cause);
    return e;
  }

  /** The value of the expiry gauge for one (destination, host), if exported. */
  private static Optional<Double> expiry(String scrape, String destination, String host) {
    String prefix = "egret_upstream_certificate_expiry_timestamp_seconds{destination=\""
        + destination + "\",host=\"" + host + "\"} ";
    return scrape.lines().filter(l -> l.startsWith(prefix))
        .map(l -> Double.parseDouble(l.substring(prefix.length()))).findFirst();
  }

  /** The distinct {@code le} values of one histogram, in the order exported. */
  private static List<String> bucketBounds(String scrape, String bucketName) {
    Pattern le = Pattern.compile("le=\"([^\"]+)\"");
    return scrape.lines().filter(l -> l.startsWith(bucketName + "{"))
        .map(le::matcher).filter(Matcher::find).map(m -> m.group(1))
        .map(v -> v.equals("5.0E-4") ? "0.0005" : v)
        .distinct().toList();
  }

  private static Optional<Path> promtool() {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      Path candidate = Path.of(dir, "promtool");
      if (Files.isExecutable(candidate)) {
        return Optional.of(candidate);
      }
    }
    return Optional.empty();
  }
}
