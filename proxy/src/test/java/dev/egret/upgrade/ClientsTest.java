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
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import java.io.IOException;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The clients tasks really use, each against one running Egret (a child process, as in
 * production) with WireMock over HTTPS as the third party: curl (as a proxy, and with
 * {@code --proxytunnel}), the JDK HttpClient, Python requests (urllib3) and Node's undici
 * {@code EnvHttpProxyAgent}. Each client runs the same six cases ({@link Contract}): an allowed
 * call over {@code http://} (upgraded) and {@code https://} (tunnelled), a denied host over
 * both, and a {@code plaintext: block} rule, which refuses {@code http://} and lets
 * {@code https://} through.
 *
 * <p>undici sends {@code CONNECT} for {@code http://} URLs too, and so does curl with
 * {@code --proxytunnel}; their allowed and blocked {@code http://} cases need plain HTTP inside
 * CONNECT tunnels and are disabled until that lands.
 */
class ClientsTest {
  private static final String API = "api.partner.test";
  private static final String BLOCKED = "blocked.partner.test";
  private static final String BODY = "{\"partner\":\"ok\"}";
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;
  static TestCert root;
  static Path rootPem;
  static WireMockServer partner;
  static EgretFixture egret;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Clients Test Root").issue();
    TestCert leaf = root.leaf(API).dns(API, BLOCKED).issue();
    partner = new WireMockServer(options().bindAddress("127.0.0.1").httpDisabled(true)
        .dynamicHttpsPort()
        .keystorePath(leaf.writePkcs12(dir).toString()).keystoreType("PKCS12")
        .keystorePassword(TestCert.PASSWORD).keyManagerPassword(TestCert.PASSWORD));
    partner.start();
    partner.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200)
        .withHeader("Content-Type", "application/json").withBody(BODY)));
    rootPem = root.writePem(dir).cert();
    // The child resolves through the JDK with a hosts file of its own: the test names, nothing else.
    Path hosts = Files.writeString(dir.resolve("hosts"), "127.0.0.1 " + API + " " + BLOCKED + "\n");
    egret = EgretFixture.builder()
        .childJvm("-Dvertx.disableDnsResolver=true", "-Djdk.net.hosts.file=" + hosts).start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d]
          - host: %s
            plaintext: block
            ports: [%d]
        """.formatted(rootPem, API, partner.httpsPort(), BLOCKED, partner.httpsPort()));
  }

  @AfterAll
  static void stop() throws Exception {
    if (egret != null) {
      egret.close();
    }
    if (partner != null) {
      partner.stop();
    }
  }

  /** What a client got: the status (of the CONNECT, when that was refused), body, Proxy-Status. */
  record Reply(int status, String body, String proxyStatus, String error) {
    static Reply failed(String error) {
      Matcher m = Pattern.compile("\\b(4\\d\\d|5\\d\\d)\\b").matcher(error);
      return new Reply(m.find() ? Integer.parseInt(m.group(1)) : 0, null, null, error);
    }

    static Reply ofJson(String line) throws IOException {
      JsonNode n = JSON.readTree(line);
      if (n.has("error")) {
        return failed(n.get("error").asText());
      }
      return new Reply(n.get("status").asInt(), n.get("body").asText(),
          n.get("proxyStatus").isNull() ? null : n.get("proxyStatus").asText(), null);
    }
  }

  /** The six cases every client must pass. */
  abstract static class Contract {
    abstract String name();

    abstract Reply get(String url) throws Exception;

    private String url(String scheme, String host, String path) {
      return scheme + "://" + host + ":" + partner.httpsPort() + "/" + name() + path;
    }

    private int seen(String path) {
      return partner.findAll(getRequestedFor(urlEqualTo("/" + name() + path))).size();
    }

    @Test
    void allowedHttpIsUpgradedToTls() throws Exception {
      Reply r = get(url("http", API, "/allowed-http"));
      assertThat(r.status()).as(String.valueOf(r)).isEqualTo(200);
      assertThat(r.body()).isEqualTo(BODY);
      // WireMock serves HTTPS only: the request reaching it proves the upgrade.
      assertThat(seen("/allowed-http")).isEqualTo(1);
    }

    @Test
    void allowedHttpsIsTunnelled() throws Exception {
      Reply r = get(url("https", API, "/allowed-https"));
      assertThat(r.status()).as(String.valueOf(r)).isEqualTo(200);
      assertThat(r.body()).isEqualTo(BODY);
      assertThat(seen("/allowed-https")).isEqualTo(1);
    }

    @Test
    void deniedHostOverHttpIs403() throws Exception {
      String host = "denied-" + name() + "-http.partner.test";
      Reply r = get(url("http", host, "/x"));
      assertThat(r.status()).as(String.valueOf(r)).isEqualTo(403);
      if (r.proxyStatus() != null) {
        assertThat(r.proxyStatus()).contains("egret").contains("error=http_request_denied");
      }
      egret.awaitLogLine(l -> l.contains(host) && l.contains("\"denied\""), Duration.ofSeconds(10));
    }

    @Test
    void deniedHostOverHttpsIsRefusedBeforeTheTunnel() throws Exception {
      String host = "denied-" + name() + "-https.partner.test";
      Reply r = get(url("https", host, "/x"));
      assertThat(r.status()).as(String.valueOf(r)).isEqualTo(403);
      assertThat(r.body()).isNull();
      egret.awaitLogLine(l -> l.contains(host) && l.contains("\"denied\""), Duration.ofSeconds(10));
    }

    @Test
    void plaintextBlockRuleRefusesHttp() throws Exception {
      Reply r = get(url("http", BLOCKED, "/blocked-http"));
      assertThat(r.status()).as(String.valueOf(r)).isEqualTo(403);
      assertThat(r.proxyStatus()).contains("error=http_request_denied");
      assertThat(r.body()).contains("plaintext");
      assertThat(seen("/blocked-http")).isZero();
    }

    @Test
    void plaintextBlockRuleLetsHttpsThrough() throws Exception {
      Reply r = get(url("https", BLOCKED, "/blocked-https"));
      assertThat(r.status()).as(String.valueOf(r)).isEqualTo(200);
      assertThat(r.body()).isEqualTo(BODY);
      assertThat(seen("/blocked-https")).isEqualTo(1);
    }
  }

  /** Runs a client program with only the proxy variables set; returns its stdout. */
  static String runClient(List<String> command, Map<String, String> env) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(command);
    pb.environment().clear();
    pb.environment().put("PATH", "/usr/local/bin:/usr/bin:/bin");
    pb.environment().put("HOME", dir.toString());
    String proxy = "http://127.0.0.1:" + egret.proxyPort();
    for (String v : List.of("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")) {
      pb.environment().put(v, proxy);
    }
    pb.environment().putAll(env);
    Process p = pb.redirectErrorStream(false).start();
    byte[] out = p.getInputStream().readAllBytes();
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).as(command + " finished").isTrue();
    String text = new String(out, StandardCharsets.UTF_8).strip();
    assertThat(text).as(command + " printed nothing; stderr: " + err).isNotEmpty();
    return text;
  }

  private static String resource(String name) throws Exception {
    return Path.of(ClientsTest.class.getClassLoader().getResource(name).toURI()).toString();
  }

  private static void need(String what, boolean present, String how) {
    if (!present) {
      System.err.println("ClientsTest: skipping " + what + ": " + how);
    }
    Assumptions.assumeTrue(present, what + " is not available: " + how);
  }

  /** curl as a forward proxy client: absolute-form for http://, CONNECT for https://. */
  static Reply curl(String url, boolean tunnel) throws Exception {
    need("curl", Files.isExecutable(Path.of("/usr/bin/curl")), ".ci/run installs curl");
    Path headers = Files.createTempFile(dir, "curl", ".h");
    Path body = Files.createTempFile(dir, "curl", ".b");
    List<String> cmd = new ArrayList<>(List.of("curl", "-sS", "--max-time", "10",
        "-x", "http://127.0.0.1:" + egret.proxyPort(), "--cacert", rootPem.toString(),
        "-D", headers.toString(), "-o", body.toString(), "-w", "%{http_code} %{http_connect}"));
    if (tunnel) {
      cmd.add("--proxytunnel");
    }
    cmd.add(url);
    Process p = new ProcessBuilder(cmd).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
    String[] codes = out.split(" ");
    int code = Integer.parseInt(codes[0]);
    int connect = Integer.parseInt(codes[1]);
    if (connect != 0 && connect != 200) {
      return new Reply(connect, null, null, err);
    }
    if (code == 0) {
      return Reply.failed(err);
    }
    String proxyStatus = null;
    // With a tunnel, -D holds the CONNECT's answer first; the last header block is the response.
    String[] blocks = Files.readString(headers).split("\r\n\r\n");
    for (String line : blocks[blocks.length - 1].split("\r\n")) {
      if (line.regionMatches(true, 0, "Proxy-Status:", 0, 13)) {
        proxyStatus = line.substring(13).strip();
      }
    }
    return new Reply(code, Files.readString(body), proxyStatus, null);
  }

  @Nested
  class Curl extends Contract {
    @Override
    String name() {
      return "curl";
    }

    @Override
    Reply get(String url) throws Exception {
      return curl(url, false);
    }
  }

  @Nested
  class CurlProxyTunnel extends Contract {
    @Override
    String name() {
      return "curl-proxytunnel";
    }

    @Override
    Reply get(String url) throws Exception {
      return curl(url, true);
    }

    @Test
    @Override
    void allowedHttpIsUpgradedToTls() throws Exception {
      super.allowedHttpIsUpgradedToTls();
    }

    @Test
    @Override
    void plaintextBlockRuleRefusesHttp() throws Exception {
      super.plaintextBlockRuleRefusesHttp();
    }
  }

  @Nested
  class JdkHttpClient extends Contract {
    @Override
    String name() {
      return "jdk";
    }

    @Override
    Reply get(String url) throws Exception {
      HttpClient client = HttpClient.newBuilder()
          .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", egret.proxyPort())))
          .sslContext(root.clientContext())
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5))
          .build();
      try {
        HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(url))
            .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), r.body(), r.headers().firstValue("proxy-status").orElse(null), null);
      } catch (IOException e) {
        return Reply.failed(String.valueOf(e.getMessage()));
      }
    }
  }

  @Nested
  class PythonRequests extends Contract {
    @Override
    String name() {
      return "python-requests";
    }

    @Override
    Reply get(String url) throws Exception {
      boolean present = Files.isExecutable(Path.of("/usr/bin/python3"))
          && new ProcessBuilder("/usr/bin/python3", "-c", "import requests").start().waitFor() == 0;
      need("Python requests", present, ".ci/run installs Debian's python3-requests");
      return Reply.ofJson(runClient(List.of("/usr/bin/python3", resource("clients/requests_client.py"),
          url, rootPem.toString()), Map.of()));
    }
  }

  @Nested
  class NodeUndici extends Contract {
    @Override
    String name() {
      return "undici";
    }

    @Override
    Reply get(String url) throws Exception {
      Path undici = Path.of("..", "node_modules", "undici", "package.json");
      need("Node.js undici", Files.isExecutable(Path.of("/usr/bin/node")) && Files.exists(undici),
          ".ci/run installs nodejs and npm's undici into node_modules/ at the top of the repo");
      return Reply.ofJson(runClient(List.of("node", resource("clients/undici_client.mjs"), url),
          Map.of("NODE_EXTRA_CA_CERTS", rootPem.toString())));
    }

    @Test
    @Override
    void allowedHttpIsUpgradedToTls() throws Exception {
      super.allowedHttpIsUpgradedToTls();
    }

    @Test
    @Override
    void plaintextBlockRuleRefusesHttp() throws Exception {
      super.plaintextBlockRuleRefusesHttp();
    }
  }
}
