package dev.egret.listener;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code listen.proxyProtocol}: a real HAProxy ({@code send-proxy-v2} and {@code send-proxy})
 * in front of a real Egret carries curl's requests, and the access log names curl's address as
 * the client and HAProxy's as the peer. Raw sockets send what a load balancer never should: a
 * header from a peer outside {@code trustedPeers}, no header, malformed ones, a slow one, a
 * second one; each is closed (or, for the second, refused by the request parser) and counted in
 * {@code egret_identity_failures_total{source="proxy_protocol"}}, and nothing reaches the
 * upstream.
 *
 * <p>Egret trusts 127.0.0.1/32 only. curl binds 127.0.0.2 towards HAProxy, so the client address
 * the header names differs from the peer (HAProxy, from 127.0.0.1); a raw socket bound to
 * 127.0.0.2 is an untrusted peer.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class ProxyProtocolTest {
  private static final String HOST = "api.partner.test";
  private static final Duration AWAIT = Duration.ofSeconds(20);
  /** timeouts.requestHead: also how long a PROXY header may take after the accept. */
  private static final long REQUEST_HEAD_MS = 2_000;
  private static final byte[] V2_SIGNATURE =
      {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final InetAddress LOOPBACK_2 = address("127.0.0.2");

  @TempDir static Path dir;
  static Path rootPem;
  static TlsTestServer upstream;
  static EgretFixture egret;
  static Process haproxy;
  static int haproxyV2;
  static int haproxyV1;

  @BeforeAll
  static void start() throws Exception {
    TestCert root = TestPki.rootCa("Proxy Protocol Root").issue();
    rootPem = root.writePem(dir).cert();
    upstream = TlsTestServer.https(root.leaf(HOST).issue()).name("upstream").start();
    egret = EgretFixture.builder().observed().hosts(Map.of(HOST, "127.0.0.1")).start(dir, """
        version: 1
        listen:
          proxy: 127.0.0.1:0
          admin: 127.0.0.1:0
          proxyProtocol: {trustedPeers: [127.0.0.1/32]}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        timeouts: {requestHead: %dms}
        allow:
          - host: %s
            ports: [%d]
        """.formatted(rootPem.getFileName(), REQUEST_HEAD_MS, HOST, upstream.port()));
    haproxyV2 = freePort();
    haproxyV1 = freePort();
    Path cfg = dir.resolve("haproxy.cfg");
    Files.writeString(cfg, """
        global
          maxconn 64
        defaults
          mode tcp
          timeout connect 5s
          timeout client 30s
          timeout server 30s
        frontend v2
          bind 127.0.0.1:%d
          default_backend egret_v2
        backend egret_v2
          server egret 127.0.0.1:%d send-proxy-v2
        frontend v1
          bind 127.0.0.1:%d
          default_backend egret_v1
        backend egret_v1
          server egret 127.0.0.1:%d send-proxy
        """.formatted(haproxyV2, egret.proxyPort(), haproxyV1, egret.proxyPort()));
    haproxy = new ProcessBuilder("/usr/sbin/haproxy", "-f", cfg.toString(), "-db")
        .redirectErrorStream(true).redirectOutput(dir.resolve("haproxy.log").toFile()).start();
    awaitListening(haproxyV2);
    awaitListening(haproxyV1);
  }

  @AfterAll
  static void stop() throws Exception {
    if (haproxy != null) {
      haproxy.destroy();
      if (!haproxy.waitFor(10, TimeUnit.SECONDS)) {
        haproxy.destroyForcibly();
      }
    }
    if (egret != null) {
      egret.close();
    }
    if (upstream != null) {
      upstream.close();
    }
  }

  // --- through HAProxy ---

  @Test
  void carriesATunnelThroughHaproxySendProxyV2AndLogsClientAndPeer() throws Exception {
    Curl curl = curl(haproxyV2, "https://" + HOST + ":" + upstream.port() + "/via-v2");
    assertThat(curl.status()).isEqualTo("200");
    assertThat(curl.body()).contains("hello from upstream");
    JsonNode line = awaitLog(l -> l.path("url").asText().equals(HOST + ":" + upstream.port())
        && l.path("client").asText().equals("127.0.0.2:" + curl.localPort()));
    assertThat(line.path("kind").asText()).isEqualTo("tunnel");
    assertThat(line.path("peer").asText()).matches("127\\.0\\.0\\.1:\\d+");
  }

  @Test
  void carriesAnUpgradeThroughHaproxySendProxyV1AndLogsClientAndPeer() throws Exception {
    Curl curl = curl(haproxyV1, "http://" + HOST + ":" + upstream.port() + "/via-v1");
    assertThat(curl.status()).isEqualTo("200");
    assertThat(curl.body()).contains("hello from upstream");
    assertThat(upstream.requests()).anySatisfy(r -> assertThat(r.target()).isEqualTo("/via-v1"));
    JsonNode line = awaitLog(l -> l.path("url").asText().endsWith("/via-v1"));
    assertThat(line.path("client").asText()).isEqualTo("127.0.0.2:" + curl.localPort());
    assertThat(line.path("peer").asText()).matches("127\\.0\\.0\\.1:\\d+");
    assertThat(line.path("status").asInt()).isEqualTo(200);
  }

  // --- raw sockets: headers a load balancer sends ---

  @Test
  void keepsTheRequestThatCameInTheSameWriteAsTheHeader() throws Exception {
    try (Socket s = connect(null)) {
      String answer = exchange(s, concat(v1("127.0.0.3", 40001), get("/same-read")));
      assertThat(answer).startsWith("HTTP/1.1 200 ").contains("hello from upstream");
      JsonNode line = awaitLog(l -> l.path("url").asText().endsWith("/same-read"));
      assertThat(line.path("client").asText()).isEqualTo("127.0.0.3:40001");
      assertThat(line.path("peer").asText()).isEqualTo("127.0.0.1:" + s.getLocalPort());
    }
  }

  @Test
  void readsAV2HeaderWithTlvsAndIgnoresThem() throws Exception {
    byte[] noop = {0x04, 0x00, 0x03, 'a', 'b', 'c'}; // PP2_TYPE_NOOP, length 3
    byte[] unique = {0x05, 0x00, 0x02, 'i', 'd'};     // PP2_TYPE_UNIQUE_ID
    try (Socket s = connect(null)) {
      String answer = exchange(s, concat(v2Tcp4(new byte[] {127, 0, 0, 4}, 40002,
          concat(noop, unique)), get("/v2-tlv")));
      assertThat(answer).startsWith("HTTP/1.1 200 ");
      JsonNode line = awaitLog(l -> l.path("url").asText().endsWith("/v2-tlv"));
      assertThat(line.path("client").asText()).isEqualTo("127.0.0.4:40002");
      assertThat(line.path("peer").asText()).isEqualTo("127.0.0.1:" + s.getLocalPort());
    }
  }

  @Test
  void takesThePeerAsTheClientForLocalAndUnknownHeaders() throws Exception {
    byte[] local = concat(V2_SIGNATURE, new byte[] {0x20, 0x00, 0x00, 0x00});
    byte[] unknown = "PROXY UNKNOWN\r\n".getBytes(StandardCharsets.US_ASCII);
    String[] paths = {"/local", "/unknown"};
    byte[][] headers = {local, unknown};
    for (int i = 0; i < paths.length; i++) {
      String path = paths[i];
      try (Socket s = connect(null)) {
        assertThat(exchange(s, concat(headers[i], get(path)))).startsWith("HTTP/1.1 200 ");
        JsonNode line = awaitLog(l -> l.path("url").asText().endsWith(path));
        assertThat(line.path("client").asText()).isEqualTo("127.0.0.1:" + s.getLocalPort());
        assertThat(line.has("peer")).as("no peer key when no header named a client").isFalse();
      }
    }
  }

  // --- raw sockets: what must be refused ---

  @Test
  void closesAPeerOutsideTrustedPeersBeforeReadingAnything() throws Exception {
    double before = failures("untrusted");
    try (Socket s = connect(LOOPBACK_2)) {
      String answer = exchange(s, concat(v1("10.20.4.5", 40003), get("/forged")));
      assertThat(answer).as("closed without a word").isEmpty();
    }
    awaitFailures("untrusted", before + 1);
    assertThat(upstream.requests()).noneSatisfy(r -> assertThat(r.target()).isEqualTo("/forged"));
    assertThat(egret.logLines()).noneMatch(l -> l.contains("/forged") || l.contains("10.20.4.5"));
  }

  @Test
  void closesAConnectionWithoutAHeader() throws Exception {
    double before = failures("missing");
    int upstreamConnections = upstream.connections();
    try (Socket s = connect(null)) {
      String connect = "CONNECT " + HOST + ":" + upstream.port() + " HTTP/1.1\r\nHost: " + HOST
          + ":" + upstream.port() + "\r\n\r\n";
      assertThat(exchange(s, connect.getBytes(StandardCharsets.US_ASCII))).isEmpty();
    }
    awaitFailures("missing", before + 1);
    // A request that starts like a v2 signature (empty lines) but is not one.
    try (Socket s = connect(null)) {
      assertThat(exchange(s, concat("\r\n\r\n".getBytes(StandardCharsets.US_ASCII),
          get("/crlf-first")))).isEmpty();
    }
    awaitFailures("missing", before + 2);
    assertThat(upstream.connections()).isEqualTo(upstreamConnections);
    assertThat(upstream.requests()).noneSatisfy(r ->
        assertThat(r.target()).isEqualTo("/crlf-first"));
  }

  @Test
  void closesMalformedV1AndV2Headers() throws Exception {
    double before = failures("malformed");
    List<byte[]> bad = List.of(
        // an address that is not one
        "PROXY TCP4 127.0.0.300 127.0.0.1 40004 3128\r\n".getBytes(StandardCharsets.US_ASCII),
        // no CRLF within the 107 bytes a v1 line may have
        ("PROXY TCP4 " + "1".repeat(120)).getBytes(StandardCharsets.US_ASCII),
        // a v2 header of version 3
        concat(V2_SIGNATURE, new byte[] {0x31, 0x11, 0x00, 0x0C, 127, 0, 0, 5, 127, 0, 0, 1,
            0x10, 0x00, 0x0C, 0x38}),
        // v2 TCP4 whose address block is too short for two addresses and ports
        concat(V2_SIGNATURE, new byte[] {0x21, 0x11, 0x00, 0x04, 127, 0, 0, 5}),
        // version byte 0xFF, which Netty 4.2.9 would buffer behind without a bound
        concat(V2_SIGNATURE, new byte[] {(byte) 0xFF, 0x11, 0x00, 0x0C}, new byte[4096]),
        // a TLV that runs past the header (Netty 4.2.9 throws IndexOutOfBounds, not its own)
        concat(V2_SIGNATURE, new byte[] {0x21, 0x11, 0x00, 0x10, 127, 0, 0, 5, 127, 0, 0, 1,
            0x10, 0x00, 0x0C, 0x38, 0x04, 0x00, 0x10, 'a'}));
    for (int i = 0; i < bad.size(); i++) {
      try (Socket s = connect(null)) {
        assertThat(exchange(s, concat(bad.get(i), get("/malformed-" + i))))
            .as("header %d closed without an HTTP answer", i).isEmpty();
      }
      awaitFailures("malformed", before + i + 1);
    }
    assertThat(upstream.requests()).noneSatisfy(r ->
        assertThat(r.target()).startsWith("/malformed-"));
  }

  @Test
  void closesAHeaderThatDoesNotArriveWithinTheRequestHeadDeadline() throws Exception {
    double before = failures("timeout");
    long start = System.nanoTime();
    try (Socket s = connect(null)) {
      s.getOutputStream().write("PROXY TCP4 127.0.0.6 ".getBytes(StandardCharsets.US_ASCII));
      s.getOutputStream().flush();
      assertThat(readToEnd(s)).isEmpty();
    }
    long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertThat(tookMs).isGreaterThanOrEqualTo(REQUEST_HEAD_MS - 100);
    awaitFailures("timeout", before + 1);
  }

  @Test
  void refusesASecondHeaderAsAMalformedRequestAndKeepsTheFirstAddress() throws Exception {
    double before = failures("repeated");
    byte[][] seconds = {
        "PROXY TCP4 10.20.4.5 127.0.0.1 40005 3128\r\n".getBytes(StandardCharsets.US_ASCII),
        v2Tcp4(new byte[] {10, 20, 4, 5}, 40005, new byte[0])};
    for (int i = 0; i < seconds.length; i++) {
      String path = "/second-" + i;
      try (Socket s = connect(null)) {
        String answer = exchange(s, concat(v1("127.0.0.7", 40100 + i), seconds[i], get(path)));
        assertThat(answer).as("second header %d", i).startsWith("HTTP/1.1 400 ")
            .containsPattern("(?i)proxy-status: [^\\r\\n]*error=http_request_error");
        String peer = "127.0.0.1:" + s.getLocalPort();
        JsonNode line = awaitLog(l -> l.path("peer").asText().equals(peer));
        assertThat(line.path("status").asInt()).isEqualTo(400);
        assertThat(line.path("client").asText()).isEqualTo("127.0.0.7:" + (40100 + i));
        assertThat(line.path("error").asText()).isEqualTo("http_request_error");
      }
      awaitFailures("repeated", before + i + 1);
    }
    assertThat(upstream.requests()).noneSatisfy(r -> assertThat(r.target()).startsWith("/second-"));
    assertThat(egret.logLines()).noneMatch(l -> l.contains("10.20.4.5"));
  }

  // --- helpers ---

  private static byte[] v1(String source, int sourcePort) {
    return ("PROXY TCP4 " + source + " 127.0.0.1 " + sourcePort + " 3128\r\n")
        .getBytes(StandardCharsets.US_ASCII);
  }

  /** A v2 PROXY header over TCP/IPv4 from {@code source}, with {@code tlvs} after the addresses. */
  private static byte[] v2Tcp4(byte[] source, int sourcePort, byte[] tlvs) {
    ByteBuffer b = ByteBuffer.allocate(16 + 12 + tlvs.length);
    b.put(V2_SIGNATURE).put((byte) 0x21).put((byte) 0x11).putShort((short) (12 + tlvs.length));
    b.put(source).put(new byte[] {127, 0, 0, 1});
    b.putShort((short) sourcePort).putShort((short) 3128).put(tlvs);
    return b.array();
  }

  private static byte[] get(String path) {
    String authority = HOST + ":" + upstream.port();
    return ("GET http://" + authority + path + " HTTP/1.1\r\nHost: " + authority
        + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      out.writeBytes(p);
    }
    return out.toByteArray();
  }

  /** A socket to Egret's proxy port, from {@code local} (null: 127.0.0.1). */
  private static Socket connect(InetAddress local) throws IOException {
    Socket s = new Socket();
    s.bind(new InetSocketAddress(local == null ? address("127.0.0.1") : local, 0));
    s.connect(new InetSocketAddress("127.0.0.1", egret.proxyPort()), 5_000);
    s.setSoTimeout((int) AWAIT.toMillis());
    return s;
  }

  /** Writes {@code bytes} in one write, then reads until Egret closes. */
  private static String exchange(Socket s, byte[] bytes) throws IOException {
    s.getOutputStream().write(bytes);
    s.getOutputStream().flush();
    return readToEnd(s);
  }

  private static String readToEnd(Socket s) throws IOException {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    byte[] buf = new byte[4096];
    InputStream in = s.getInputStream();
    try {
      for (int n; (n = in.read(buf)) >= 0; ) {
        all.write(buf, 0, n);
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("Egret did not close the connection within " + AWAIT
          + "; it sent: " + all.toString(StandardCharsets.ISO_8859_1), e);
    } catch (java.net.SocketException e) {
      // A reset after Egret closed with bytes unread: what came before it is the answer.
    }
    return all.toString(StandardCharsets.ISO_8859_1);
  }

  /** The first access-log line that matches, waiting up to {@link #AWAIT}. */
  private static JsonNode awaitLog(Predicate<JsonNode> match) throws Exception {
    long deadline = System.nanoTime() + AWAIT.toNanos();
    while (true) {
      List<String> lines = egret.logLines();
      for (String l : lines) {
        JsonNode n = JSON.readTree(l);
        if (match.test(n)) {
          return n;
        }
      }
      try {
        if (System.nanoTime() > deadline) {
          throw new AssertionError("deadline");
        }
        egret.awaitLogLines(lines.size() + 1);
      } catch (AssertionError e) {
        throw new AssertionError("no matching access-log line within " + AWAIT + ": " + lines);
      }
    }
  }

  private static final Pattern FAILURE = Pattern.compile(
      "(?m)^egret_identity_failures_total\\{([^}]*)\\} (\\S+)$");

  /** {@code egret_identity_failures_total{source="proxy_protocol",reason=...}}, 0 when absent. */
  private static double failures(String reason) throws Exception {
    Matcher m = FAILURE.matcher(egret.scrape());
    while (m.find()) {
      if (m.group(1).contains("source=\"proxy_protocol\"")
          && m.group(1).contains("reason=\"" + reason + "\"")) {
        return Double.parseDouble(m.group(2));
      }
    }
    return 0;
  }

  private static void awaitFailures(String reason, double expected) throws Exception {
    long deadline = System.nanoTime() + AWAIT.toNanos();
    double now;
    while ((now = failures(reason)) != expected) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("egret_identity_failures_total{reason=\"" + reason
            + "\"} is " + now + ", expected " + expected + "\n" + egret.scrape());
      }
    }
  }

  private record Curl(String status, String body, int localPort) {}

  /** curl through HAProxy's frontend on {@code port}, from 127.0.0.2. */
  private static Curl curl(int port, String url) throws Exception {
    Path out = Files.createTempFile(dir, "curl", ".body");
    Process p = new ProcessBuilder("curl", "-sS", "--max-time", "20", "--interface", "127.0.0.2",
        "--proxy", "http://127.0.0.1:" + port, "--cacert", rootPem.toString(),
        "-o", out.toString(), "-w", "%{http_code} %{local_port}", url)
        .redirectErrorStream(true).start();
    String written = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("curl: %s", written).isZero();
    String[] parts = written.trim().split(" ");
    return new Curl(parts[0], Files.readString(out), Integer.parseInt(parts[1]));
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, address("127.0.0.1"))) {
      return s.getLocalPort();
    }
  }

  /** Connects until HAProxy's frontend accepts, for at most {@link #AWAIT}. */
  private static void awaitListening(int port) throws Exception {
    long deadline = System.nanoTime() + AWAIT.toNanos();
    while (true) {
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 1_000);
        return;
      } catch (ConnectException e) {
        if (System.nanoTime() > deadline || !haproxy.isAlive()) {
          throw new AssertionError("HAProxy is not listening on " + port + ":\n"
              + Files.readString(dir.resolve("haproxy.log")), e);
        }
        haproxy.waitFor(50, TimeUnit.MILLISECONDS); // returns early if it exits
      }
    }
  }

  private static InetAddress address(String literal) {
    try {
      return InetAddress.getByName(literal);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
