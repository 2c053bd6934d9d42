package dev.egret.tunnel;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.RecordingTelemetry;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
import dev.egret.testing.KeyKind;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * CONNECT tunnels end to end: real clients (curl, the JDK, Python requests, openssl, hand-made
 * TLS) open tunnels through an in-process Egret to TLS servers on 127.0.0.1. Egret must carry
 * TLS 1.2+ to the named host intact and at speed, and cut everything else without forwarding
 * it, logging and counting each cut with its reason.
 */
class TunnelTest {
  private static final String HOST = "api.partner.test";
  private static final Duration HOP_WAIT = Duration.ofSeconds(10);

  @TempDir static Path dir;
  static TestCert root;
  static Path rootPem;
  static SSLContext trustRoot;
  static TlsTestServer tls12;
  static TlsTestServer tls13;
  static TlsTestServer tls10;
  static TlsTestServer tls11;
  static TlsTestServer plain;
  static RawUpstream raw;
  static Vertx serverVertx;
  static BulkServer bulk;
  static RecordingTelemetry telemetry;
  static EgretFixture egret;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Tunnel Test Root").issue();
    TestCert leaf = root.leaf(HOST).issue();
    rootPem = root.writePem(dir).cert();
    trustRoot = root.clientContext();
    tls12 = TlsTestServer.https(leaf).name("tls12").protocols("TLSv1.2").start();
    tls13 = TlsTestServer.https(leaf).name("tls13").protocols("TLSv1.3").start();
    tls10 = TlsTestServer.https(leaf).name("tls10").protocols("TLSv1").start();
    tls11 = TlsTestServer.https(leaf).name("tls11").protocols("TLSv1.1").start();
    plain = TlsTestServer.plain().name("plain").start();
    raw = RawUpstream.start();
    serverVertx = Vertx.vertx();
    // An EC key keeps 500 simultaneous server handshakes cheap on a small machine. No test here
    // waits for a timeout, so handshake and idle are long: at a load average of 12 or more, 500
    // handshakes took over 10 s and the first tunnels idled 30 s waiting for the last.
    bulk = BulkServer.start(serverVertx, root.leaf(HOST).key(KeyKind.EC_P256).issue(), dir);
    telemetry = new RecordingTelemetry();
    egret = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1")).telemetry(telemetry)
        .start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        timeouts: {connect: 2s, handshake: 60s, idle: 90s}
        limits: {maxConnectionsPerDestination: 600}
        allow:
          - host: %s
            ports: [%d, %d, %d, %d, %d, %d, %d]
        """.formatted(rootPem.getFileName(), HOST, tls12.port(),
            tls13.port(), tls10.port(), tls11.port(), plain.port(), raw.port(), bulk.port()));
  }

  @AfterAll
  static void stop() throws Exception {
    egret.close();
    bulk.close();
    serverVertx.close().await(10, TimeUnit.SECONDS);
    raw.close();
    for (TlsTestServer s : List.of(tls12, tls13, tls10, tls11, plain)) {
      s.close();
    }
  }

  private static String authority(int port) {
    return HOST + ":" + port;
  }

  private static String proxyUrl() {
    return "http://127.0.0.1:" + egret.proxyPort();
  }

  /** The servers are shared: JUnit must not close them after each invocation. */
  static Stream<TlsTestServer> modernServers() {
    return Stream.of(tls12, tls13);
  }

  // ---- the 200 and clients that really use tunnels ----

  @Test
  void answersConnectWithABare200ConnectionEstablishedOnceTheUpstreamIsUp() throws Exception {
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(tls13.port()))) {
      // Exactly the status line and the empty line: no Content-Length or Transfer-Encoding
      // that a client might take for a body to read before its TLS bytes.
      assertThat(c.head()).isEqualTo("HTTP/1.1 200 Connection Established\r\n\r\n");
      SSLSocket ssl = c.tls(trustRoot, HOST, tls13.port());
      assertThat(ssl.getSession().getProtocol()).isEqualTo("TLSv1.3");
    }
    Hop hop = telemetry.awaitTunnelHop(authority(tls13.port()), null, HOP_WAIT);
    assertThat(hop.status).isEqualTo(200);
    assertThat(hop.tlsVersion).isEqualTo("TLSv1.3");
    assertThat(hop.bytesUpstream).isPositive();
    assertThat(hop.bytesDownstream).isPositive();
  }

  @Test
  void answers502WithoutA200WhenTheUpstreamRefusesTheConnection() throws Exception {
    int closedPort;
    try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1,
        java.net.InetAddress.getByName("127.0.0.1"))) {
      closedPort = s.getLocalPort();
    }
    // A port nothing listens on, in its own Egret's rule (the shared config is fixed).
    Path own = java.nio.file.Files.createDirectories(dir.resolve("refused"));
    try (EgretFixture refusing = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1"))
        .start(own, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d]
        """.formatted(HOST, closedPort))) {
      try (ProxyConnect c = ProxyConnect.open(refusing.proxyPort(), authority(closedPort))) {
        assertThat(c.head()).startsWith("HTTP/1.1 502 ").contains("error=connection_refused");
      }
    }
  }

  @ParameterizedTest(autoCloseArguments = false)
  @MethodSource("modernServers")
  void curlReachesTheServerThroughTheTunnel(TlsTestServer server) throws Exception {
    Proc curl = Proc.run(Duration.ofSeconds(20), "curl", "-sS", "--max-time", "10",
        "--proxy", proxyUrl(), "--cacert", rootPem.toString(),
        "https://" + authority(server.port()) + "/via-curl");
    assertThat(curl.exit()).as(curl.output()).isZero();
    assertThat(curl.output()).isEqualTo("hello from " + server.name());
    assertThat(server.requests()).anySatisfy(r ->
        assertThat(r.toString()).contains("/via-curl"));
    Hop hop = telemetry.awaitHop(h -> authority(server.port()).equals(h.url)
        && h.error == null && h.bytesDownstream > 0, HOP_WAIT);
    assertThat(hop.tlsVersion).isEqualTo(server == tls12 ? "TLSv1.2" : "TLSv1.3");
  }

  @ParameterizedTest(autoCloseArguments = false)
  @MethodSource("modernServers")
  void jdkHttpClientReachesTheServerThroughTheTunnel(TlsTestServer server) throws Exception {
    HttpClient client = HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", egret.proxyPort())))
        .sslContext(trustRoot)
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build();
    HttpResponse<String> r = client.send(HttpRequest.newBuilder(
            URI.create("https://" + authority(server.port()) + "/via-jdk"))
        .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.body()).isEqualTo("hello from " + server.name());
    assertThat(r.headers().firstValue("x-echo-tls")).hasValueSatisfying(v ->
        assertThat(v).contains(server == tls12 ? "TLSv1.2" : "TLSv1.3"));
  }

  @ParameterizedTest(autoCloseArguments = false)
  @MethodSource("modernServers")
  void pythonRequestsReachesTheServerThroughTheTunnel(TlsTestServer server) throws Exception {
    assumeTrue(Proc.available("python3", "-c", "import requests"),
        "python3 with requests is not installed");
    Proc py = Proc.run(Duration.ofSeconds(30), "python3", "-c", """
        import sys, requests
        r = requests.get(sys.argv[1], proxies={"https": sys.argv[2]}, verify=sys.argv[3], timeout=10)
        print(r.status_code, r.text)
        """, "https://" + authority(server.port()) + "/via-python", proxyUrl(),
        rootPem.toString());
    assertThat(py.exit()).as(py.output()).isZero();
    assertThat(py.output().trim()).isEqualTo("200 hello from " + server.name());
  }

  // ---- cuts inside the tunnel ----

  @ParameterizedTest
  @ValueSource(strings = {"TLSv1", "TLSv1.1"})
  void cutsATunnelWhoseServerNegotiatesBelowTls12(String version) throws Exception {
    TlsTestServer server = version.equals("TLSv1") ? tls10 : tls11;
    // Control: the same client and server agree on that version without Egret.
    try (Socket direct = new Socket("127.0.0.1", server.port());
         SSLSocket ssl = (SSLSocket) trustRoot.getSocketFactory()
             .createSocket(direct, HOST, server.port(), true)) {
      ssl.setEnabledProtocols(new String[] {version});
      ssl.startHandshake();
      assertThat(ssl.getSession().getProtocol()).isEqualTo(version);
    }
    int handshakesBefore = server.handshakes().size();
    int outcomesBefore = handshakesBefore + server.failedHandshakes().size();
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(server.port()))) {
      assertThat(c.status()).isEqualTo(200);
      assertThatThrownBy(() -> c.tls(trustRoot, HOST, server.port(), version))
          .isInstanceOf(IOException.class);
    }
    Hop hop = telemetry.awaitTunnelHop(authority(server.port()), ErrorKind.TLS_PROTOCOL_ERROR,
        HOP_WAIT);
    assertThat(hop.errorDetails).contains("negotiated " + version).contains("below");
    assertThat(hop.errorLabel()).isEqualTo("tls_protocol_error");
    assertThat(hop.tlsVersion).isEqualTo(version);
    // The ServerHello was held back, so the server never saw the client finish.
    server.awaitHandshakeOutcomes(outcomesBefore + 1, HOP_WAIT);
    assertThat(server.handshakes()).hasSize(handshakesBefore);
  }

  @Test
  void cutsPlaintextInsideATunnelForwardingNothing() throws Exception {
    int before = raw.closedCount();
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(raw.port()))) {
      assertThat(c.status()).isEqualTo(200);
      // Neither a TLS ClientHello nor an HTTP request line: nothing may pass.
      c.socket().getOutputStream().write("hello, plain bytes\n".getBytes(StandardCharsets.US_ASCII));
      c.socket().getOutputStream().flush();
      assertThat(ProxyConnect.readUntilClosed(c.socket().getInputStream())).isZero();
    }
    assertThat(raw.awaitClosed(before, HOP_WAIT)).as("bytes the upstream received").isZero();
    Hop hop = telemetry.awaitTunnelHop(authority(raw.port()), ErrorKind.TLS_PROTOCOL_ERROR,
        HOP_WAIT);
    assertThat(hop.errorDetails).contains("not a TLS ClientHello");
    assertThat(hop.bytesUpstream).isZero();
  }

  @Test
  void upgradesPlainHttpSentInsideATunnelInsteadOfRelayingIt() throws Exception {
    // curl -p: CONNECT, then "GET /in-tunnel HTTP/1.1" inside the tunnel, as undici does for
    // http:// URLs. Egret reads it as http://host:port/in-tunnel and originates it over TLS.
    Proc tunnelled = Proc.run(Duration.ofSeconds(20), "curl", "-sS", "--max-time", "10", "-p",
        "--proxy", proxyUrl(), "http://" + authority(tls13.port()) + "/in-tunnel");
    assertThat(tunnelled.exit()).as(tunnelled.output()).isZero();
    assertThat(tunnelled.output()).isEqualTo("hello from tls13");
    Hop hop = telemetry.awaitHop(h -> h.url != null && h.url.endsWith("/in-tunnel"), HOP_WAIT);
    assertThat(hop.kind).isEqualTo(dev.egret.policy.Kind.UPGRADE);
    assertThat(hop.origin).isEqualTo("tunnelled");
    assertThat(hop.tlsVersion).isEqualTo("TLSv1.3");
  }

  @Test
  void cutsAClientHelloThatNamesAnotherHost() throws Exception {
    // Control: openssl completes a handshake naming other.example with the server directly.
    Proc direct = Proc.run(Duration.ofSeconds(20), "openssl", "s_client", "-connect",
        "127.0.0.1:" + tls13.port(), "-servername", "other.example");
    assertThat(direct.output()).contains("New, TLSv1.3, Cipher is TLS_");
    int before = raw.closedCount();
    Proc tunnelled = Proc.run(Duration.ofSeconds(20), "openssl", "s_client",
        "-proxy", "127.0.0.1:" + egret.proxyPort(), "-connect", authority(raw.port()),
        "-servername", "other.example");
    assertThat(tunnelled.exit()).as(tunnelled.output()).isNotZero();
    assertThat(tunnelled.output()).doesNotContain("New, TLSv1");
    assertThat(raw.awaitClosed(before, HOP_WAIT)).as("bytes the upstream received").isZero();
    Hop hop = telemetry.awaitTunnelHop(authority(raw.port()), ErrorKind.REQUEST_DENIED,
        HOP_WAIT);
    assertThat(hop.errorLabel()).isEqualTo("http_request_denied");
    assertThat(hop.errorDetails).contains("other.example").contains(HOST);
  }

  @Test
  void refusesConnectToAHostNoRuleAllowsWith403() throws Exception {
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), "other.partner.test:443")) {
      assertThat(c.head()).startsWith("HTTP/1.1 403 ")
          .contains("egret; error=http_request_denied");
      assertThat(c.body()).contains("\"error\":\"http_request_denied\"")
          .contains("other.partner.test");
    }
    Hop hop = telemetry.awaitTunnelHop("other.partner.test:443", ErrorKind.REQUEST_DENIED,
        HOP_WAIT);
    assertThat(hop.status).isEqualTo(403);
  }

  @Test
  void refusesConnectToAPortTheRuleDoesNotListWith403() throws Exception {
    int before = raw.closedCount();
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), HOST + ":443")) {
      assertThat(c.head()).startsWith("HTTP/1.1 403 ")
          .contains("egret; error=http_request_denied");
    }
    telemetry.awaitTunnelHop(HOST + ":443", ErrorKind.REQUEST_DENIED, HOP_WAIT);
    assertThat(raw.closedCount()).isEqualTo(before);
  }

  // ---- integrity and flow ----

  @Test
  void carries200MiBEachWayIntact() throws Exception {
    long size = 200L << 20;
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(bulk.port()))) {
      SSLSocket ssl = c.tls(trustRoot, HOST, bulk.port());
      ssl.setSoTimeout(60_000);
      Exchange.Result r = Exchange.run(ssl, size, size);
      assertThat(r.upIntact()).as("SHA-256 of the 200 MiB sent up").isTrue();
      assertThat(r.downIntact()).as("SHA-256 of the 200 MiB sent down").isTrue();
    }
    Hop hop = telemetry.awaitHop(h -> authority(bulk.port()).equals(h.url)
        && h.bytesUpstream > size, HOP_WAIT);
    assertThat(hop.error).isNull();
    // Payload plus TLS framing, never less than the payload.
    assertThat(hop.bytesUpstream).isBetween(size, size + (size / 50));
    assertThat(hop.bytesDownstream).isBetween(size, size + (size / 50));
  }

  @Test
  void deliversTheServersLastBytesWhenItClosesRightAfterSending() throws Exception {
    // The server writes 6 MiB and its digests, then closes, while the client reads nothing:
    // the bytes wait in socket buffers and in Egret, whose upstream side is paused. Only then
    // does the client read. Egret sees the server's FIN with bytes for the client still held,
    // and closing both sides must wait until they are all delivered.
    // Control: the same exchange without Egret (smaller, as fewer buffers lie on the way).
    int controlBefore = bulk.finished();
    try (Socket direct = new Socket("127.0.0.1", bulk.port());
         SSLSocket ssl = (SSLSocket) trustRoot.getSocketFactory()
             .createSocket(direct, HOST, bulk.port(), true)) {
      assertThat(Exchange.run(ssl, 0, 1L << 20,
          () -> bulk.awaitFinished(controlBefore + 1, HOP_WAIT)).intact()).as("control").isTrue();
    }
    // With both cores busy this also caught Vert.x 5.0.7 delivering the upstream socket's end
    // ahead of data still held in its connection (the tail of these 6 MiB); see TlsGate.start.
    for (int round = 0; round < 4; round++) {
      int finishedBefore = bulk.finished();
      try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(bulk.port()))) {
        SSLSocket ssl = c.tls(trustRoot, HOST, bulk.port());
        Exchange.Result r = Exchange.run(ssl, 0, 6L << 20,
            () -> bulk.awaitFinished(finishedBefore + 1, HOP_WAIT));
        assertThat(r.intact()).as("round " + round).isTrue();
        assertThat(ProxyConnect.readUntilClosed(ssl.getInputStream())).isZero();
      }
    }
  }

  @Test
  void aClientThatReadsNothingHoldsTheServerBackInsteadOfFillingEgretsMemory() throws Exception {
    long size = 1L << 30;
    long bound = 64L << 20;
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(bulk.port()))) {
      SSLSocket ssl = c.tls(trustRoot, HOST, bulk.port());
      long acceptedBefore = bulk.bytesAccepted();
      // Ask for 1 GiB down, then read nothing.
      java.io.DataOutputStream out = new java.io.DataOutputStream(ssl.getOutputStream());
      out.writeLong(0);
      out.writeLong(size);
      out.flush();
      // Unbounded relaying would take the server through 1 GiB in a few seconds; with
      // back-pressure it stops once the socket buffers on the way and Egret's bounded write
      // queue are full. Wait for the server to go quiet (deadline 30 s), then check the bound.
      long stalled = awaitQuiet(() -> bulk.bytesAccepted() - acceptedBefore,
          Duration.ofMillis(1500), Duration.ofSeconds(30));
      assertThat(stalled).as("bytes the server could hand over while nobody read")
          .isGreaterThan(0).isLessThan(bound);
      // And nothing was lost while waiting: read a while, the server moves on.
      InputStream in = ssl.getInputStream();
      byte[] buf = new byte[BulkServer.CHUNK];
      long read = 0;
      while (read < bound) {
        int r = in.read(buf);
        assertThat(r).isPositive();
        read += r;
      }
      assertThat(bulk.bytesAccepted() - acceptedBefore).isGreaterThan(stalled);
    }
  }

  /**
   * Polls {@code value} until it has not changed for {@code quiet}, failing at {@code deadline}:
   * the event "the writer stopped", which only elapsed time can show.
   */
  private static long awaitQuiet(java.util.function.LongSupplier value, Duration quiet,
      Duration deadline) throws InterruptedException {
    long end = System.nanoTime() + deadline.toNanos();
    long last = value.getAsLong();
    long since = System.nanoTime();
    Object tick = new Object();
    while (System.nanoTime() < end) {
      synchronized (tick) {
        tick.wait(100);
      }
      long now = value.getAsLong();
      if (now != last) {
        last = now;
        since = System.nanoTime();
      } else if (System.nanoTime() - since >= quiet.toNanos()) {
        return now;
      }
    }
    throw new AssertionError("the value never stayed put for " + quiet + "; last " + last);
  }

  @Test
  void fiveHundredConcurrentTunnelsAllComplete() throws Exception {
    int tunnels = 500;
    int bytes = 64 * 1024;
    telemetry.awaitNoTunnels(HOP_WAIT);
    telemetry.resetMax();
    CountDownLatch allOpen = new CountDownLatch(tunnels);
    ExecutorService pool = Executors.newFixedThreadPool(tunnels);
    try {
      List<Future<Exchange.Result>> results = new ArrayList<>();
      for (int i = 0; i < tunnels; i++) {
        results.add(pool.submit(() -> {
          try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(bulk.port()))) {
            SSLSocket ssl = c.tls(trustRoot, HOST, bulk.port());
            allOpen.countDown();
            // Every tunnel is open before any carries data, so all 500 are open at once.
            allOpen.await(60, TimeUnit.SECONDS);
            return Exchange.run(ssl, bytes, bytes);
          }
        }));
      }
      int intact = 0;
      for (Future<Exchange.Result> f : results) {
        if (f.get(120, TimeUnit.SECONDS).intact()) {
          intact++;
        }
      }
      assertThat(intact).isEqualTo(tunnels);
      assertThat(telemetry.maxTunnelsActive()).isEqualTo(tunnels);
      telemetry.awaitNoTunnels(HOP_WAIT);
    } finally {
      pool.shutdownNow();
    }
  }
}
