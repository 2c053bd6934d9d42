package dev.egret.upgrade;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static com.github.tomakehurst.wiremock.core.WireMockConfiguration.options;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The upgrade path end to end: a real client sends {@code http://} through Egret, and WireMock,
 * serving only HTTPS with a certificate from the test PKI, plays the third-party API.
 */
class UpgradeTest {
  private static final String HOST = "api.partner.test";
  @TempDir static Path dir;
  static TestCert root;
  static WireMockServer partner;
  static EgretFixture egret;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Upgrade Test Root").issue();
    TestCert leaf = root.leaf(HOST).issue();
    partner = new WireMockServer(options().bindAddress("127.0.0.1").httpDisabled(true)
        .dynamicHttpsPort()
        .keystorePath(leaf.writePkcs12(dir).toString()).keystoreType("PKCS12")
        .keystorePassword(TestCert.PASSWORD).keyManagerPassword(TestCert.PASSWORD));
    partner.start();
    Path rootPem = root.writePem(dir).cert();
    egret = EgretFixture.builder()
        .hosts(Map.of(HOST, "127.0.0.1", "blocked.partner.test", "127.0.0.1")).start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d]
          - host: blocked.partner.test
            plaintext: block
            ports: [%d]
        """.formatted(rootPem.getFileName(), HOST, partner.httpsPort(), partner.httpsPort()));
  }

  @AfterAll
  static void stop() throws Exception {
    egret.close();
    partner.stop();
  }

  @BeforeEach
  void reset() {
    partner.resetAll();
    partner.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200)
        .withHeader("Content-Type", "application/json")
        .withHeader("Connection", "X-Partner-Hop")
        .withHeader("X-Partner-Hop", "must not reach the client")
        .withBody("{\"orders\":[]}")));
  }

  private String url(String host, String path) {
    return "http://" + host + ":" + partner.httpsPort() + path;
  }

  @Test
  void upgradesPlainHttpToVerifiedTls() throws Exception {
    HttpResponse<String> r = egret.client().send(
        HttpRequest.newBuilder(URI.create(url(HOST, "/v1/orders?since=1"))).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.body()).isEqualTo("{\"orders\":[]}");
    assertThat(r.headers().firstValue("via")).hasValueSatisfying(v -> assertThat(v).contains("egret-"));
    assertThat(r.headers().firstValue("x-partner-hop")).isEmpty();
    // WireMock serves HTTPS only, so the request reaching it proves the upgrade.
    List<LoggedRequest> seen = partner.findAll(getRequestedFor(urlEqualTo("/v1/orders?since=1")));
    assertThat(seen).hasSize(1);
    assertThat(seen.get(0).getHeader("Host")).isEqualTo(HOST + ":" + partner.httpsPort());
    assertThat(seen.get(0).getHeader("Via")).contains("egret-");
    assertThat(seen.get(0).isBrowserProxyRequest()).isFalse();
  }

  @Test
  void curlThroughEgretGetsThePartnersAnswer() throws Exception {
    Process curl = new ProcessBuilder("curl", "-sS", "--max-time", "10", "-x",
        "http://127.0.0.1:" + egret.proxyPort(), "-D", "-", url(HOST, "/v1/curl"))
        .redirectErrorStream(true).start();
    String out = new String(curl.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(curl.waitFor(15, TimeUnit.SECONDS)).isTrue();
    assertThat(out).startsWith("HTTP/1.1 200").contains("{\"orders\":[]}");
    assertThat(partner.findAll(getRequestedFor(urlEqualTo("/v1/curl")))).hasSize(1);
  }

  @Test
  void refusesAHostNoRuleNamesWith403AndProxyStatus() throws Exception {
    HttpResponse<String> r = egret.client().send(
        HttpRequest.newBuilder(URI.create("http://other.partner.test/x")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(403);
    assertThat(r.headers().firstValue("proxy-status")).hasValueSatisfying(v ->
        assertThat(v).startsWith("egret; error=http_request_denied; details="));
    JsonNode body = new ObjectMapper().readTree(r.body());
    assertThat(body.get("error").asText()).isEqualTo("http_request_denied");
    assertThat(body.get("host").asText()).isEqualTo("other.partner.test");
    assertThat(body.get("details").asText()).contains("no allow rule names other.partner.test");
    assertThat(partner.getAllServeEvents()).isEmpty();
  }

  @Test
  void blocksPlaintextWhereTheRuleSaysBlock() throws Exception {
    HttpResponse<String> r = egret.client().send(
        HttpRequest.newBuilder(URI.create(url("blocked.partner.test", "/x"))).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(403);
    JsonNode body = new ObjectMapper().readTree(r.body());
    assertThat(body.get("details").asText()).contains("plaintext");
    assertThat(body.get("rule").asText()).isEqualTo("blocked.partner.test");
    assertThat(partner.getAllServeEvents()).isEmpty();
  }

  @Test
  void removesHopByHopHeadersBothWays() throws Exception {
    String response = raw("GET " + url(HOST, "/hop") + " HTTP/1.1\r\n"
        + "Host: " + HOST + ":" + partner.httpsPort() + "\r\n"
        + "Connection: close, X-Secret\r\n"
        + "X-Secret: hop-only\r\n"
        + "Proxy-Connection: keep-alive\r\n"
        + "Proxy-Authorization: Basic dTpw\r\n"
        + "Keep-Alive: timeout=5\r\n"
        + "TE: trailers\r\n"
        + "Upgrade: h2c\r\n"
        + "X-End-To-End: kept\r\n\r\n");
    assertThat(response).startsWith("HTTP/1.1 200")
        .as("Egret closes after a response when the client's Connection header lists close")
        .doesNotContain(TIMED_OUT);
    assertThat(response.toLowerCase()).doesNotContain("x-partner-hop");
    LoggedRequest seen = partner.findAll(getRequestedFor(urlEqualTo("/hop"))).get(0);
    assertThat(seen.getHeader("X-End-To-End")).isEqualTo("kept");
    for (String h : List.of("X-Secret", "Proxy-Connection", "Proxy-Authorization", "Keep-Alive",
        "TE", "Upgrade")) {
      assertThat(seen.containsHeader(h)).as(h).isFalse();
    }
  }

  @Test
  void refusesARequestThatAlreadyPassedThisEgret() throws Exception {
    HttpResponse<String> first = egret.client().send(
        HttpRequest.newBuilder(URI.create(url(HOST, "/via"))).build(),
        HttpResponse.BodyHandlers.ofString());
    String ourVia = first.headers().firstValue("via").orElseThrow();
    String token = ourVia.substring(ourVia.indexOf("egret-"));
    String response = raw("GET " + url(HOST, "/looped") + " HTTP/1.1\r\n"
        + "Host: " + HOST + ":" + partner.httpsPort() + "\r\n"
        + "Via: 1.1 " + token + "\r\nConnection: close\r\n\r\n");
    assertThat(response).startsWith("HTTP/1.1 508").contains("error=proxy_loop_detected");
    assertThat(partner.findAll(getRequestedFor(urlEqualTo("/looped")))).isEmpty();
  }

  @Test
  void originatesAbsoluteFormHttpsOverTlsNeverPlaintext() throws Exception {
    // Squid 5.7 sent such a request in plaintext over a pooled connection; WireMock here speaks
    // only HTTPS, so an answer proves Egret originated TLS.
    String response = raw("GET https://" + HOST + ":" + partner.httpsPort() + "/absolute HTTP/1.1\r\n"
        + "Host: " + HOST + ":" + partner.httpsPort() + "\r\nConnection: close\r\n\r\n");
    assertThat(response).startsWith("HTTP/1.1 200").contains("{\"orders\":[]}")
        .doesNotContain(TIMED_OUT);
    assertThat(partner.findAll(getRequestedFor(urlEqualTo("/absolute")))).hasSize(1);
  }

  @Test
  void refusesOriginFormOnTheProxyPort() throws Exception {
    String response = raw("GET /v1/orders HTTP/1.1\r\nHost: " + HOST + "\r\n\r\n");
    assertThat(response).startsWith("HTTP/1.1 400").contains("error=http_request_error");
    assertThat(partner.getAllServeEvents()).isEmpty();
  }

  /** Appended by {@link #raw} when Egret neither finished a response nor closed in time. */
  private static final String TIMED_OUT = "<<timed out>>";

  /** Sends raw bytes to Egret and reads until it closes, or a Content-Length response ends. */
  private static String raw(String request) throws Exception {
    try (Socket s = new Socket("127.0.0.1", egret.proxyPort())) {
      s.setSoTimeout((int) Duration.ofSeconds(10).toMillis());
      OutputStream out = s.getOutputStream();
      out.write(request.getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      InputStream in = s.getInputStream();
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      byte[] buf = new byte[8192];
      int n;
      try {
        while ((n = in.read(buf)) > 0) {
          got.write(buf, 0, n);
          if (complete(got.toString(StandardCharsets.ISO_8859_1))) {
            break;
          }
        }
      } catch (java.net.SocketTimeoutException e) {
        got.write(TIMED_OUT.getBytes(StandardCharsets.ISO_8859_1));
      }
      return got.toString(StandardCharsets.ISO_8859_1);
    }
  }

  /** True once a whole response with a Content-Length body has arrived. */
  private static boolean complete(String s) {
    int end = s.indexOf("\r\n\r\n");
    if (end < 0) {
      return false;
    }
    var m = java.util.regex.Pattern.compile("(?i)content-length: *(\\d+)").matcher(s.substring(0, end));
    return m.find() && s.length() - end - 4 >= Integer.parseInt(m.group(1));
  }
}
