package dev.egret.upgrade;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.RecordingTelemetry;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every way the upstream side of an upgraded request can fail, through a real Egret against
 * real sockets on 127.0.0.1, each checked for the documented status, {@code Proxy-Status} error type
 * and JSON body, and for the hop Egret reports.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class FailureMappingTest {
  private static final String HOST = "api.partner.test";
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path dir;
  static TestCert root;
  static Path rootPem;
  static PartnerApi partner;
  static TlsTestServer plain;
  static ServerSocket silent;
  static final List<Socket> silentlyHeld = new ArrayList<>();
  static int closedPort;
  static RecordingTelemetry seen = new RecordingTelemetry();
  static EgretFixture egret;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Failure Test Root").issue();
    partner = PartnerApi.start(root.leaf(HOST).issue(), dir);
    rootPem = root.writePem(dir).cert();
    plain = TlsTestServer.plain().name("plain").start();
    // Accepts TCP and never says a word: a TLS handshake that never ends.
    silent = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
    Thread acceptor = new Thread(() -> {
      while (!silent.isClosed()) {
        try {
          Socket s = silent.accept();
          synchronized (silentlyHeld) {
            silentlyHeld.add(s);
          }
        } catch (IOException e) {
          return;
        }
      }
    }, "silent-accept");
    acceptor.setDaemon(true);
    acceptor.start();
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      closedPort = s.getLocalPort(); // nothing listens here once it is closed
    }
    egret = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1")).telemetry(seen)
        .start(dir, config("""
        timeouts: {connect: 500ms, handshake: 500ms, response: 300ms, idle: 60s}
        """, partner.port(), plain.port(), silent.getLocalPort(), closedPort));
  }

  /** A config allowing {@value #HOST} and nowhere.partner.test on {@code ports}. */
  static String config(String extra, int... ports) {
    StringBuilder list = new StringBuilder();
    for (int p : ports) {
      list.append(list.length() == 0 ? "" : ", ").append(p);
    }
    return """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%s]
          - host: nowhere.partner.test
            ports: [%s]
        """.formatted(rootPem.getFileName(), HOST, list, list) + extra;
  }

  @AfterAll
  static void stop() throws Exception {
    egret.close();
    partner.close();
    plain.close();
    silent.close();
    synchronized (silentlyHeld) {
      for (Socket s : silentlyHeld) {
        s.close();
      }
    }
  }

  private static HttpResponse<String> get(EgretFixture through, String host, int port, String path)
      throws Exception {
    return through.client().send(
        HttpRequest.newBuilder(URI.create("http://" + host + ":" + port + path))
            .timeout(Duration.ofSeconds(20)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** Asserts the documented refusal: status, Proxy-Status naming egret and the type, JSON body. */
  private static void assertRefusal(HttpResponse<String> r, int status, String error, String host)
      throws Exception {
    assertThat(r.statusCode()).as(r.body()).isEqualTo(status);
    assertThat(r.headers().firstValue("proxy-status")).hasValueSatisfying(v ->
        assertThat(v).startsWith("egret; error=" + error + "; details=\""));
    assertThat(r.headers().firstValue("content-type")).hasValue("application/json");
    JsonNode body = JSON.readTree(r.body());
    assertThat(body.get("error").asText()).isEqualTo(error);
    assertThat(body.get("details").asText()).isNotBlank();
    assertThat(body.get("host").asText()).isEqualTo(host);
    assertThat(body.get("rule").asText()).isEqualTo(host);
  }

  private static Hop hopFor(String path) throws InterruptedException {
    return seen.awaitHop(h -> h.url != null && h.url.endsWith(path), Duration.ofSeconds(10));
  }

  @Test
  void answers502ConnectionRefusedWhenNothingListens() throws Exception {
    HttpResponse<String> r = get(egret, HOST, closedPort, "/refused");
    assertRefusal(r, 502, "connection_refused", HOST);
    Hop hop = hopFor("/refused");
    assertThat(hop.error).isEqualTo(ErrorKind.CONNECTION_REFUSED);
    assertThat(hop.outcome()).isEqualTo("failed");
  }

  @Test
  void answers504ResponseTimeoutWhenTheUpstreamNeverAnswers() throws Exception {
    long start = System.nanoTime();
    HttpResponse<String> r = get(egret, HOST, partner.port(), "/hang");
    long tookMs = (System.nanoTime() - start) / 1_000_000;
    assertRefusal(r, 504, "http_response_timeout", HOST);
    assertThat(JSON.readTree(r.body()).get("details").asText()).contains("300 ms");
    assertThat(tookMs).isBetween(300L, 5_000L);
    assertThat(partner.requests()).contains("GET /hang");
    assertThat(hopFor("/hang").error).isEqualTo(ErrorKind.RESPONSE_TIMEOUT);
  }

  @Test
  void answers502TlsProtocolErrorWhenTheUpstreamIsNotTls() throws Exception {
    HttpResponse<String> r = get(egret, HOST, plain.port(), "/plain");
    assertRefusal(r, 502, "tls_protocol_error", HOST);
    // The plain server answered Egret's ClientHello as a bad request; no request ever arrived.
    assertThat(plain.requests()).isEmpty();
  }

  @Test
  void answers502TlsProtocolErrorWhenTheHandshakeTimesOut() throws Exception {
    long start = System.nanoTime();
    HttpResponse<String> r = get(egret, HOST, silent.getLocalPort(), "/silent");
    long tookMs = (System.nanoTime() - start) / 1_000_000;
    assertRefusal(r, 502, "tls_protocol_error", HOST);
    assertThat(JSON.readTree(r.body()).get("details").asText())
        .contains("within 500 ms (timeouts.handshake)");
    // timeouts.handshake is 500ms; the JDK's and Vert.x's own defaults are 10 s.
    assertThat(tookMs).isBetween(500L, 5_000L);
  }

  @Test
  void answers502DnsErrorForANameThatDoesNotResolve() throws Exception {
    HttpResponse<String> r = get(egret, "nowhere.partner.test", partner.port(), "/dns");
    assertRefusal(r, 502, "dns_error", "nowhere.partner.test");
    assertThat(hopFor("/dns").error).isEqualTo(ErrorKind.DNS_ERROR);
  }

  @Test
  void breaksTheDownstreamResponseWhenTheUpstreamClosesMidBody() throws Exception {
    assertThatThrownBy(() -> get(egret, HOST, partner.port(), "/break/65536"))
        .isInstanceOf(IOException.class);
    Hop hop = hopFor("/break/65536");
    assertThat(hop.error).isEqualTo(ErrorKind.RESPONSE_INCOMPLETE);
    assertThat(hop.outcome()).isEqualTo("failed");
    assertThat(hop.status).isEqualTo(200);
  }

  @Test
  void breaksAChunkedResponseWhenTheUpstreamClosesMidBody() throws Exception {
    // A raw client, to see that the body never gets its last chunk: a clean end would pass a
    // truncated body off as whole.
    try (Socket s = new Socket("127.0.0.1", egret.proxyPort())) {
      s.setSoTimeout(10_000);
      String target = "http://" + HOST + ":" + partner.port() + "/break/70000?chunked";
      s.getOutputStream().write(("GET " + target + " HTTP/1.1\r\nHost: " + HOST + ":"
          + partner.port() + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
      byte[] all = s.getInputStream().readAllBytes(); // until Egret closes
      String text = new String(all, StandardCharsets.ISO_8859_1);
      assertThat(text).startsWith("HTTP/1.1 200")
          .containsIgnoringCase("transfer-encoding: chunked");
      assertThat(text).doesNotEndWith("0\r\n\r\n");
    }
    assertThat(hopFor("/break/70000").error)
        .isEqualTo(ErrorKind.RESPONSE_INCOMPLETE);
  }

  @Test
  void resetsTheUpstreamWhenTheDownstreamAbandonsAnUpload() throws Exception {
    try (Socket s = new Socket("127.0.0.1", egret.proxyPort())) {
      OutputStream out = s.getOutputStream();
      out.write(("POST http://" + HOST + ":" + partner.port() + "/digest/abort HTTP/1.1\r\nHost: "
          + HOST + ":" + partner.port() + "\r\nTransfer-Encoding: chunked\r\n\r\n"
          + "10000\r\n").getBytes(StandardCharsets.ISO_8859_1));
      out.write(new byte[0x10000]);
      out.write("\r\n8000\r\n".getBytes(StandardCharsets.ISO_8859_1));
      out.write(new byte[0x4000]); // half a chunk, then the client is gone
      out.flush();
      partner.awaitEvent(e -> e.equals("upload started /digest/abort"), Duration.ofSeconds(10));
    }
    String outcome = partner.awaitEvent(
        e -> e.matches("upload (aborted|complete) \\d+ /digest/abort"), Duration.ofSeconds(10));
    // A clean end would hand the upstream a truncated body as if it were whole.
    assertThat(outcome).startsWith("upload aborted");
    Hop hop = hopFor("/digest/abort");
    assertThat(hop.error).isEqualTo(ErrorKind.DOWNSTREAM_ABORTED);
    assertThat(hop.outcome()).isEqualTo("failed");
    assertThat(hop.errorDetails).contains("the client's request body broke off");
    // What was forwarded before the break is logged (the 64 KiB chunk at least), not 0.
    assertThat(hop.bytesUpstream).isGreaterThanOrEqualTo(0x10000);
  }

  @Test
  void countsTheResponseTimeoutFromTheEndOfTheRequest() throws Exception {
    // The body takes longer than timeouts.response (300ms) to arrive; the answer then comes at
    // once. Counting from the start of the request would cut this upload with a 504.
    try (Socket s = new Socket("127.0.0.1", egret.proxyPort())) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write(("POST http://" + HOST + ":" + partner.port() + "/digest/slow HTTP/1.1\r\n"
          + "Host: " + HOST + ":" + partner.port() + "\r\nContent-Length: 8\r\n\r\nfour")
          .getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      partner.awaitEvent(e -> e.equals("upload started /digest/slow"), Duration.ofSeconds(10));
      // Time passing is the point here, not a synchronisation: the rest comes after 700 ms.
      CompletableFuture.runAsync(() -> { }, CompletableFuture.delayedExecutor(700,
          TimeUnit.MILLISECONDS)).get(5, TimeUnit.SECONDS);
      out.write("more".getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      RawResponse r = RawResponse.read(s.getInputStream(), false);
      assertThat(r.status()).as(r.body()).isEqualTo(200);
      assertThat(JSON.readTree(r.body()).get("bytes").asLong()).isEqualTo(8);
    }
  }

  @Test
  void closesTheUpstreamWhenTheDownstreamAbandonsADownload() throws Exception {
    long size = 64 * Generated.MIB;
    try (Socket s = new Socket("127.0.0.1", egret.proxyPort())) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write(("GET http://" + HOST + ":" + partner.port() + "/bytes/" + size
          + " HTTP/1.1\r\nHost: " + HOST + ":" + partner.port() + "\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      InputStream in = s.getInputStream();
      byte[] buf = new byte[64 * 1024];
      long read = 0;
      while (read < Generated.MIB) {
        int n = in.read(buf);
        assertThat(n).isPositive();
        read += n;
      }
    }
    // Draining the rest into the void would keep the upstream busy for nothing.
    assertThat(partner.awaitEvent(e -> e.startsWith("download"), Duration.ofSeconds(10)))
        .isEqualTo("download aborted /bytes/" + size);
    Hop hop = hopFor("/bytes/" + size);
    assertThat(hop.error).isEqualTo(ErrorKind.RESPONSE_INCOMPLETE);
    assertThat(hop.errorDetails).contains("the client went away");
  }

  @Test
  void answers504ConnectionTimeoutWhenTheUpstreamNeverCompletesTcp() throws Exception {
    // A listener whose accept queue is full drops new SYNs (Linux), so a connect to it hangs:
    // a real connect timeout on loopback, no other address needed.
    try (ServerSocket full = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      List<Socket> fillers = new ArrayList<>();
      boolean hangs = false;
      try {
        for (int i = 0; i < 8 && !hangs; i++) {
          Socket f = new Socket();
          fillers.add(f);
          try {
            f.connect(new InetSocketAddress("127.0.0.1", full.getLocalPort()), 300);
          } catch (SocketTimeoutException e) {
            hangs = true;
          }
        }
        Assumptions.assumeTrue(hangs, "this kernel does not drop SYNs to a full accept queue");
        try (EgretFixture tight = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1"))
            .start(dir, config("""
            timeouts: {connect: 400ms, handshake: 500ms, response: 300ms, idle: 60s}
            """, full.getLocalPort()))) {
          long start = System.nanoTime();
          HttpResponse<String> r = get(tight, HOST, full.getLocalPort(), "/syn");
          long tookMs = (System.nanoTime() - start) / 1_000_000;
          assertRefusal(r, 504, "connection_timeout", HOST);
          assertThat(tookMs).isBetween(400L, 5_000L);
        }
      } finally {
        for (Socket f : fillers) {
          f.close();
        }
      }
    }
  }

  @Test
  void answers503AtOnceOverMaxConnectionsPerDestinationAndRecovers() throws Exception {
    // limits.maxConnectionsPerDestination caps the hops in flight per rule (docs: "Limits"): of
    // six concurrent requests that all hold their answer, one is in flight and five are refused
    // at once, never queued.
    try (EgretFixture pooled = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1"))
        .start(dir, config("""
        timeouts: {connect: 1s, handshake: 1s, response: 5s, idle: 60s}
        limits: {maxConnectionsPerDestination: 1}
        """, partner.port()))) {
      List<CompletableFuture<HttpResponse<String>>> all = new ArrayList<>();
      var client = pooled.client();
      for (int i = 0; i < 6; i++) {
        all.add(client.sendAsync(HttpRequest.newBuilder(
                URI.create("http://" + HOST + ":" + partner.port() + "/hang"))
                .timeout(Duration.ofSeconds(20)).build(),
            HttpResponse.BodyHandlers.ofString()));
      }
      @SuppressWarnings("unchecked") // anyOf loses the type; every future here holds one
      HttpResponse<String> first = (HttpResponse<String>) CompletableFuture.anyOf(
          all.toArray(CompletableFuture[]::new)).get(10, TimeUnit.SECONDS);
      assertRefusal(first, 503, "connection_limit_reached", HOST);
      assertThat(JSON.readTree(first.body()).get("details").asText())
          .contains("maxConnectionsPerDestination");
      List<Integer> statuses = new ArrayList<>();
      List<String> details = new ArrayList<>();
      for (var f : all) {
        HttpResponse<String> r = f.get(20, TimeUnit.SECONDS);
        statuses.add(r.statusCode());
        details.add(JSON.readTree(r.body()).get("details").asText());
      }
      // The one in flight times out (504); the five others were refused without waiting.
      assertThat(statuses).containsExactlyInAnyOrder(504, 503, 503, 503, 503, 503);
      assertThat(details.stream().filter(d -> d.contains(
          "already has 1 requests and tunnels in flight (limits.maxConnectionsPerDestination)")))
          .hasSize(5);
      // The slot comes back with the hop: the next request is served.
      HttpResponse<String> after = client.send(HttpRequest.newBuilder(
              URI.create("http://" + HOST + ":" + partner.port() + "/hello"))
          .timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(after.statusCode()).isNotIn(503, 504);
    }
  }

  @Test
  void answers503ToADownstreamConnectionOverMaxConnections() throws Exception {
    try (EgretFixture capped = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1"))
        .start(dir, config("""
        limits: {maxConnections: 1}
        """, partner.port()));
        Socket first = new Socket("127.0.0.1", capped.proxyPort());
        Socket second = new Socket("127.0.0.1", capped.proxyPort())) {
      String request = "GET http://" + HOST + ":" + partner.port() + "/status/204 HTTP/1.1\r\n"
          + "Host: " + HOST + ":" + partner.port() + "\r\n\r\n";
      first.setSoTimeout(10_000);
      second.setSoTimeout(10_000);
      first.getOutputStream().write(request.getBytes(StandardCharsets.ISO_8859_1));
      assertThat(RawResponse.read(first.getInputStream(), false).status()).isEqualTo(204);
      second.getOutputStream().write(request.getBytes(StandardCharsets.ISO_8859_1));
      RawResponse refused = RawResponse.read(second.getInputStream(), false);
      assertThat(refused.status()).isEqualTo(503);
      assertThat(refused.header("proxy-status"))
          .startsWith("egret; error=connection_limit_reached");
      assertThat(JSON.readTree(refused.body()).get("error").asText())
          .isEqualTo("connection_limit_reached");
      assertThat(second.getInputStream().read()).as("closed after the refusal").isEqualTo(-1);
      // The first connection is still served.
      first.getOutputStream().write(request.getBytes(StandardCharsets.ISO_8859_1));
      assertThat(RawResponse.read(first.getInputStream(), false).status()).isEqualTo(204);
    }
  }
}
