package dev.egret.telemetry;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.core.WireMockConfiguration.options;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.tuple;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.tomakehurst.wiremock.WireMockServer;
import dev.egret.config.ConfigCompiler;
import dev.egret.deploy.MetricNames;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.PrometheusText;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Observability end to end: one mixed run of real traffic through a real Egret (an upgrade to
 * WireMock over HTTPS, a CONNECT tunnel carrying a JDK client's TLS, a denied host, an upstream
 * with an expired certificate, a name that does not resolve, a request the strict parser
 * refuses, a good config reload and two refused ones), then assertions over what
 * Prometheus would scrape from the admin port and what the access log holds. Every test reads the
 * state that run left; none sends traffic of its own.
 */
class ObservedTrafficTest {
  private static final String API_HOST = "eu.api.test";
  private static final String TUNNEL_HOST = "tunnel.partner.test";
  private static final String EXPIRED_HOST = "expired.partner.test";
  /** Named by no rule: it must reach the access log and never a metric label. */
  private static final String DENIED_HOST = "exfil.attacker.test";
  /** Allowed by the wildcard rule, but in no hosts file: a DNS failure. */
  private static final String UNRESOLVABLE_HOST = "nowhere.api.test";
  /** Base64 of egret-user:hunter2, sent as Proxy-Authorization and never to be logged. */
  private static final String CREDENTIAL = "ZWdyZXQtdXNlcjpodW50ZXIy";
  private static final String QUERY_SECRET = "s3cret-query";
  private static final String REQUEST_BODY = "{\"amount\":42}";
  private static final String RESPONSE_BODY = "{\"order\":\"o-1\",\"state\":\"created\"}";
  private static final int HOPS = 6;
  private static final List<String> DOCUMENTED_FIELDS = List.of("time", "client", "method", "url",
      "kind", "destination", "outcome", "error", "status", "upstream", "tls_version",
      "tls_cipher", "dns_ms", "connect_ms", "handshake_ms", "first_byte_ms", "total_ms",
      "bytes_upstream", "bytes_downstream");

  @TempDir static Path dir;
  static TestCert apiLeaf;
  static WireMockServer partner;
  static TlsTestServer tunnelServer;
  static TlsTestServer expiredServer;
  static EgretFixture egret;

  // What the mixed run saw from the client side, for comparison with the telemetry.
  static String upgradeResponse;
  static String deniedResponse;
  static String expiredResponse;
  static String dnsFailureResponse;
  static String malformedResponse;
  static String tunnelProtocol;
  static String tunnelCipher;
  static String tunnelInside;
  static Throwable badReload;
  static Throwable missingReload;
  static String reloadedSha256;
  static PrometheusText metrics;
  static String scraped;
  static List<JsonNode> log;

