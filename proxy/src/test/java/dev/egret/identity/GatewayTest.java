package dev.egret.identity;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static com.github.tomakehurst.wiremock.core.WireMockConfiguration.options;
import static org.assertj.core.api.Assertions.assertThat;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Authenticator;
import java.net.InetSocketAddress;
import java.net.PasswordAuthentication;
import java.net.ProxySelector;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Gateway mode on real sockets: one Egret with two token clients whose allowlists are disjoint
 * (a plain proxy port), one with an HTTPS proxy port that verifies SPIFFE SVIDs and names a
 * client for connections with no identity, and a sidecar for comparison. The clients are the
 * real ones: curl (HTTP and HTTPS proxies, {@code --proxy-user}, {@code --proxy-cert}), the
 * JDK's HttpClient with a proxy Authenticator, Python requests and Node's undici ProxyAgent;
 * raw sockets where the test must see exactly what reaches a destination.
 */
class GatewayTest {
  static {
    // The JDK's HttpClient refuses Basic for CONNECT tunnels unless this list leaves it out
    // (since 8u111, so that a credential never crosses a cleartext proxy hop unasked). Gateway
    // clients authenticate to the proxy with Basic on a network the operator trusts (or over
    // listen.proxyTls), so the test clears the list as such a task would. The JDK reads it once,
    // when the first HttpClient that authenticates loads: in a full run another test class may
    // come first, so surefire's argLine sets it too (proxy/pom.xml); this line is for an IDE run.
    System.setProperty("jdk.http.auth.tunneling.disabledSchemes", "");
  }

  private static final String A = "a.partner.test";
  private static final String B = "b.partner.test";
  private static final String RAW = "raw.partner.test";
  private static final String BODY = "{\"partner\":\"ok\"}";
  private static final String ALPHA_TOKEN = "alpha-0123456789-secret";
  private static final String BRAVO_TOKEN = "bravo-9876543210-secret";
  private static final String ALPHA_ID = "spiffe://test.example/ns/a/sa/alpha";

