package dev.egret.trace;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.urlPathEqualTo;
import static com.github.tomakehurst.wiremock.core.WireMockConfiguration.options;
import static org.assertj.core.api.Assertions.assertThat;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.trace.v1.Span;
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Traces end to end: a client calls through Egret with its own trace headers, WireMock over
 * HTTPS plays the third party and records what it was sent, and an in-process OTLP receiver
 * decodes what Egret exports.
 */
class TracingTest {
  private static final String API = "api.partner.test";
  private static final String TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  private static final String PARENT = "00f067aa0ba902b7";
  private static final String TRACEPARENT = "00-" + TRACE + "-" + PARENT + "-01";
  private static final String SECRET = "sk-query-secret-93f1";
  private static final String HEADER_SECRET = "hdr-secret-5a7e21";
  private static final Duration DEADLINE = Duration.ofSeconds(20);

  @TempDir static Path dir;
  static TestCert root;
  static WireMockServer partner;
  static String rootPem;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Tracing Root").issue();
    TestCert leaf = root.leaf(API).dns(API).issue();
    partner = new WireMockServer(options().bindAddress("127.0.0.1").httpDisabled(true)
        .dynamicHttpsPort()
        .keystorePath(leaf.writePkcs12(dir).toString()).keystoreType("PKCS12")
        .keystorePassword(TestCert.PASSWORD).keyManagerPassword(TestCert.PASSWORD));
    partner.start();
    rootPem = root.writePem(dir).cert().getFileName().toString();
  }

  @AfterAll
  static void stop() {
    partner.stop();
  }

  @BeforeEach
  void stub() {
    partner.resetAll();
    partner.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withBody("ok")));
  }

  private static String config(String tracing) {
    return """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d]
            tunnel: allow
        %s
        """.formatted(rootPem, API, partner.httpsPort(), tracing);
  }

  private static String tracing(OtlpReceiver otlp, String more) {
    return "tracing: {exporter: otlp, endpoint: \"" + otlp.endpoint() + "\"" + more + "}";
  }

  private static Map<String, String> hosts() {
    return Map.of(API, "127.0.0.1");
  }

  private static HttpResponse<String> get(EgretFixture egret, String path, String... headers)
      throws Exception {
    HttpClient client = HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", egret.proxyPort())))
        .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
    HttpRequest.Builder r = HttpRequest.newBuilder(
        URI.create("http://" + API + ":" + partner.httpsPort() + path)).timeout(DEADLINE);
    if (headers.length > 0) {
      r.headers(headers);
    }
    return client.send(r.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static LoggedRequest seen(String path) {
    return partner.findAll(anyRequestedFor(urlPathEqualTo(path))).get(0);
  }

  private static Span kind(List<Span> spans, Span.SpanKind kind) {
    return spans.stream().filter(s -> s.getKind() == kind).findFirst().orElseThrow(
        () -> new AssertionError("no " + kind + " span among " + spans));
  }

  private static String hex(com.google.protobuf.ByteString b) {
    return HexFormat.of().formatHex(b.toByteArray());
  }

  private static Optional<Object> attr(Span span, String key) {
    for (KeyValue kv : span.getAttributesList()) {
      if (kv.getKey().equals(key)) {
        var v = kv.getValue();
        return Optional.of(switch (v.getValueCase()) {
          case STRING_VALUE -> v.getStringValue();
          case INT_VALUE -> v.getIntValue();
          case DOUBLE_VALUE -> v.getDoubleValue();
          case BOOL_VALUE -> v.getBoolValue();
          default -> v.toString();
        });
      }
    }
    return Optional.empty();
  }

  @Test
  void offByDefaultTheClientsTraceHeadersGoUpstreamUnchangedAndNothingIsExported()
      throws Exception {
    try (OtlpReceiver otlp = new OtlpReceiver();
        EgretFixture egret = EgretFixture.builder().observed().hosts(hosts())
            .start(dir, config(""))) {
      HttpResponse<String> r = get(egret, "/off", "traceparent", TRACEPARENT,
          "tracestate", "vendor=internal", "X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793");
      assertThat(r.statusCode()).isEqualTo(200);
      LoggedRequest up = seen("/off");
      assertThat(up.getHeader("traceparent")).isEqualTo(TRACEPARENT);
      assertThat(up.getHeader("tracestate")).isEqualTo("vendor=internal");
      assertThat(up.getHeader("X-Amzn-Trace-Id")).isEqualTo("Root=1-5759e988-bd862e3fe1be46a994272793");
      assertThat(dropped(egret, "export_failed") + dropped(egret, "queue_full")
          + dropped(egret, "rate_limited")).isZero();
      assertThat(otlp.requests()).isZero();
    }
  }

  @Test
  void anUpgradeIsAServerSpanWithAClientChildAndPropagateSendsTheClientSpanUpstream()
      throws Exception {
    try (OtlpReceiver otlp = new OtlpReceiver();
        EgretFixture egret = EgretFixture.builder().observed().hosts(hosts()).start(dir,
            config(tracing(otlp, ", propagate: propagate")))) {
      HttpResponse<String> r = get(egret, "/v1/orders?key=" + SECRET, "traceparent", TRACEPARENT,
          "tracestate", "vendor=internal", "X-Secret", HEADER_SECRET);
      assertThat(r.statusCode()).isEqualTo(200);

      List<Span> spans = otlp.awaitSpans(2, DEADLINE);
      assertThat(spans).hasSize(2);
      Span server = kind(spans, Span.SpanKind.SPAN_KIND_SERVER);
      Span client = kind(spans, Span.SpanKind.SPAN_KIND_CLIENT);
      assertThat(server.getName()).isEqualTo("GET");
      assertThat(hex(server.getTraceId())).isEqualTo(TRACE);
      assertThat(hex(server.getParentSpanId())).isEqualTo(PARENT);
      assertThat(hex(client.getTraceId())).isEqualTo(TRACE);
      assertThat(hex(client.getParentSpanId())).isEqualTo(hex(server.getSpanId()));

      assertThat(attr(server, "http.request.method")).contains("GET");
      assertThat(attr(server, "server.address")).contains(API);
      assertThat(attr(server, "server.port")).contains((long) partner.httpsPort());
      assertThat(attr(server, "http.response.status_code")).contains(200L);
      assertThat(attr(server, "egret.destination")).contains(API);
      assertThat(attr(server, "egret.kind")).contains("upgrade");
      assertThat(attr(server, "egret.outcome")).contains("allowed");
      assertThat(attr(server, "error.type")).isEmpty();
      assertThat(attr(client, "network.peer.address")).contains("127.0.0.1");
      assertThat(attr(client, "tls.protocol.version")).contains("1.3");
      assertThat(attr(client, "tls.cipher")).hasValueSatisfying(
          c -> assertThat((String) c).startsWith("TLS_"));
      assertThat(attr(client, "egret.handshake_ms")).isPresent();

      // The third party sees the CLIENT span as the parent, in the client's trace; no tracestate.
      LoggedRequest up = seen("/v1/orders");
      assertThat(up.getHeader("traceparent"))
          .isEqualTo("00-" + TRACE + "-" + hex(client.getSpanId()) + "-01");
      assertThat(up.containsHeader("tracestate")).isFalse();

      // Nothing of the query string or of header values is exported.
      for (byte[] body : otlp.bodies()) {
        String text = new String(body, StandardCharsets.ISO_8859_1);
        assertThat(text).doesNotContain(SECRET).doesNotContain(HEADER_SECRET)
            .doesNotContain("vendor=internal");
      }
    }
  }

  @Test
  void passthroughForwardsTheClientsTraceHeadersUnchanged() throws Exception {
    try (OtlpReceiver otlp = new OtlpReceiver();
        EgretFixture egret = EgretFixture.builder().observed().hosts(hosts()).start(dir,
            config(tracing(otlp, ", propagate: passthrough")))) {
      assertThat(get(egret, "/pass", "traceparent", TRACEPARENT, "tracestate", "vendor=x")
          .statusCode()).isEqualTo(200);
      LoggedRequest up = seen("/pass");
      assertThat(up.getHeader("traceparent")).isEqualTo(TRACEPARENT);
      assertThat(up.getHeader("tracestate")).isEqualTo("vendor=x");
      Span server = kind(otlp.awaitSpans(2, DEADLINE), Span.SpanKind.SPAN_KIND_SERVER);
      assertThat(hex(server.getParentSpanId())).isEqualTo(PARENT);
    }
  }

  @Test
  void restartSendsANewTraceLinkedFromTheClientSpanAndNoInternalTraceIdLeaves()
      throws Exception {
    String xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    try (OtlpReceiver otlp = new OtlpReceiver();
        EgretFixture egret = EgretFixture.builder().observed().hosts(hosts()).start(dir,
            config(tracing(otlp, ", propagate: restart, xray: true")))) {
      assertThat(get(egret, "/restart", "X-Amzn-Trace-Id", xray, "tracestate", "vendor=x")
          .statusCode()).isEqualTo(200);
      List<Span> spans = otlp.awaitSpans(2, DEADLINE);
      Span server = kind(spans, Span.SpanKind.SPAN_KIND_SERVER);
      Span client = kind(spans, Span.SpanKind.SPAN_KIND_CLIENT);
      // The X-Ray header parented the hop (converted to a W3C trace id).
      assertThat(hex(server.getTraceId())).isEqualTo("5759e988bd862e3fe1be46a994272793");
      assertThat(hex(server.getParentSpanId())).isEqualTo("53995c3f42cd8ad8");

      LoggedRequest up = seen("/restart");
      String sent = up.getHeader("traceparent");
      assertThat(sent).matches("00-[0-9a-f]{32}-[0-9a-f]{16}-01")
          .doesNotContain("5759e988bd862e3fe1be46a994272793");
      String newTrace = sent.substring(3, 35);
      String newSpan = sent.substring(36, 52);
      assertThat(up.getHeader("X-Amzn-Trace-Id")).isEqualTo("Root=1-" + newTrace.substring(0, 8)
          + "-" + newTrace.substring(8) + ";Parent=" + newSpan + ";Sampled=1");
      assertThat(up.containsHeader("tracestate")).isFalse();
      assertThat(client.getLinksList()).singleElement().satisfies(l -> {
        assertThat(hex(l.getTraceId())).isEqualTo(newTrace);
        assertThat(hex(l.getSpanId())).isEqualTo(newSpan);
      });
    }
  }

  @Test
  void anUnsampledRootExportsNothingButStillPropagatesAnUnsampledParent() throws Exception {
    try (OtlpReceiver otlp = new OtlpReceiver();
        EgretFixture egret = EgretFixture.builder().observed().hosts(hosts()).start(dir,
            config(tracing(otlp, ", propagate: propagate, sampleRatio: 0")))) {
      assertThat(get(egret, "/unsampled").statusCode()).isEqualTo(200);
      assertThat(seen("/unsampled").getHeader("traceparent"))
          .matches("00-[0-9a-f]{32}-[0-9a-f]{16}-0[02]"); // 02: the random trace-id flag
      // A sampled hop after it is exported; the unsampled one before it never is.
      assertThat(get(egret, "/sampled", "traceparent", TRACEPARENT).statusCode()).isEqualTo(200);
      List<Span> spans = otlp.awaitSpans(2, DEADLINE);
      assertThat(spans).hasSize(2).allSatisfy(s -> assertThat(hex(s.getTraceId())).isEqualTo(TRACE));
    }
  }

  @Test
  void aTunnelIsAConnectSpanAndADeniedHopCarriesItsErrorType() throws Exception {
    try (OtlpReceiver otlp = new OtlpReceiver();
        EgretFixture egret = EgretFixture.builder().observed().hosts(hosts())
            .start(dir, config(tracing(otlp, ", sampleRatio: 1")))) {
      assertThat(throughTunnel(egret.proxyPort(), "/tunnelled")).startsWith("HTTP/1.1 200");
      HttpResponse<String> denied = HttpClient.newBuilder()
          .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", egret.proxyPort())))
          .build().send(HttpRequest.newBuilder(URI.create("http://denied.example:80/x"))
              .timeout(DEADLINE).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(denied.statusCode()).isEqualTo(403);

      List<Span> spans = otlp.awaitSpans(2, DEADLINE);
      assertThat(spans).anySatisfy(s -> {
        assertThat(s.getName()).isEqualTo("CONNECT");
        assertThat(s.getKind()).isEqualTo(Span.SpanKind.SPAN_KIND_SERVER);
        assertThat(attr(s, "egret.kind")).contains("tunnel");
      });
      assertThat(spans).anySatisfy(s -> {
        assertThat(attr(s, "egret.outcome")).contains("denied");
        assertThat(attr(s, "error.type")).contains("http_request_denied");
        assertThat(attr(s, "http.response.status_code")).contains(403L);
        assertThat(attr(s, "egret.destination")).contains("denied");
      });
    }
  }

  @Test
  void aCollectorThatRefusesLosesSpansCountedAndNothingElse() throws Exception {
    try (OtlpReceiver otlp = new OtlpReceiver();
        EgretFixture egret = EgretFixture.builder().observed().hosts(hosts())
            .start(dir, config(tracing(otlp, ", sampleRatio: 1")))) {
      otlp.behave(OtlpReceiver.Behaviour.REFUSE);
      for (int i = 0; i < 5; i++) {
        assertThat(get(egret, "/refused-" + i).statusCode()).isEqualTo(200);
      }
      egret.server().flushTraces(DEADLINE);
      assertThat(dropped(egret, "export_failed")).isGreaterThanOrEqualTo(10.0);
    }
  }

  @Test
  void aCollectorThatHangsDelaysNoRequest() throws Exception {
    try (OtlpReceiver otlp = new OtlpReceiver();
        EgretFixture egret = EgretFixture.builder().observed().hosts(hosts())
            .start(dir, config(tracing(otlp, ", sampleRatio: 1")))) {
      otlp.behave(OtlpReceiver.Behaviour.HANG);
      for (int i = 0; i < 5; i++) {
        long t = System.nanoTime();
        assertThat(get(egret, "/hang-" + i).statusCode()).isEqualTo(200);
        assertThat(Duration.ofNanos(System.nanoTime() - t)).isLessThan(Duration.ofSeconds(4));
      }
      // The export times out (5 s) and its spans are counted as lost.
      egret.server().flushTraces(DEADLINE);
      assertThat(dropped(egret, "export_failed")).isGreaterThanOrEqualTo(1.0);
    }
  }

  /** CONNECT, then TLS to the partner inside the tunnel, one request, and close both. */
  private static String throughTunnel(int proxyPort, String path) throws Exception {
    String authority = API + ":" + partner.httpsPort();
    try (java.net.Socket s = new java.net.Socket("127.0.0.1", proxyPort)) {
      s.setSoTimeout(20_000);
      s.getOutputStream().write(("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority
          + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      StringBuilder head = new StringBuilder();
      while (!head.toString().endsWith("\r\n\r\n")) {
        int b = s.getInputStream().read();
        if (b < 0) {
          break;
        }
        head.append((char) b);
      }
      assertThat(head.toString()).startsWith("HTTP/1.1 200");
      try (javax.net.ssl.SSLSocket tls = (javax.net.ssl.SSLSocket) root.clientContext()
          .getSocketFactory().createSocket(s, API, partner.httpsPort(), true)) {
        tls.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nHost: " + authority
            + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        return new String(tls.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      }
    }
  }

  private static double dropped(EgretFixture egret, String reason) throws Exception {
    String prefix = "egret_trace_spans_dropped_total{reason=\"" + reason + "\"";
    return egret.scrape().lines().filter(l -> l.startsWith(prefix))
        .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }
}
