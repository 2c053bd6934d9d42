package dev.egret.chain;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Chaining through a corporate proxy, end to end: a real client sends through Egret, Egret
 * reaches a TLS upstream through a recording proxy ({@link TestUpstreamProxy}), and the test
 * checks what the proxy saw: {@code CONNECT host:port} with credentials, then only TLS. Egret's
 * policy comes first: what it denies never reaches the proxy, and what routing sends direct
 * bypasses it.
 */
class UpstreamProxyTest {
  private static final String PASSWORD = "s3cret-corp-pw";
  private static final Duration WAIT = Duration.ofSeconds(20);
  @TempDir static Path dir;
  static TestCert root;
  static TlsTestServer upstream;
  static TestUpstreamProxy corp;
  static EgretFixture egret;
  static int port;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Chain Test Root").issue();
    TestCert leaf = root.leaf("api.partner.test").dns("api.partner.test", "tunnel.partner.test",
        "api.direct.test", "none.partner.test", "pinned.partner.test").issue();
    upstream = TlsTestServer.https(leaf).name("partner").start();
    corp = TestUpstreamProxy.relaying().start();
    port = upstream.port();
    Path rootPem = root.writePem(dir).cert();
    Files.writeString(dir.resolve("corp-pass"), PASSWORD + "\n");
    egret = EgretFixture.builder().observed()
        .hosts(Map.of("api.partner.test", "127.0.0.1", "tunnel.partner.test", "127.0.0.1",
            "api.direct.test", "127.0.0.1", "none.partner.test", "127.0.0.1",
            "pinned.partner.test", "127.0.0.1", "private.partner.test", "10.20.30.40"))
        .start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        upstreamProxies:
          corp:
            url: http://127.0.0.1:%d
            auth: {username: egret, password: "${file:corp-pass}"}
        routing:
          upstreamProxy: corp
          direct: ["**.direct.test"]
        allow:
          - host: api.partner.test
            ports: [%d]
          - host: tunnel.partner.test
            ports: [%d]
          - host: api.direct.test
            ports: [%d]
          - host: none.partner.test
            ports: [%d]
            upstreamProxy: none
          - host: pinned.partner.test
            ports: [%d]
            pins: ["sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]
          - host: private.partner.test
            ports: [%d]
        """.formatted(rootPem.getFileName(), corp.port(), port, port, port, port, port, port));
  }

  @AfterAll
  static void stop() {
    egret.close();
    corp.close();
    upstream.close();
  }

  private static HttpClient client() throws Exception {
    SSLContext trust = SSLContext.getInstance("TLS");
    trust.init(null, root.trustManagerFactory().getTrustManagers(), null);
    return HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", egret.proxyPort())))
        .version(HttpClient.Version.HTTP_1_1)
        .sslContext(trust)
        .connectTimeout(Duration.ofSeconds(5))
        .build();
  }

  private static HttpResponse<String> get(String url) throws Exception {
    return client().send(HttpRequest.newBuilder(URI.create(url)).timeout(WAIT).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** curl through Egret, trusting the test root; returns the response head and body. */
  private static String curl(String url) throws Exception {
    Process p = new ProcessBuilder("curl", "-sS", "--max-time", "15", "-x",
        "http://127.0.0.1:" + egret.proxyPort(), "--cacert",
        dir.resolve(root.writePem(dir).cert().getFileName()).toString(), "-D", "-", url)
        .redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
    return out;
  }

  private static JsonNode logLine(String urlPart) throws Exception {
    long deadline = System.nanoTime() + WAIT.toNanos();
    ObjectMapper json = new ObjectMapper();
    while (System.nanoTime() < deadline) {
      // One snapshot for the scan and the count to wait past: a line that arrived between the
      // two would otherwise be counted unseen, and the wait would be for a line never written.
      List<String> lines = egret.logLines();
      for (String line : lines) {
        JsonNode n = json.readTree(line);
        if (n.path("url").asText().contains(urlPart)) {
          return n;
        }
      }
      egret.awaitLogLines(lines.size() + 1);
    }
    throw new AssertionError("no access-log line for " + urlPart + ": " + egret.logLines());
  }

  private static String connectHead(String authority) {
    return "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n"
        + "Proxy-Authorization: Basic " + Base64.getEncoder().encodeToString(
            ("egret:" + PASSWORD).getBytes(StandardCharsets.UTF_8)) + "\r\n\r\n";
  }

  @Test
  void upgradesThroughTheProxyWithCredentialsAndOnlyTlsAfterItsAnswer() throws Exception {
    int heads = corp.heads().size();
    HttpResponse<String> r = get("http://api.partner.test:" + port + "/v1/orders");
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.body()).contains("hello from partner");
    // Exactly this head and nothing else: CONNECT by name, Host, Basic credentials.
    List<String> seen = corp.awaitHeads(heads + 1, WAIT);
    assertThat(seen.get(heads)).isEqualTo(connectHead("api.partner.test:" + port));
    // After the proxy's 200, Egret's first byte is a TLS handshake record, never a request line.
    byte[] after = corp.awaitAfterAnswer(1, WAIT).get(0);
    assertThat(after[0]).isEqualTo((byte) 0x16);
    assertThat(new String(after, StandardCharsets.ISO_8859_1)).doesNotContain("GET");
    // The destination saw the request over Egret's TLS, with its own host name.
    assertThat(upstream.requests()).anySatisfy(req -> {
      assertThat(req.target()).isEqualTo("/v1/orders");
      assertThat(req.header("Host")).contains("api.partner.test:" + port);
      assertThat(req.sni()).contains("api.partner.test");
    });
    JsonNode log = logLine("/v1/orders");
    assertThat(log.get("upstream_proxy").asText()).isEqualTo("corp");
    assertThat(log.get("kind").asText()).isEqualTo("upgrade");
    assertThat(log.toString()).doesNotContain(PASSWORD);
    String metrics = egret.scrape();
    assertThat(metrics).contains("egret_upstream_proxy_connect_duration_seconds_count{proxy=\"corp\"}");
    assertThat(metrics).doesNotContain(PASSWORD);
  }

  @Test
  void tunnelsThroughTheProxyAndTheClientsTlsGoesInside() throws Exception {
    int heads = corp.heads().size();
    int relayed = corp.afterAnswer().size();
    // curl, so that the tunnel closes when it exits (its access-log line is written then).
    String out = curl("https://tunnel.partner.test:" + port + "/t");
    assertThat(out).startsWith("HTTP/1.1 200").contains("hello from partner");
    assertThat(corp.awaitHeads(heads + 1, WAIT)).contains(connectHead("tunnel.partner.test:" + port));
    byte[] after = corp.awaitAfterAnswer(relayed + 1, WAIT).get(relayed);
    assertThat(after[0]).isEqualTo((byte) 0x16); // the client's ClientHello, relayed as is
    assertThat(upstream.handshakes()).anySatisfy(h ->
        assertThat(h.sni()).contains("tunnel.partner.test"));
    JsonNode log = logLine("tunnel.partner.test:" + port);
    assertThat(log.get("kind").asText()).isEqualTo("tunnel");
    assertThat(log.get("upstream_proxy").asText()).isEqualTo("corp");
    assertThat(log.get("outcome").asText()).isEqualTo("allowed");
  }

  @Test
  void aDeniedHopOpensNoConnectionToTheProxy() throws Exception {
    int accepts = corp.accepts();
    HttpResponse<String> notListed = get("http://evil.partner.test/x");
    assertThat(notListed.statusCode()).isEqualTo(403);
    assertThat(notListed.headers().firstValue("proxy-status")).hasValueSatisfying(v ->
        assertThat(v).contains("error=http_request_denied"));
    // Allowed by a rule, but the address guard refuses the private address it resolves to,
    // before anything is sent to the proxy (which might well reach that address).
    HttpResponse<String> privateAddress = get("http://private.partner.test:" + port + "/x");
    assertThat(privateAddress.statusCode()).isEqualTo(403);
    assertThat(privateAddress.headers().firstValue("proxy-status")).hasValueSatisfying(v ->
        assertThat(v).contains("error=destination_ip_prohibited"));
    // The JDK client reports a refused CONNECT as an exception naming the status.
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> get("https://evil.partner.test/x"))
        .hasMessageContaining("403");
    assertThat(logLine("private.partner.test").path("upstream_proxy").isNull()).isTrue();
    assertThat(corp.accepts()).isEqualTo(accepts);
  }

  @Test
  void routingDirectAndARulesNoneGoDirect() throws Exception {
    int accepts = corp.accepts();
    assertThat(get("http://api.direct.test:" + port + "/direct").statusCode()).isEqualTo(200);
    assertThat(get("http://none.partner.test:" + port + "/none").statusCode()).isEqualTo(200);
    assertThat(get("https://none.partner.test:" + port + "/none-tunnel").statusCode())
        .isEqualTo(200);
    assertThat(corp.accepts()).isEqualTo(accepts);
    assertThat(upstream.requests()).anySatisfy(req -> assertThat(req.target()).isEqualTo("/direct"));
    assertThat(logLine("/direct").path("upstream_proxy").isNull()).isTrue();
  }

  @Test
  void pinsStillHoldThroughTheProxy() throws Exception {
    int heads = corp.heads().size();
    HttpResponse<String> r = get("http://pinned.partner.test:" + port + "/pinned");
    assertThat(r.statusCode()).isEqualTo(502);
    assertThat(r.headers().firstValue("proxy-status")).hasValueSatisfying(v ->
        assertThat(v).contains("error=tls_certificate_error"));
    // The proxy did carry it: the pin is checked on Egret's own TLS inside the tunnel.
    assertThat(corp.awaitHeads(heads + 1, WAIT))
        .contains(connectHead("pinned.partner.test:" + port));
    assertThat(upstream.requests()).noneSatisfy(req ->
        assertThat(req.target()).isEqualTo("/pinned"));
  }
}