  @BeforeAll
  static void mixedRun() throws Exception {
    TestCert root = TestPki.rootCa("Observed Test Root").issue();
    apiLeaf = root.leaf(API_HOST).issue();
    partner = new WireMockServer(options().bindAddress("127.0.0.1").httpDisabled(true)
        .dynamicHttpsPort()
        .keystorePath(apiLeaf.writePkcs12(dir).toString()).keystoreType("PKCS12")
        .keystorePassword(TestCert.PASSWORD).keyManagerPassword(TestCert.PASSWORD));
    partner.start();
    partner.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(201)
        .withHeader("Content-Type", "application/json").withBody(RESPONSE_BODY)));
    tunnelServer = TlsTestServer.https(root.leaf(TUNNEL_HOST).issue()).name("tunnel").start();
    expiredServer = TlsTestServer.https(root.leaf(EXPIRED_HOST).expired().issue())
        .name("expired").start();
    Path rootPem = root.writePem(dir).cert();
    egret = EgretFixture.builder().observed().hosts(Map.of(API_HOST, "127.0.0.1",
        TUNNEL_HOST, "127.0.0.1", EXPIRED_HOST, "127.0.0.1", DENIED_HOST, "127.0.0.1"))
        .start(dir, config(rootPem, ""));

    upgradeResponse = exchange("POST http://" + API_HOST + ":" + partner.httpsPort()
        + "/v1/orders?token=" + QUERY_SECRET + " HTTP/1.1\r\n"
        + "Host: " + API_HOST + ":" + partner.httpsPort() + "\r\n"
        + "Proxy-Authorization: Basic " + CREDENTIAL + "\r\n"
        + "Content-Type: application/json\r\n"
        + "Content-Length: " + REQUEST_BODY.length() + "\r\n"
        + "Connection: close\r\n\r\n" + REQUEST_BODY);
    tunnel(root);
    deniedResponse = exchange("GET http://" + DENIED_HOST + "/upload?key=" + QUERY_SECRET
        + " HTTP/1.1\r\nHost: " + DENIED_HOST + "\r\n"
        + "Proxy-Authorization: Basic " + CREDENTIAL + "\r\nConnection: close\r\n\r\n");
    expiredResponse = exchange("GET http://" + EXPIRED_HOST + ":" + expiredServer.port()
        + "/status?token=" + QUERY_SECRET + " HTTP/1.1\r\nHost: " + EXPIRED_HOST + ":"
        + expiredServer.port() + "\r\nConnection: close\r\n\r\n");
    dnsFailureResponse = exchange("GET http://" + UNRESOLVABLE_HOST + ":" + partner.httpsPort()
        + "/v1/orders HTTP/1.1\r\nHost: " + UNRESOLVABLE_HOST + ":" + partner.httpsPort()
        + "\r\nConnection: close\r\n\r\n");
    // Refused by the strict parser before Vert.x sees a request: a hop that skips Front.
    malformedResponse = exchange("POST http://" + API_HOST + ":" + partner.httpsPort()
        + "/v1/orders?token=" + QUERY_SECRET + " HTTP/1.1\r\nHost: " + API_HOST + ":"
        + partner.httpsPort() + "\r\nProxy-Authorization: Basic " + CREDENTIAL
        + "\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");

    // A good edit (one more rule) is served; a bad one, and then a missing file, are refused
    // and the good one stays.
    String edited = config(rootPem, "  - host: later.partner.test\n");
    Files.writeString(egret.configFile(), edited);
    egret.server().reload().await(20, TimeUnit.SECONDS);
    reloadedSha256 = ConfigCompiler.sha256(edited.getBytes(StandardCharsets.UTF_8));
    Files.writeString(egret.configFile(), edited.replace("version: 1", "version: 1\nmode: loud"));
    badReload = catchThrowable(() -> egret.server().reload().await(20, TimeUnit.SECONDS));
    Files.delete(egret.configFile());
    missingReload = catchThrowable(() -> egret.server().reload().await(20, TimeUnit.SECONDS));

    // Meters are updated before a hop's line is queued, so once every hop has its line the
    // scrape sees every hop too, the tunnel's close included.
    ObjectMapper json = new ObjectMapper();
    log = new ArrayList<>();
    for (String line : egret.awaitLogLines(HOPS)) {
      log.add(json.readTree(line));
    }
    String scrape = egret.scrape();
    scraped = scrape;
    metrics = PrometheusText.parse(scrape);
    if (Files.isDirectory(Path.of("target"))) {
      // Left for people and CI artefacts: what a dashboard would read after this run.
      Files.writeString(Path.of("target", "observed-traffic-metrics.txt"), scrape);
    }
  }

  private static String config(Path rootPem, String moreRules) {
    return """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: "**.api.test"
            ports: [%d]
          - host: %s
            ports: [%d]
          - host: %s
            ports: [%d]
        %s""".formatted(rootPem.getFileName(), partner.httpsPort(), TUNNEL_HOST,
        tunnelServer.port(), EXPIRED_HOST, expiredServer.port(), moreRules);
  }

  @AfterAll
  static void stop() {
    if (egret != null) {
      egret.close();
    }
    if (partner != null) {
      partner.stop();
    }
    if (tunnelServer != null) {
      tunnelServer.close();
    }
    if (expiredServer != null) {
      expiredServer.close();
    }
  }

  @Test
  void vertxsOwnHttpClientMetersAreOffAndEgretsDescribeTheUpstreamCalls() {
    // Telemetry costs (README): vertx_http_client_* repeated egret_upstream_* at 2-3% of CPU.
    assertThat(scraped).doesNotContain("vertx_http_client_")
        .contains("egret_upstream_connect_duration_seconds_count{")
        .contains("egret_upstream_tls_handshakes_total{");
  }

  @Test
  void theMixedRunGotTheAnswersItsTelemetryDescribes() {
    assertThat(upgradeResponse).startsWith("HTTP/1.1 201").contains(RESPONSE_BODY);
    assertThat(tunnelInside).startsWith("HTTP/1.1 200").contains("hello from tunnel");
    assertThat(deniedResponse).startsWith("HTTP/1.1 403").contains("error=http_request_denied");
    assertThat(expiredResponse).startsWith("HTTP/1.1 502").contains("error=tls_certificate_error");
    assertThat(dnsFailureResponse).startsWith("HTTP/1.1 502").contains("error=dns_error");
    assertThat(malformedResponse).startsWith("HTTP/1.1 400").contains("error=http_request_error");
    assertThat(badReload).isNotNull();
    assertThat(missingReload).isNotNull();
    assertThat(egret.server().config().sha256()).isEqualTo(reloadedSha256);
    assertThat(egret.server().config().allowlist().rules()).hasSize(4);
  }

  @Test
  void countsEachHopOnceByDestinationKindOutcomeAndError() {
    assertThat(metrics.named("egret_requests_total"))
        .extracting(PrometheusText.Sample::labels, PrometheusText.Sample::value)
        .containsExactlyInAnyOrder(
            tuple(requests("**.api.test", "upgrade", "allowed", "none"), 1.0),
            tuple(requests(TUNNEL_HOST, "tunnel", "allowed", "none"), 1.0),
            tuple(
                requests("denied", "upgrade", "denied", "http_request_denied"), 1.0),
            tuple(
                requests(EXPIRED_HOST, "upgrade", "failed", "tls_certificate_error"), 1.0),
            tuple(requests("**.api.test", "upgrade", "failed", "dns_error"), 1.0),
            tuple(requests("denied", "upgrade", "denied", "http_request_error"), 1.0));
  }

  private static Map<String, String> requests(String destination, String kind, String outcome,
      String error) {
    return Map.of("destination", destination, "kind", kind, "outcome", outcome, "error", error);
  }

  @Test
  void timesEveryHopByDestinationAndKind() {
    assertThat(metrics.named("egret_request_duration_seconds_count"))
        .extracting(PrometheusText.Sample::labels, PrometheusText.Sample::value)
        .containsExactlyInAnyOrder(
            tuple(
                Map.of("destination", "**.api.test", "kind", "upgrade"), 2.0),
            tuple(
                Map.of("destination", TUNNEL_HOST, "kind", "tunnel"), 1.0),
            tuple(Map.of("destination", "denied", "kind", "upgrade"), 2.0),
            tuple(
                Map.of("destination", EXPIRED_HOST, "kind", "upgrade"), 1.0));
    // The last bucket holds every hop: nothing took longer than the histogram reaches.
    assertThat(metrics.value("egret_request_duration_seconds_bucket",
        Map.of("destination", "denied", "kind", "upgrade", "le", "+Inf"))).hasValue(2.0);
  }

  @Test
  void timesUpstreamConnectsOfTheUpgradeAndTheTunnel() {
    assertThat(metrics.value("egret_upstream_connect_duration_seconds_count",
        Map.of("destination", "**.api.test"))).hasValue(1.0);
    assertThat(metrics.value("egret_upstream_connect_duration_seconds_count",
        Map.of("destination", TUNNEL_HOST))).hasValue(1.0);
    assertThat(metrics.value("egret_upstream_connect_duration_seconds_sum",
        Map.of("destination", "**.api.test")).orElse(-1)).isBetween(0.0, 5.0);
  }

  @Test
  void labelsUpstreamHandshakesWithVersionCipherAndResult() {
    JsonNode upgrade = line("**.api.test", "none");
    String cipher = upgrade.get("tls_cipher").asText();
    assertThat(cipher).matches("TLS_(AES|CHACHA20)_\\w+");
    assertThat(metrics.named("egret_upstream_tls_handshakes_total"))
        .extracting(PrometheusText.Sample::labels, PrometheusText.Sample::value)
        .containsExactlyInAnyOrder(
            tuple(Map.of("destination", "**.api.test",
                "version", "TLSv1.3", "cipher", cipher, "result", "ok"), 1.0),
            tuple(Map.of("destination", EXPIRED_HOST,
                "version", "unknown", "cipher", "unknown", "result", "certificate_error"), 1.0),
            // The tunnel's session as the gate saw it in the ServerHello.
            tuple(Map.of("destination", TUNNEL_HOST,
                "version", tunnelProtocol, "cipher", tunnelCipher, "result", "ok"), 1.0));
    assertThat(metrics.value("egret_upstream_tls_handshake_duration_seconds_count",
        Map.of("destination", "**.api.test", "version", "TLSv1.3"))).hasValue(1.0);
    assertThat(metrics.value("egret_upstream_tls_handshake_duration_seconds_count",
        Map.of("destination", EXPIRED_HOST, "version", "unknown"))).hasValue(1.0);
  }

  @Test
  void exportsTheVerifiedLeafsNotAfterAsTheExpiryGauge() {
    long notAfter = apiLeaf.certificate().getNotAfter().toInstant().getEpochSecond();
    // Only the verified upstream: the expired one failed, and a tunnel's TLS is the client's.
    assertThat(metrics.named("egret_upstream_certificate_expiry_timestamp_seconds"))
        .extracting(PrometheusText.Sample::labels, PrometheusText.Sample::value)
        .containsExactly(tuple(
            Map.of("destination", "**.api.test", "host", API_HOST), (double) notAfter));
  }

  @Test
  void countsBytesBothWaysForTheUpgradeAndTheTunnel() {
    assertThat(metrics.value("egret_bytes_total",
        Map.of("destination", "**.api.test", "direction", "upstream")))
        .hasValue((double) REQUEST_BODY.length());
    assertThat(metrics.value("egret_bytes_total",
        Map.of("destination", "**.api.test", "direction", "downstream")))
        .hasValue((double) RESPONSE_BODY.length());
    assertThat(metrics.value("egret_bytes_total",
        Map.of("destination", TUNNEL_HOST, "direction", "upstream")).orElse(-1)).isPositive();
    assertThat(metrics.value("egret_bytes_total",
        Map.of("destination", TUNNEL_HOST, "direction", "downstream")).orElse(-1)).isPositive();
    // A refused hop moved no payload and mints no bytes series.
    assertThat(metrics.labelSets("egret_bytes_total"))
        .noneMatch(l -> l.get("destination").equals("denied"));
  }

  @Test
  void bringsTheActiveTunnelGaugeBackToZero() {
    assertThat(metrics.value("egret_tunnels_active", Map.of())).hasValue(0.0);
  }

  @Test
  void countsReloadsAndExportsOnlyTheServedConfigHash() {
    assertThat(metrics.value("egret_config_reloads_total", Map.of("result", "success")))
        .hasValue(1.0);
    // One file that does not compile, then no file at all: both refused, both counted.
    assertThat(metrics.value("egret_config_reloads_total", Map.of("result", "failure")))
        .hasValue(2.0);
    assertThat(metrics.named("egret_config_info"))
        .extracting(PrometheusText.Sample::labels, PrometheusText.Sample::value)
        .containsExactly(tuple(
            Map.of("sha256", reloadedSha256), 1.0));
  }

  @Test
  void keepsTheDeniedHostNameOutOfEveryLabel() {
    assertThat(metrics.allLabelValues()).isNotEmpty()
        .noneMatch(v -> v.contains("exfil") || v.contains("attacker"));
    assertThat(line("denied", "http_request_denied").get("host").asText()).isEqualTo(DENIED_HOST);
  }

  @Test
  void exportsEveryEgretFamilyTheDashboardQueries() {
    SortedSet<String> queried = MetricNames.referencedBy(
        MetricNames.repoFile("deploy/grafana/egret.json"));
    assertThat(queried).isNotEmpty();
    // This Egret is a sidecar: the gateway's families are not registered here.
    queried.removeAll(MetricNames.GATEWAY_ONLY);
    assertThat(metrics.families()).containsAll(queried);
  }

  @Test
  void exportsEveryEgretFamilyTheAlertRulesQuery() {
    SortedSet<String> queried = MetricNames.referencedBy(
        MetricNames.repoFile("deploy/prometheus/egret-alerts.yaml"));
    assertThat(queried).isNotEmpty();
    queried.removeAll(MetricNames.GATEWAY_ONLY);
    assertThat(metrics.families()).containsAll(queried);
  }

  @Test
  void writesOneJsonLinePerHopWithEverySpecField() throws Exception {
    assertThat(egret.logLines()).hasSize(HOPS);
    assertThat(log).extracting(l -> l.get("destination").asText() + " " + l.get("error").asText())
        .containsExactlyInAnyOrder("**.api.test none", TUNNEL_HOST + " none",
            "denied http_request_denied", EXPIRED_HOST + " tls_certificate_error",
            "**.api.test dns_error", "denied http_request_error");
    for (JsonNode l : log) {
      assertThat(l.fieldNames()).toIterable().as(l.toString()).containsAll(DOCUMENTED_FIELDS);
      assertThat(Instant.parse(l.get("time").asText())).isBefore(Instant.now());
      assertThat(l.get("client").asText()).matches("127\\.0\\.0\\.1:\\d+");
      assertThat(l.get("total_ms").isNumber()).as(l.toString()).isTrue();
      // The line's labels are the metric's labels, so a log query and a graph agree.
      assertThat(metrics.value("egret_requests_total", requests(l.get("destination").asText(),
          l.get("kind").asText(), l.get("outcome").asText(), l.get("error").asText())))
          .as(l.toString()).hasValue(1.0);
    }
  }

  @Test
  void logsTheUpgradeWithItsTlsTimingsAndBytes() {
    JsonNode l = line("**.api.test", "none");
    assertThat(l.get("method").asText()).isEqualTo("POST");
    assertThat(l.get("url").asText())
        .isEqualTo("http://" + API_HOST + ":" + partner.httpsPort() + "/v1/orders");
    assertThat(l.get("kind").asText()).isEqualTo("upgrade");
    assertThat(l.get("host").asText()).isEqualTo(API_HOST);
    assertThat(l.get("outcome").asText()).isEqualTo("allowed");
    assertThat(l.get("error").asText()).isEqualTo("none");
    assertThat(l.get("status").asInt()).isEqualTo(201);
    assertThat(l.get("upstream").asText()).isEqualTo("127.0.0.1:" + partner.httpsPort());
    assertThat(l.get("tls_version").asText()).isEqualTo("TLSv1.3");
    assertTimings(l, "dns_ms", "connect_ms", "handshake_ms", "first_byte_ms", "total_ms");
    assertThat(l.get("first_byte_ms").asDouble()).isLessThanOrEqualTo(l.get("total_ms").asDouble());
    assertThat(l.get("bytes_upstream").asLong()).isEqualTo(REQUEST_BODY.length());
    assertThat(l.get("bytes_downstream").asLong()).isEqualTo(RESPONSE_BODY.length());
  }

  @Test
  void logsTheTunnelWithTheTlsItCarried() {
    JsonNode l = line(TUNNEL_HOST, "none");
    assertThat(l.get("method").asText()).isEqualTo("CONNECT");
    assertThat(l.get("url").asText()).isEqualTo(TUNNEL_HOST + ":" + tunnelServer.port());
    assertThat(l.get("kind").asText()).isEqualTo("tunnel");
    assertThat(l.get("outcome").asText()).isEqualTo("allowed");
    assertThat(l.get("status").asInt()).isEqualTo(200);
    assertThat(l.get("upstream").asText()).isEqualTo("127.0.0.1:" + tunnelServer.port());
    assertThat(l.get("tls_version").asText()).isEqualTo(tunnelProtocol);
    assertThat(l.get("tls_cipher").asText()).isEqualTo(tunnelCipher);
    assertTimings(l, "dns_ms", "connect_ms", "handshake_ms", "first_byte_ms", "total_ms");
    assertThat(l.get("bytes_upstream").asLong()).isPositive();
    assertThat(l.get("bytes_downstream").asLong()).isPositive();
  }

  @Test
  void logsTheDenialWithItsHostButNoUpstream() {
    JsonNode l = line("denied", "http_request_denied");
    assertThat(l.get("url").asText()).isEqualTo("http://" + DENIED_HOST + "/upload");
    assertThat(l.get("outcome").asText()).isEqualTo("denied");
    assertThat(l.get("error").asText()).isEqualTo("http_request_denied");
    assertThat(l.get("status").asInt()).isEqualTo(403);
    assertThat(l.get("upstream").isNull()).isTrue();
    assertThat(l.get("dns_ms").isNull()).isTrue();
    assertThat(l.get("tls_version").isNull()).isTrue();
    assertThat(l.get("bytes_upstream").asLong()).isZero();
  }

  @Test
  void logsTheTlsFailureAgainstTheAddressItReached() {
    JsonNode l = line(EXPIRED_HOST, "tls_certificate_error");
    assertThat(l.get("url").asText())
        .isEqualTo("http://" + EXPIRED_HOST + ":" + expiredServer.port() + "/status");
    assertThat(l.get("outcome").asText()).isEqualTo("failed");
    assertThat(l.get("error").asText()).isEqualTo("tls_certificate_error");
    assertThat(l.get("status").asInt()).isEqualTo(502);
    assertThat(l.get("upstream").asText()).isEqualTo("127.0.0.1:" + expiredServer.port());
    assertTimings(l, "dns_ms", "total_ms");
    assertThat(l.get("details").asText()).contains(EXPIRED_HOST);
  }

  @Test
  void logsADnsFailureWithTheTimeResolutionTook() {
    JsonNode l = line("**.api.test", "dns_error");
    assertThat(l.get("host").asText()).isEqualTo(UNRESOLVABLE_HOST);
    assertThat(l.get("outcome").asText()).isEqualTo("failed");
    assertThat(l.get("status").asInt()).isEqualTo(502);
    assertThat(l.get("upstream").isNull()).isTrue();
    assertTimings(l, "dns_ms", "total_ms");
    assertThat(l.get("connect_ms").isNull()).isTrue();
  }

  @Test
  void logsARequestRefusedBeforeParsingWithTheClientItCameFrom() {
    JsonNode l = line("denied", "http_request_error");
    assertThat(l.get("status").asInt()).isEqualTo(400);
    assertThat(l.get("outcome").asText()).isEqualTo("denied");
    assertThat(l.get("client").asText()).matches("127\\.0\\.0\\.1:\\d+");
    assertThat(l.get("details").asText()).containsIgnoringCase("Transfer-Encoding");
  }

  @Test
  void neverLogsQueryStringsOrProxyCredentials() {
    String all = String.join("\n", egret.logLines());
    assertThat(all).doesNotContain(QUERY_SECRET).doesNotContain("token=").doesNotContain("?")
        .doesNotContain(CREDENTIAL).doesNotContain("hunter2").doesNotContain("Basic");
  }

  private static void assertTimings(JsonNode line, String... fields) {
    for (String f : fields) {
      assertThat(line.get(f).isNumber()).as(f + " in " + line).isTrue();
      assertThat(line.get(f).asDouble()).as(f).isBetween(0.0, 30_000.0);
    }
  }

  /** The access-log line of the hop with this destination and error label. */
  private static JsonNode line(String destination, String error) {
    return log.stream().filter(l -> l.get("destination").asText().equals(destination)
            && l.get("error").asText().equals(error))
        .findFirst().orElseThrow(() -> new AssertionError(
            "no line for " + destination + " " + error + ": " + log));
  }

  /**
   * CONNECT, then a TLS handshake through the tunnel with the JDK's client (trusting the test root
   * and checking the host name), one request inside, and the server's close ending the tunnel.
   */
  private static void tunnel(TestCert root) throws IOException {
    String authority = TUNNEL_HOST + ":" + tunnelServer.port();
    try (Socket s = new Socket("127.0.0.1", egret.proxyPort())) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write(("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority
          + "\r\nProxy-Authorization: Basic " + CREDENTIAL + "\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      String head = readHead(s.getInputStream());
      assertThat(head).startsWith("HTTP/1.1 200");
      SSLSocket tls = (SSLSocket) root.clientContext().getSocketFactory()
          .createSocket(s, TUNNEL_HOST, tunnelServer.port(), true);
      SSLParameters params = tls.getSSLParameters();
      params.setEndpointIdentificationAlgorithm("HTTPS");
      tls.setSSLParameters(params);
      tls.startHandshake();
      tunnelProtocol = tls.getSession().getProtocol();
      tunnelCipher = tls.getSession().getCipherSuite();
      tls.getOutputStream().write(("GET /inside?token=" + QUERY_SECRET + " HTTP/1.1\r\nHost: "
          + TUNNEL_HOST + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
      tunnelInside = new String(readAll(tls.getInputStream()), StandardCharsets.ISO_8859_1);
    }
  }

  /** Reads a response head byte by byte, so that no byte after it is consumed. */
  private static String readHead(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    while (!head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
      int b = in.read();
      if (b < 0) {
        break;
      }
      head.write(b);
    }
    return head.toString(StandardCharsets.ISO_8859_1);
  }

  /** Sends one request with {@code Connection: close} and reads the answer until Egret closes. */
  private static String exchange(String request) throws IOException {
    try (Socket s = new Socket("127.0.0.1", egret.proxyPort())) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write(request.getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      return new String(readAll(s.getInputStream()), StandardCharsets.ISO_8859_1);
    }
  }

  private static byte[] readAll(InputStream in) throws IOException {
    ByteArrayOutputStream got = new ByteArrayOutputStream();
    byte[] buf = new byte[8192];
    try {
      for (int n; (n = in.read(buf)) > 0; ) {
        got.write(buf, 0, n);
      }
    } catch (java.net.SocketTimeoutException | javax.net.ssl.SSLException e) {
      // Return what arrived; the assertions say what was missing.
    }
    return got.toByteArray();
  }
}
