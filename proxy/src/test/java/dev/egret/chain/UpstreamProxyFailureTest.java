package dev.egret.chain;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a client gets when the upstream proxy fails: a 502 (504 for a timeout) with {@code
 * Proxy-Status} naming the proxy by its configured name and what it answered, counted in {@code
 * egret_upstream_proxy_failures_total}; and an {@code https://} proxy verified with its own
 * trust, Egret's TLS to the destination inside Egret's TLS to the proxy.
 */
class UpstreamProxyFailureTest {
  private static final Duration WAIT = Duration.ofSeconds(20);
  /** A fatal handshake_failure alert record, as a server's first bytes could be. */
  private static final byte[] ALERT = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
  @TempDir static Path dir;
  static TestCert root;
  static TestCert proxyRoot;
  static TlsTestServer upstream;
  static final Map<String, TestUpstreamProxy> proxies = new HashMap<>();
  static EgretFixture egret;
  static int port;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Chain Failure Root").issue();
    proxyRoot = TestPki.rootCa("Corp Proxy Root").issue();
    TestCert leaf = root.leaf("secure.partner.test").dns("secure.partner.test",
        "extra.partner.test").issue();
    upstream = TlsTestServer.https(leaf).name("partner").start();
    port = upstream.port();
    proxies.put("p407", TestUpstreamProxy.answering("HTTP/1.1 407 Proxy Authentication Required"
        + "\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n").start());
    proxies.put("p403", TestUpstreamProxy.answering(
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").start());
    proxies.put("p503", TestUpstreamProxy.answering(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").start());
    proxies.put("garbage", TestUpstreamProxy.answering("SSH-2.0-OpenSSH_9.6\r\n").start());
    proxies.put("silent", TestUpstreamProxy.answering("").start());
    ByteArrayOutputStream extra = new ByteArrayOutputStream();
    extra.write("HTTP/1.1 200 Connection established\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
    extra.write(ALERT);
    proxies.put("extra", TestUpstreamProxy.answering(extra.toByteArray()).start());
    TestCert proxyLeaf = proxyRoot.leaf("127.0.0.1").issue();
    proxies.put("secure", TestUpstreamProxy.relaying().tls(proxyLeaf).start());
    proxies.put("untrusted", TestUpstreamProxy.relaying().tls(proxyLeaf).start());
    int gone;
    try (ServerSocket s = new ServerSocket(0)) {
      gone = s.getLocalPort(); // nothing listens there once it is closed
    }
    String rootPem = root.writePem(dir).cert().getFileName().toString();
    Path proxyDir = dir.resolve("proxy");
    java.nio.file.Files.createDirectories(proxyDir);
    String proxyRootPem = "proxy/" + proxyRoot.writePem(proxyDir).cert().getFileName();
    StringBuilder yaml = new StringBuilder("""
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        timeouts: {handshake: 5s, connect: 2s}
        addresses: {allow: [127.0.0.1/32]}
        upstreamProxies:
          gone: {url: "http://127.0.0.1:%d"}
          secure: {url: "https://127.0.0.1:%d", trust: [%s], auth: {username: u, password: p}}
          untrusted: {url: "https://127.0.0.1:%d", trust: [%s]}
        """.formatted(rootPem, gone, proxies.get("secure").port(), proxyRootPem,
        proxies.get("untrusted").port(), rootPem));
    for (String name : List.of("p407", "p403", "p503", "garbage", "extra", "silent")) {
      yaml.append("  ").append(name).append(": {url: \"http://127.0.0.1:")
          .append(proxies.get(name).port()).append("\"}\n");
    }
    yaml.append("allow:\n");
    Map<String, String> hosts = new HashMap<>();
    for (String name : List.of("p407", "p403", "p503", "garbage", "extra", "silent", "gone",
        "secure", "untrusted")) {
      yaml.append("  - {host: ").append(name).append(".partner.test, ports: [").append(port)
          .append("], upstreamProxy: ").append(name).append("}\n");
      hosts.put(name + ".partner.test", "127.0.0.1");
    }
    egret = EgretFixture.builder().observed().hosts(hosts).start(dir, yaml.toString());
  }

  @AfterAll
  static void stop() {
    egret.close();
    proxies.values().forEach(TestUpstreamProxy::close);
    upstream.close();
  }

  private static HttpResponse<String> get(String url) throws Exception {
    HttpClient client = HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", egret.proxyPort())))
        .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
    return client.send(HttpRequest.newBuilder(URI.create(url)).timeout(WAIT).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static String curl(String url) throws Exception {
    Process p = new ProcessBuilder("curl", "-sS", "--max-time", "15", "-x",
        "http://127.0.0.1:" + egret.proxyPort(), "--cacert",
        dir.resolve(root.writePem(dir).cert().getFileName()).toString(), "-D", "-", url)
        .redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
    return out;
  }

  /** The first access-log line holding every part; waits for it with a deadline. */
  private static String awaitLogLine(String... parts) throws InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (true) {
      List<String> lines = egret.logLines();
      for (String l : lines) {
        if (java.util.Arrays.stream(parts).allMatch(l::contains)) {
          return l;
        }
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("no log line with " + List.of(parts) + ": " + lines);
      }
      egret.awaitLogLines(lines.size() + 1);
    }
  }

  private static void assertFailure(HttpResponse<String> r, int status, String error,
      String... details) throws Exception {
    assertThat(r.statusCode()).isEqualTo(status);
    assertThat(r.headers().firstValue("proxy-status")).hasValueSatisfying(v ->
        assertThat(v).startsWith("egret; error=" + error + "; details="));
    JsonNode body = new ObjectMapper().readTree(r.body());
    assertThat(body.get("error").asText()).isEqualTo(error);
    assertThat(body.get("details").asText()).contains(details);
  }

  @Test
  void theProxysRefusalsBecome502NamingIt() throws Exception {
    assertFailure(get("http://p407.partner.test:" + port + "/x"), 502, "destination_unavailable",
        "upstream proxy 'p407'", "answered 407 Proxy Authentication Required to CONNECT "
            + "p407.partner.test:" + port, "set upstreamProxies.p407.auth");
    assertFailure(get("http://p403.partner.test:" + port + "/x"), 502, "destination_unavailable",
        "upstream proxy 'p403'", "answered 403 Forbidden");
    assertFailure(get("http://p503.partner.test:" + port + "/x"), 502, "destination_unavailable",
        "upstream proxy 'p503'", "answered 503 Service Unavailable");
    // A CONNECT through Egret gets the same answer before its tunnel opens.
    assertThat(curl("https://p403.partner.test:" + port + "/t"))
        .contains("HTTP/1.1 502").contains("upstream proxy 'p403'");
    String metrics = egret.scrape();
    assertThat(metrics)
        .contains("egret_upstream_proxy_failures_total{proxy=\"p407\",status=\"407\"} 1.0")
        .contains("egret_upstream_proxy_failures_total{proxy=\"p403\",status=\"403\"} 2.0")
        .contains("egret_upstream_proxy_failures_total{proxy=\"p503\",status=\"503\"} 1.0");
  }

  @Test
  void garbageFromTheProxyIsAProtocolError() throws Exception {
    assertFailure(get("http://garbage.partner.test:" + port + "/x"), 502, "http_protocol_error",
        "upstream proxy 'garbage'", "did not answer CONNECT garbage.partner.test:" + port
            + " with a valid HTTP/1.1 response");
    assertThat(egret.scrape()).contains(
        "egret_upstream_proxy_failures_total{proxy=\"garbage\",status=\"malformed\"} 1.0");
  }

  @Test
  void aProxyThatNeverAnswersIsAConnectionTimeout() throws Exception {
    assertFailure(get("http://silent.partner.test:" + port + "/x"), 504, "connection_timeout",
        "upstream proxy 'silent'", "did not answer CONNECT silent.partner.test:" + port
            + " within 2000 ms (timeouts.connect)");
    assertThat(proxies.get("silent").heads()).hasSize(1);
    assertThat(egret.scrape()).contains(
        "egret_upstream_proxy_failures_total{proxy=\"silent\",status=\"timeout\"} 1.0");
  }

  @Test
  void anUnreachableProxyIsConnectionRefused() throws Exception {
    assertFailure(get("http://gone.partner.test:" + port + "/x"), 502, "connection_refused",
        "upstream proxy 'gone' (http://127.0.0.1:");
    assertThat(egret.scrape()).contains(
        "egret_upstream_proxy_failures_total{proxy=\"gone\",status=\"connect_failed\"} 1.0");
  }

  @Test
  void bytesRightAfterTheProxysAnswerReachEgretsTls() throws Exception {
    // The proxy wrote its 200 and the "server's" first TLS record (a fatal alert) in one
    // write. Egret's TLS must read that record: dropping it would leave the handshake waiting
    // for timeouts.handshake instead.
    long start = System.nanoTime();
    assertFailure(get("http://extra.partner.test:" + port + "/x"), 502, "tls_protocol_error",
        "handshake_failure");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
  }

  /** The same in a tunnel: the held bytes reach the relay at its first read. */
  @Test
  void bytesRightAfterTheProxysAnswerReachATunnel() throws Exception {
    try (java.net.Socket s = new java.net.Socket("127.0.0.1", egret.proxyPort())) {
      s.setSoTimeout(15_000);
      String authority = "extra.partner.test:" + port;
      s.getOutputStream().write(("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority
          + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      byte[] all = s.getInputStream().readAllBytes(); // until Egret closes the tunnel
      String text = new String(all, StandardCharsets.ISO_8859_1);
      assertThat(text).startsWith("HTTP/1.1 200 Connection Established\r\n\r\n");
      byte[] after = java.util.Arrays.copyOfRange(all, text.indexOf("\r\n\r\n") + 4, all.length);
      // The proxy's extra bytes went through the relay's record check to the client.
      assertThat(after).containsExactly(ALERT);
    }
    String line = awaitLogLine("\"CONNECT\"", "extra.partner.test");
    assertThat(line).contains("\"upstream_proxy\":\"extra\"").contains("handshake_failure");
  }

  @Test
  void anHttpsProxyIsVerifiedWithItsTrustAndCarriesBothKinds() throws Exception {
    TestUpstreamProxy secure = proxies.get("secure");
    HttpResponse<String> r = get("http://secure.partner.test:" + port + "/upgrade");
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.body()).contains("hello from partner");
    assertThat(curl("https://secure.partner.test:" + port + "/tunnel"))
        .startsWith("HTTP/1.1 200").contains("hello from partner");
    assertThat(secure.awaitHeads(2, WAIT)).allSatisfy(h -> assertThat(h)
        .startsWith("CONNECT secure.partner.test:" + port + " HTTP/1.1\r\n")
        .contains("Proxy-Authorization: Basic dTpw\r\n"));
    assertThat(secure.awaitAfterAnswer(2, WAIT)).allSatisfy(b ->
        assertThat(b[0]).isEqualTo((byte) 0x16));
    assertThat(upstream.requests()).anySatisfy(req ->
        assertThat(req.target()).isEqualTo("/upgrade"));
  }

  @Test
  void anHttpsProxyWithACertificateOutsideItsTrustIsRefused() throws Exception {
    assertFailure(get("http://untrusted.partner.test:" + port + "/x"), 502,
        "tls_certificate_error", "upstream proxy 'untrusted'");
    assertThat(proxies.get("untrusted").heads()).isEmpty();
    String metrics = egret.scrape();
    assertThat(metrics).contains(
        "egret_upstream_proxy_failures_total{proxy=\"untrusted\",status=\"tls_error\"} 1.0");
    // TLS with the proxy is no handshake with the destination.
    assertThat(metrics).doesNotContainPattern(
        "egret_upstream_tls_handshakes_total\\{[^}]*destination=\"untrusted.partner.test\"");
  }
}