  @TempDir static Path dir;
  static TestCert root;
  static Path rootPem;
  static TestCert.PemFiles svid;
  static TestCert.PemFiles strangerSvid;
  static TestCert.PemFiles untrusted;
  static WireMockServer partner;
  static ServerSocket raw;
  static final AtomicInteger rawAccepted = new AtomicInteger();
  static EgretFixture gateway;
  static EgretFixture https;
  static EgretFixture sidecar;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Gateway Test Root").issue();
    rootPem = root.writePem(dir.resolve("root")).cert();
    TestCert leaf = root.leaf(A).dns(A, B).issue();
    partner = new WireMockServer(options().bindAddress("127.0.0.1").httpDisabled(true)
        .dynamicHttpsPort()
        .keystorePath(leaf.writePkcs12(dir).toString()).keystoreType("PKCS12")
        .keystorePassword(TestCert.PASSWORD).keyManagerPassword(TestCert.PASSWORD));
    partner.start();
    partner.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withBody(BODY)));
    raw = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
    Thread acceptor = new Thread(() -> {
      while (!raw.isClosed()) {
        try (Socket s = raw.accept()) {
          rawAccepted.incrementAndGet();
        } catch (java.io.IOException e) {
          return;
        }
      }
    }, "raw-destination");
    acceptor.setDaemon(true);
    acceptor.start();

    TestCert clientsCa = TestPki.rootCa("Gateway Clients CA").issue();
    Path clientsCaPem = clientsCa.writePem(dir.resolve("clients-ca")).cert();
    svid = clientsCa.leaf("alpha-svid").svid(ALPHA_ID).issue().writePem(dir.resolve("svid"));
    strangerSvid = clientsCa.leaf("stranger-svid").svid("spiffe://test.example/ns/x/sa/stranger")
        .issue().writePem(dir.resolve("stranger"));
    untrusted = TestPki.rootCa("Someone Else CA").issue().leaf("alpha-forged")
        .svid(ALPHA_ID).issue().writePem(dir.resolve("forged"));
    TestCert.PemFiles proxyCert = root.leaf("127.0.0.1").issue().writePem(dir.resolve("proxy"));

    Map<String, String> hosts = Map.of(A, "127.0.0.1", B, "127.0.0.1", RAW, "127.0.0.1");
    String common = """
        version: 1
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        """.formatted(rootPem);
    gateway = EgretFixture.builder().observed().hosts(hosts)
        .start(Files.createDirectories(dir.resolve("gateway")), common + """
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        allow: []
        identity: {onMissing: deny}
        clients:
          - name: alpha
            match: {tokens: ["%s"]}
            allow:
              - {host: %s, ports: [%d]}
              - {host: %s, ports: [%d]}
          - name: bravo
            match: {tokens: ["%s"]}
            allow:
              - {host: %s, ports: [%d]}
        """.formatted(hash(ALPHA_TOKEN), A, partner.httpsPort(), RAW, raw.getLocalPort(),
            hash(BRAVO_TOKEN), B, partner.httpsPort()));
    https = EgretFixture.builder().observed().hosts(hosts)
        .start(Files.createDirectories(dir.resolve("https")), common + """
        listen:
          proxy: 127.0.0.1:0
          admin: 127.0.0.1:0
          proxyTls: {cert: %s, key: %s, clientCa: [%s], clientAuth: optional}
        allow: []
        identity: {onMissing: bravo}
        clients:
          - name: alpha
            match: {spiffe: ["%s"]}
            allow: [{host: %s, ports: [%d]}]
          - name: bravo
            match: {tokens: ["%s"]}
            allow: [{host: %s, ports: [%d]}]
        """.formatted(proxyCert.cert(), proxyCert.key(), clientsCaPem, ALPHA_ID, A,
            partner.httpsPort(), hash(BRAVO_TOKEN), B, partner.httpsPort()));
    sidecar = EgretFixture.builder().observed().hosts(hosts)
        .start(Files.createDirectories(dir.resolve("sidecar")), common + """
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        allow:
          - {host: %s, ports: [%d]}
        """.formatted(A, partner.httpsPort()));
  }

  @AfterAll
  static void stop() throws Exception {
    for (AutoCloseable c : new AutoCloseable[] {gateway, https, sidecar}) {
      if (c != null) {
        c.close();
      }
    }
    if (partner != null) {
      partner.stop();
    }
    if (raw != null) {
      raw.close();
    }
  }

  static String hash(String token) throws Exception {
    return "sha256:" + HexFormat.of().formatHex(
        MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
  }

  // ---- two clients, disjoint allowlists, on one Egret --------------------------------------

  @Test
  void eachTokenClientReachesItsOwnHostAndNotTheOthers() throws Exception {
    assertThat(curl(gatewayProxy(), List.of("--proxy-user", "alpha:" + ALPHA_TOKEN),
        url("https", A, "/alpha-own")).status()).isEqualTo(200);
    assertThat(curl(gatewayProxy(), List.of("--proxy-user", "alpha:" + ALPHA_TOKEN),
        url("https", B, "/alpha-other")).status()).isEqualTo(403);
    assertThat(curl(gatewayProxy(), List.of("--proxy-user", "bravo:" + BRAVO_TOKEN),
        url("https", B, "/bravo-own")).status()).isEqualTo(200);
    assertThat(curl(gatewayProxy(), List.of("--proxy-user", "bravo:" + BRAVO_TOKEN),
        url("https", A, "/bravo-other")).status()).isEqualTo(403);
    // http:// too: absolute-form, upgraded for the client whose rule admits it.
    assertThat(curl(gatewayProxy(), List.of("--proxy-user", "alpha:" + ALPHA_TOKEN),
        url("http", A, "/alpha-upgraded")).status()).isEqualTo(200);
    assertThat(seen("/alpha-own") + seen("/bravo-own") + seen("/alpha-upgraded")).isEqualTo(3);
    assertThat(seen("/alpha-other") + seen("/bravo-other")).isZero();
    // The credential stops at Egret: the third party never sees Proxy-Authorization.
    assertThat(partner.findAll(getRequestedFor(urlEqualTo("/alpha-upgraded"))).get(0)
        .containsHeader("Proxy-Authorization")).isFalse();
    String line = awaitLog(gateway, "/alpha-upgraded");
    assertThat(line).contains("\"identity\":\"alpha\"");
    assertThat(awaitLog(gateway, B + ":" + partner.httpsPort() + "\"")).contains("\"client\"");
  }

  @Test
  void plainHttpInsideATunnelKeepsTheConnectsClient() throws Exception {
    // curl --proxytunnel sends CONNECT for an http:// URL and the request inside: the request
    // carries no Proxy-Authorization, and is still alpha's.
    Reply r = curl(gatewayProxy(), List.of("--proxytunnel", "--proxy-user",
        "alpha:" + ALPHA_TOKEN), url("http", A, "/tunnelled-alpha"));
    assertThat(r.status()).as(r.toString()).isEqualTo(200);
    assertThat(seen("/tunnelled-alpha")).isEqualTo(1);
    assertThat(awaitLog(gateway, "/tunnelled-alpha")).contains("\"identity\":\"alpha\"")
        .contains("\"origin\":\"tunnelled\"");
  }

  @Test
  void noIdentityIsAsked407WithABasicChallenge() throws Exception {
    RawReply r = rawConnect(gateway.proxyPort(), RAW + ":" + raw.getLocalPort(), null);
    assertThat(r.status()).isEqualTo(407);
    assertThat(r.header("proxy-authenticate")).isEqualTo("Basic realm=\"egret\"");
    assertThat(r.header("proxy-status")).contains("error=http_request_denied")
        .contains("no Proxy-Authorization token");
    assertThat(scrapeLine(gateway,
        "egret_identity_failures_total{reason=\"missing\",source=\"token\"}")).isNotNull();
  }

  @Test
  void aWrongTokenIs407AndNothingReachesTheDestination() throws Exception {
    int before = rawAccepted.get();
    String wrong = basic("alpha", ALPHA_TOKEN + "x");
    RawReply r = rawConnect(gateway.proxyPort(), RAW + ":" + raw.getLocalPort(), wrong);
    assertThat(r.status()).isEqualTo(407);
    assertThat(r.header("proxy-authenticate")).isEqualTo("Basic realm=\"egret\"");
    assertThat(r.raw()).doesNotContain(ALPHA_TOKEN);
    // Alpha's token under bravo's name is as wrong as any.
    assertThat(rawConnect(gateway.proxyPort(), RAW + ":" + raw.getLocalPort(),
        basic("bravo", ALPHA_TOKEN)).status()).isEqualTo(407);
    // The right token opens the same tunnel: the destination sees exactly that one connection.
    RawReply ok = rawConnect(gateway.proxyPort(), RAW + ":" + raw.getLocalPort(),
        basic("alpha", ALPHA_TOKEN));
    assertThat(ok.status()).isEqualTo(200);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (rawAccepted.get() == before && System.nanoTime() < deadline) {
      Thread.onSpinWait();
    }
    assertThat(rawAccepted.get()).isEqualTo(before + 1);
    assertThat(scrapeLine(gateway,
        "egret_identity_failures_total{reason=\"unknown\",source=\"token\"}")).isNotNull();
    for (String line : gateway.logLines()) {
      assertThat(line).doesNotContain(ALPHA_TOKEN);
    }
  }

  @Test
  void aMalformedProxyAuthorizationIs407Malformed() throws Exception {
    RawReply r = rawConnect(gateway.proxyPort(), RAW + ":" + raw.getLocalPort(),
        "Digest username=\"alpha\"");
    assertThat(r.status()).isEqualTo(407);
    assertThat(r.header("proxy-status")).contains("is not one Egret accepts");
    RawReply notBase64 = rawConnect(gateway.proxyPort(), RAW + ":" + raw.getLocalPort(),
        "Basic %%%");
    assertThat(notBase64.status()).isEqualTo(407);
    assertThat(scrapeLine(gateway,
        "egret_identity_failures_total{reason=\"malformed\",source=\"token\"}")).isNotNull();
  }

  @Test
  void jdkHttpClientAnswersTheChallengeWithBasic() throws Exception {
    HttpClient client = HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", gateway.proxyPort())))
        .authenticator(new Authenticator() {
          @Override
          protected PasswordAuthentication getPasswordAuthentication() {
            return getRequestorType() == RequestorType.PROXY
                ? new PasswordAuthentication("bravo", BRAVO_TOKEN.toCharArray()) : null;
          }
        })
        .sslContext(root.clientContext())
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build();
    for (String scheme : List.of("https", "http")) {
      HttpResponse<String> r = client.send(HttpRequest.newBuilder(
              URI.create(url(scheme, B, "/jdk-" + scheme))).timeout(Duration.ofSeconds(10))
          .build(), HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).as(scheme).isEqualTo(200);
      assertThat(r.body()).isEqualTo(BODY);
    }
    HttpResponse<String> denied = client.send(HttpRequest.newBuilder(
            URI.create(url("http", A, "/jdk-denied"))).timeout(Duration.ofSeconds(10)).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(denied.statusCode()).isEqualTo(403);
    assertThat(seen("/jdk-denied")).isZero();
  }

  @Test
  void pythonRequestsSendsTheTokenFromTheProxyUrl() throws Exception {
    boolean present = Files.isExecutable(Path.of("/usr/bin/python3"))
        && new ProcessBuilder("/usr/bin/python3", "-c", "import requests").start().waitFor() == 0;
    need("Python requests", present, ".ci/run installs Debian's python3-requests");
    String proxy = "http://alpha:" + ALPHA_TOKEN + "@127.0.0.1:" + gateway.proxyPort();
    String script = """
        import sys, requests
        p = {"http": sys.argv[1], "https": sys.argv[1]}
        for url in sys.argv[3:]:
            try:
                print(requests.get(url, proxies=p, verify=sys.argv[2], timeout=10).status_code)
            except requests.exceptions.ProxyError as e:
                print("proxy-error " + str(e)[:200])
        """;
    String out = run(List.of("/usr/bin/python3", "-c", script, proxy, rootPem.toString(),
        url("https", A, "/python-own"), url("http", A, "/python-upgraded"),
        url("https", B, "/python-other")), Map.of());
    String[] lines = out.split("\n");
    assertThat(lines[0]).isEqualTo("200");
    assertThat(lines[1]).isEqualTo("200");
    assertThat(lines[2]).contains("403");
    assertThat(seen("/python-own") + seen("/python-upgraded")).isEqualTo(2);
  }

  @Test
  void nodeUndiciProxyAgentSendsABearerToken() throws Exception {
    Path undici = Path.of("..", "node_modules", "undici", "package.json");
    need("Node.js undici", Files.isExecutable(Path.of("/usr/bin/node")) && Files.exists(undici),
        ".ci/run installs nodejs and npm's undici into node_modules/ at the top of the repo");
    String script = Path.of(GatewayTest.class.getClassLoader()
        .getResource("clients/gateway_undici_client.mjs").toURI()).toString();
    String proxy = "http://127.0.0.1:" + gateway.proxyPort();
    String own = run(List.of("node", script, proxy, BRAVO_TOKEN, url("https", B, "/undici-own")),
        Map.of("NODE_EXTRA_CA_CERTS", rootPem.toString()));
    assertThat(own).contains("\"status\":200");
    String wrong = run(List.of("node", script, proxy, "not-" + BRAVO_TOKEN,
        url("https", B, "/undici-wrong")), Map.of("NODE_EXTRA_CA_CERTS", rootPem.toString()));
    assertThat(wrong).contains("407");
    assertThat(seen("/undici-own")).isEqualTo(1);
    assertThat(seen("/undici-wrong")).isZero();
  }

  // ---- the HTTPS proxy port: SPIFFE SVIDs ----------------------------------------------------

  @Test
  void aSpiffeSvidWithAnEmptySubjectNamesItsClient() throws Exception {
    List<String> cert = List.of("--proxy-cert", svid.cert().toString(), "--proxy-key",
        svid.key().toString());
    Reply own = curl(httpsProxy(), cert, url("https", A, "/svid-own"));
    assertThat(own.status()).as(own.toString()).isEqualTo(200);
    assertThat(curl(httpsProxy(), cert, url("https", B, "/svid-other")).status()).isEqualTo(403);
    assertThat(seen("/svid-own")).isEqualTo(1);
    assertThat(seen("/svid-other")).isZero();
    assertThat(awaitLog(https, A + ":" + partner.httpsPort() + "\"")).contains("\"identity\":\"alpha\"");
  }

  @Test
  void noCertificateGetsTheOnMissingClient() throws Exception {
    assertThat(curl(httpsProxy(), List.of(), url("https", B, "/onmissing-own")).status())
        .isEqualTo(200);
    assertThat(curl(httpsProxy(), List.of(), url("https", A, "/onmissing-other")).status())
        .isEqualTo(403);
    assertThat(seen("/onmissing-own")).isEqualTo(1);
  }

  @Test
  void aCertificateAndATokenOfDifferentClientsAre403() throws Exception {
    Reply r = curl(httpsProxy(), List.of("--proxy-cert", svid.cert().toString(),
        "--proxy-key", svid.key().toString(), "--proxy-user", "bravo:" + BRAVO_TOKEN),
        url("https", B, "/conflict"));
    assertThat(r.status()).isEqualTo(403);
    assertThat(seen("/conflict")).isZero();
    assertThat(scrapeLine(https,
        "egret_identity_failures_total{reason=\"conflict\",source=\"token\"}")).isNotNull();
  }

  @Test
  void aVerifiedCertificateNamingNoClientIs403NotOnMissing() throws Exception {
    Reply r = curl(httpsProxy(), List.of("--proxy-cert", strangerSvid.cert().toString(),
        "--proxy-key", strangerSvid.key().toString()), url("https", B, "/stranger"));
    assertThat(r.status()).isEqualTo(403);
    assertThat(seen("/stranger")).isZero();
    assertThat(scrapeLine(https,
        "egret_identity_failures_total{reason=\"unknown\",source=\"certificate\"}")).isNotNull();
  }

  @Test
  void anUntrustedCertificateRefusesTheHandshake() throws Exception {
    Reply r = curl(httpsProxy(), List.of("--proxy-cert", untrusted.cert().toString(),
        "--proxy-key", untrusted.key().toString()), url("https", A, "/forged"));
    assertThat(r.status()).as(r.toString()).isZero();
    assertThat(seen("/forged")).isZero();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    String line = null;
    while (line == null && System.nanoTime() < deadline) {
      line = scrapeLine(https,
          "egret_identity_failures_total{reason=\"untrusted\",source=\"certificate\"}");
    }
    assertThat(line).isNotNull();
  }

  // ---- metrics: the client label in gateway mode only ----------------------------------------

  @Test
  void theClientLabelAppearsInGatewayModeOnly() throws Exception {
    assertThat(curl("http://127.0.0.1:" + sidecar.proxyPort(), List.of(),
        url("https", A, "/sidecar")).status()).isEqualTo(200);
    assertThat(curl(gatewayProxy(), List.of("--proxy-user", "alpha:" + ALPHA_TOKEN),
        url("https", A, "/labels")).status()).isEqualTo(200);
    awaitLog(sidecar, A + ":" + partner.httpsPort() + "\"");
    String sidecarScrape = sidecar.scrape();
    String gatewayScrape = gateway.scrape();
    Map<String, Set<String>> side = labelNames(sidecarScrape);
    Map<String, Set<String>> gate = labelNames(gatewayScrape);
    assertThat(side.get("egret_requests_total"))
        .containsExactly("destination", "error", "kind", "outcome");
    assertThat(side.get("egret_request_duration_seconds_count"))
        .containsExactly("destination", "kind");
    assertThat(side.get("egret_bytes_total")).containsExactly("destination", "direction");
    assertThat(sidecarScrape).doesNotContain("client=").doesNotContain("egret_identity_failures");
    assertThat(gate.get("egret_requests_total"))
        .containsExactly("client", "destination", "error", "kind", "outcome");
    assertThat(gate.get("egret_request_duration_seconds_count"))
        .containsExactly("client", "destination", "kind");
    assertThat(gate.get("egret_bytes_total")).containsExactly("client", "destination",
        "direction");
    // Every other family has the same labels in both modes.
    for (String family : side.keySet()) {
      if (gate.containsKey(family) && !family.startsWith("egret_requests_total")
          && !family.startsWith("egret_request_duration") && !family.equals("egret_bytes_total")) {
        assertThat(gate.get(family)).as(family).isEqualTo(side.get(family));
      }
    }
    assertThat(gatewayScrape).contains("client=\"alpha\"");
    for (String line : sidecar.logLines()) {
      assertThat(line).doesNotContain("\"identity\"");
    }
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private static Map<String, Set<String>> labelNames(String scrape) {
    Map<String, Set<String>> out = new java.util.HashMap<>();
    Pattern sample = Pattern.compile("^([a-z_:]+)\\{([^}]*)\\} .*$");
    Pattern label = Pattern.compile("([a-z_]+)=\"");
    for (String line : scrape.split("\n")) {
      Matcher m = sample.matcher(line);
      if (m.matches() && line.startsWith("egret_")) {
        Set<String> names = new TreeSet<>();
        Matcher l = label.matcher(m.group(2));
        while (l.find()) {
          names.add(l.group(1));
        }
        names.remove("le");
        out.merge(m.group(1), names, (x, y) -> {
          x.addAll(y);
          return x;
        });
      }
    }
    return out;
  }

  private static String scrapeLine(EgretFixture egret, String prefix) throws Exception {
    for (String line : egret.scrape().split("\n")) {
      if (line.startsWith(prefix)) {
        return line;
      }
    }
    return null;
  }

  private static String awaitLog(EgretFixture egret, String fragment) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    while (System.nanoTime() < deadline) {
      // One snapshot for the scan and the count to wait past (a line arriving between the two
      // would otherwise be waited past unseen).
      java.util.List<String> lines = egret.logLines();
      for (String line : lines) {
        if (line.contains(fragment)) {
          return line;
        }
      }
      egret.awaitLogLines(lines.size() + 1);
    }
    throw new AssertionError("no access-log line contains " + fragment + ": " + egret.logLines());
  }

  private static String gatewayProxy() {
    return "http://127.0.0.1:" + gateway.proxyPort();
  }

  private static String httpsProxy() {
    return "https://127.0.0.1:" + https.proxyPort();
  }

  private static String url(String scheme, String host, String path) {
    return scheme + "://" + host + ":" + partner.httpsPort() + path;
  }

  private static int seen(String path) {
    return partner.findAll(getRequestedFor(urlEqualTo(path))).size();
  }

  private static String basic(String user, String token) {
    return "Basic " + Base64.getEncoder().encodeToString(
        (user + ":" + token).getBytes(StandardCharsets.UTF_8));
  }

  record Reply(int status, String err) {}

  /** curl through {@code proxy}; the status is the CONNECT's when that was refused. */
  private static Reply curl(String proxy, List<String> extra, String url) throws Exception {
    need("curl", Files.isExecutable(Path.of("/usr/bin/curl")), ".ci/run installs curl");
    List<String> cmd = new ArrayList<>(List.of("/usr/bin/curl", "-sS", "--max-time", "10",
        "-x", proxy, "--proxy-cacert", rootPem.toString(), "--cacert", rootPem.toString(),
        "-o", "/dev/null", "-w", "%{http_code} %{http_connect}"));
    cmd.addAll(extra);
    cmd.add(url);
    Process p = new ProcessBuilder(cmd).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
    String[] codes = out.split(" ");
    int code = Integer.parseInt(codes[0]);
    int connect = Integer.parseInt(codes[1]);
    return new Reply(connect != 0 && connect != 200 ? connect : code, err);
  }

  record RawReply(int status, String raw) {
    String header(String name) {
      for (String line : raw.split("\r\n")) {
        int colon = line.indexOf(':');
        if (colon > 0 && line.substring(0, colon).equalsIgnoreCase(name)) {
          return line.substring(colon + 1).strip();
        }
      }
      return null;
    }
  }

  /** A CONNECT on a raw socket, with {@code authorization} as Proxy-Authorization if not null. */
  private static RawReply rawConnect(int port, String authority, String authorization)
      throws Exception {
    try (Socket s = new Socket("127.0.0.1", port)) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write(("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n"
          + (authorization == null ? "" : "Proxy-Authorization: " + authorization + "\r\n")
          + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      InputStream in = s.getInputStream();
      StringBuilder b = new StringBuilder();
      int c;
      while (!b.toString().endsWith("\r\n\r\n") && (c = in.read()) >= 0) {
        b.append((char) c);
      }
      String head = b.toString();
      return new RawReply(Integer.parseInt(head.substring(9, 12)), head);
    }
  }

  private static String run(List<String> command, Map<String, String> env) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(command);
    pb.environment().clear();
    pb.environment().put("PATH", "/usr/local/bin:/usr/bin:/bin");
    pb.environment().put("HOME", dir.toString());
    pb.environment().putAll(env);
    Process p = pb.start();
    byte[] out = p.getInputStream().readAllBytes();
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).as(command + " finished").isTrue();
    String text = new String(out, StandardCharsets.UTF_8).strip();
    assertThat(text).as(command + " printed nothing; stderr: " + err).isNotEmpty();
    return text;
  }

  private static void need(String what, boolean present, String how) {
    Assumptions.assumeTrue(present, what + " is not available: " + how);
  }
}
