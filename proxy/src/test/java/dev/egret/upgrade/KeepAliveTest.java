package dev.egret.upgrade;

import dev.egret.testing.EgretFixture;
import dev.egret.upstream.UpstreamClient;
import dev.egret.testing.RecordingTelemetry;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.telemetry.Hop;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Connections stay open and stay in step: upstream TLS connections are pooled and reused, and
 * responses that carry no body (to HEAD, 204, 304) leave both the client's connection and the
 * upstream's ready for the next request. Each test gets a fresh Egret and partner, so connection
 * counts start at zero.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class KeepAliveTest {
  private static final String HOST = "api.partner.test";
  @TempDir Path dir;
  PartnerApi partner;
  RecordingTelemetry seen;
  EgretFixture egret;

  @BeforeEach
  void start() throws Exception {
    TestCert root = TestPki.rootCa("Keep-Alive Test Root").issue();
    partner = PartnerApi.start(root.leaf(HOST).issue(), dir);
    seen = new RecordingTelemetry();
    egret = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1")).telemetry(seen).start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d]
        """.formatted(root.writePem(dir).cert().getFileName(), HOST, partner.port()));
  }

  @AfterEach
  void stop() throws Exception {
    egret.close();
    partner.close();
  }

  private String url(String path) {
    return "http://" + HOST + ":" + partner.port() + path;
  }

  private Hop hopFor(String path) throws InterruptedException {
    return seen.awaitHop(h -> h.url != null && h.url.endsWith(path), Duration.ofSeconds(10));
  }

  @Test
  void reusesOneUpstreamTlsConnectionForSequentialRequests() throws Exception {
    HttpClient client = egret.client();
    for (String path : new String[] {"/bytes/1000", "/bytes/2000"}) {
      HttpResponse<byte[]> r = client.send(HttpRequest.newBuilder(URI.create(url(path))).build(),
          HttpResponse.BodyHandlers.ofByteArray());
      assertThat(r.statusCode()).isEqualTo(200);
      assertThat(r.body()).hasSize(Integer.parseInt(path.substring(7)));
    }
    assertThat(partner.connections()).isEqualTo(1);
    assertThat(seen.handshakes()).isEqualTo(1);
    Hop first = hopFor("/bytes/1000");
    Hop second = hopFor("/bytes/2000");
    assertThat(first.handshakeNanos).isNotNegative();
    assertThat(first.tlsVersion).startsWith("TLSv1.");
    // A reused connection has no connect or handshake of its own to report.
    assertThat(second.handshakeNanos).isEqualTo(-1);
    assertThat(second.connectNanos).isEqualTo(-1);
    assertThat(second.tlsVersion).isEqualTo(first.tlsVersion);
  }

  @Test
  void reusesTheUpstreamConnectionAcrossDownstreamConnections() throws Exception {
    // Separate clients, separate downstream connections: the pool is Egret's, not the client's.
    // Egret pools per event loop (UpstreamClient: a request and its upstream connection share
    // a thread, as Envoy's per-worker pools do), and downstream connections are spread over the
    // loops; so many sequential downstream connections open at most one upstream per loop.
    int loops = io.vertx.core.VertxOptions.DEFAULT_EVENT_LOOP_POOL_SIZE;
    int requests = 3 * loops;
    for (int i = 0; i < requests; i++) {
      HttpResponse<String> r = egret.client().send(
          HttpRequest.newBuilder(URI.create(url("/status/204"))).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).isEqualTo(204);
    }
    assertThat(partner.connections()).isBetween(1, loops);
  }

  @Test
  void bodilessResponsesKeepBothConnectionsInStep() throws Exception {
    try (Socket s = new Socket("127.0.0.1", egret.proxyPort())) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      InputStream in = s.getInputStream();

      send(out, "HEAD", "/bytes/5000");
      RawResponse head = RawResponse.read(in, true);
      assertThat(head.status()).isEqualTo(200);
      assertThat(head.header("content-length")).isEqualTo("5000");

      send(out, "GET", "/status/204");
      RawResponse noContent = RawResponse.read(in, false);
      assertThat(noContent.status()).isEqualTo(204);
      // RFC 9110 section 8.6: no Content-Length (nor chunking) on a 204.
      assertThat(noContent.header("content-length")).isNull();
      assertThat(noContent.header("transfer-encoding")).isNull();

      send(out, "GET", "/status/304");
      RawResponse notModified = RawResponse.read(in, false);
      assertThat(notModified.status()).isEqualTo(304);
      assertThat(notModified.header("etag")).isEqualTo("\"v1\"");
      assertThat(notModified.header("transfer-encoding")).isNull();

      // Had any of those carried a stray body byte, this response would not parse.
      send(out, "GET", "/bytes/10");
      RawResponse after = RawResponse.read(in, false);
      assertThat(after.status()).isEqualTo(200);
      assertThat(after.bodyBytes()).hasSize(10);
      assertThat(in.available()).isZero();
    }
    assertThat(partner.requests()).containsExactly("HEAD /bytes/5000", "GET /status/204",
        "GET /status/304", "GET /bytes/10");
    assertThat(partner.connections()).isEqualTo(1);
  }

  private void send(OutputStream out, String method, String path) throws Exception {
    out.write((method + " " + url(path) + " HTTP/1.1\r\nHost: " + HOST + ":" + partner.port()
        + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
    out.flush();
  }

  @Test
  void endsABodyOfUnknownLengthByClosingForAnHttp10Client() throws Exception {
    // The upstream answers chunked; an HTTP/1.0 client cannot read chunked framing, so Egret
    // sends the body unframed and closes, as RFC 9112 section 6.3 has the client expect.
    try (Socket s = new Socket("127.0.0.1", egret.proxyPort())) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write(("GET " + url("/bytes/3000?chunked") + " HTTP/1.0\r\nHost: "
          + HOST + ":" + partner.port() + "\r\nConnection: keep-alive\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      s.getOutputStream().flush();
      byte[] all = s.getInputStream().readAllBytes(); // returns only once Egret closes
      String text = new String(all, StandardCharsets.ISO_8859_1);
      int end = text.indexOf("\r\n\r\n");
      assertThat(text).startsWith("HTTP/1.0 200");
      assertThat(text.substring(0, end).toLowerCase()).doesNotContain("transfer-encoding")
          .doesNotContain("content-length");
      assertThat(all.length - end - 4).isEqualTo(3000);
    }
  }

  @Test
  void closesADownstreamConnectionIdleForTimeoutsIdleAfterARelayedResponse() throws Exception {
    // timeouts.idle is kept by the downstream connection itself: it starts when the relayed
    // response's last byte is written, and a connection that sends nothing more then closes.
    TestCert root = TestPki.rootCa("Idle After Response Root").issue();
    Path own = Files.createDirectories(dir.resolve("idle"));
    try (PartnerApi api = PartnerApi.start(root.leaf(HOST).issue(), own);
        EgretFixture idle = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1")).start(own, """
            version: 1
            listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
            tls: {trust: [%s]}
            addresses: {allow: [127.0.0.1/32]}
            timeouts: {idle: 1s}
            allow:
              - host: %s
                ports: [%d]
            """.formatted(root.writePem(own).cert().getFileName(), HOST, api.port()));
        Socket s = new Socket("127.0.0.1", idle.proxyPort())) {
      s.setSoTimeout(20_000);
      s.getOutputStream().write(("GET http://" + HOST + ":" + api.port() + "/bytes/1000 HTTP/1.1"
          + "\r\nHost: " + HOST + ":" + api.port() + "\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      RawResponse r = RawResponse.read(s.getInputStream(), false);
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.bodyBytes()).hasSize(1000);
      long answered = System.nanoTime();
      // Nothing more arrives: the next read sees Egret's close (end of stream), not a timeout.
      assertThat(s.getInputStream().read()).isEqualTo(-1);
      assertThat(Duration.ofNanos(System.nanoTime() - answered))
          .isGreaterThanOrEqualTo(Duration.ofMillis(900));
    }
  }
}
