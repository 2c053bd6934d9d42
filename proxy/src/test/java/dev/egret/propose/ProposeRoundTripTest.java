package dev.egret.propose;

import static dev.egret.testing.EgretCommand.egret;

import dev.egret.testing.EgretCommand.Result;
import dev.egret.cli.Egret;
import dev.egret.listener.RequestTargets;
import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.core.WireMockConfiguration.options;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.tomakehurst.wiremock.WireMockServer;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.EgretConfig;
import dev.egret.policy.Allowlist;
import dev.egret.policy.Verdict;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code egret propose} round trip: a real Egret in {@code mode: report} carries upgrades,
 * tunnels and hops its config would deny, to WireMock over HTTPS; its access log becomes a
 * proposal, which passes {@code egret check}; a new Egret on the proposal (enforcing) admits
 * every hop of that log again, and still refuses what was denied and not seen.
 */
class ProposeRoundTripTest {
  private static final String API = "api.partner.example";
  private static final List<String> CRM = List.of("eu1.crm.example.com", "eu2.crm.example.com",
      "na1.crm.example.com");
  private static final List<String> PAGES = List.of("a.github.io", "b.github.io");
  private static final String PASTE = "x.pastebin.example";
  private static final String NEVER = "zz.crm.example.com"; // under the folded parent, never seen

  @TempDir static Path dir;
  static TestCert root;
  static WireMockServer partner;
  static Map<String, String> hosts;
  static String rootPem;
  static List<String> reportLog;

  @BeforeAll
  static void observeInReportMode() throws Exception {
    root = TestPki.rootCa("Propose Root").issue();
    List<String> names = new ArrayList<>(List.of(API, PASTE, NEVER, "c.github.io",
        "other.partner.example", "example.com"));
    names.addAll(CRM);
    names.addAll(PAGES);
    TestCert leaf = root.leaf(API).dns(names.toArray(String[]::new)).issue();
    partner = new WireMockServer(options().bindAddress("127.0.0.1").httpDisabled(true)
        .dynamicHttpsPort()
        .keystorePath(leaf.writePkcs12(dir).toString()).keystoreType("PKCS12")
        .keystorePassword(TestCert.PASSWORD).keyManagerPassword(TestCert.PASSWORD));
    partner.start();
    partner.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withBody("ok")));
    rootPem = root.writePem(dir).cert().getFileName().toString();
    java.util.HashMap<String, String> h = new java.util.HashMap<>();
    names.forEach(n -> h.put(n, "127.0.0.1"));
    hosts = Map.copyOf(h);

    try (EgretFixture egret = EgretFixture.builder().observed().hosts(hosts)
        .start(dir, reportConfig())) {
      int p = partner.httpsPort();
      HttpClient client = client(egret.proxyPort());
      // Allowed by the report config's rule: an upgrade.
      send(client, "GET", "http://" + API + ":" + p + "/v1/orders/17");
      // Reported: a method the rule does not allow, through an upgrade.
      send(client, "POST", "http://" + API + ":" + p + "/v1/orders");
      // Reported: tunnels to hosts no rule names, two of them public-suffix neighbours.
      for (String page : PAGES) {
        tunnel(egret.proxyPort(), page + ":" + p);
      }
      // Reported: three hosts under one registrable domain, by upgrade and by tunnel.
      send(client, "GET", "http://" + CRM.get(0) + ":" + p + "/services/data/v60.0/query");
      tunnel(egret.proxyPort(), CRM.get(1) + ":" + p);
      send(client, "PATCH", "http://" + CRM.get(2) + ":" + p + "/services/data/v60.0/sobjects/1");
      // Reported: denied by the deny list.
      tunnel(egret.proxyPort(), PASTE + ":" + p);
      reportLog = egret.awaitLogLines(8);
    }
    assertThat(reportLog).allSatisfy(l -> assertThat(l).doesNotContain("\"outcome\":\"denied\""));
    assertThat(reportLog).filteredOn(l -> l.contains("\"outcome\":\"reported\"")).hasSize(7);
  }

  @AfterAll
  static void stop() {
    partner.stop();
  }

  private static String reportConfig() {
    return """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        mode: report
        plaintext: block
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d]
            methods: [GET]
            plaintext: upgrade
          - host: unused.partner.example
        deny:
          - host: "*.pastebin.example"
        """.formatted(rootPem, API, partner.httpsPort());
  }

  @Test
  void theProposalPassesCheckAndANewEgretAdmitsEveryHopOfTheLog() throws Exception {
    Path log = Files.write(dir.resolve("access.log"), withNoise(reportLog));
    Path reportFile = Files.writeString(dir.resolve("report.yaml"), reportConfig());
    Result r = egret("propose", "--config", reportFile.toString(), "--group", "3", log.toString());
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.err()).contains("8 hops, 2 lines skipped (not Egret's access log)");
    String proposal = r.out();
    // FILE first, as written, with its unused rule marked; the proposals after its rules.
    assertThat(proposal).startsWith("version: 1\n");
    assertThat(proposal).contains("  # egret propose: no hop in the log matched this rule\n"
        + "  - host: unused.partner.example\n");
    assertThat(proposal.indexOf("proposed by egret propose")).isLessThan(proposal.indexOf("deny:"));
    assertThat(proposal).contains("- host: \"**.crm.example.com\"").contains("folds 3 hosts, most hops: ")
        .contains("- host: \"a.github.io\"").contains("- host: \"b.github.io\"")
        .doesNotContain("**.github.io")
        .contains("not proposed (1 hop): " + PASTE);
    Path proposed = Files.writeString(dir.resolve("proposed.yaml"), proposal);
    Result check = egret("check", proposed.toString());
    assertThat(check.code()).as(check.err()).isZero();

    // The review step of the README: switch the mode, then enforce.
    String enforced = proposal.replace("\nmode: report\n", "\nmode: enforce\n");
    assertThat(enforced).isNotEqualTo(proposal);
    try (EgretFixture egret = EgretFixture.builder().observed().hosts(hosts).start(dir, enforced)) {
      HttpClient client = client(egret.proxyPort());
      List<String> replayed = new ArrayList<>();
      for (String line : reportLog) {
        JsonNode hop = new ObjectMapper().readTree(line);
        replayed.add(replay(client, egret.proxyPort(), hop));
      }
      List<String> newLog = egret.awaitLogLines(reportLog.size());
      for (int i = 0; i < newLog.size(); i++) {
        JsonNode hop = new ObjectMapper().readTree(newLog.get(i));
        boolean pastebin = hop.get("url").asText().contains(PASTE);
        assertThat(hop.get("outcome").asText()).as(newLog.get(i))
            .isEqualTo(pastebin ? "denied" : "allowed");
      }
      assertThat(replayed).filteredOn(s -> s.equals("200")).hasSize(reportLog.size() - 1);

      // What was denied before and not seen stays denied (and never leaves Egret).
      int p = partner.httpsPort();
      for (String probe : List.of("c.github.io:" + p, "other.partner.example:" + p,
          "example.com:" + p, API + ":" + (p - 1))) {
        assertThat(tunnel(egret.proxyPort(), probe)).as(probe).isEqualTo("refused");
      }
      assertThat(send(client, "GET", "http://" + API + ":" + (p - 1) + "/")).isEqualTo("refused");
      // A host under the folded parent is admitted: that is what --group asks for.
      assertThat(tunnel(egret.proxyPort(), NEVER + ":" + p)).isEqualTo("200");
    }
  }

  @Test
  void withoutConfigEverySeenDestinationGetsARuleAndNothingElse() throws Exception {
    Path log = Files.write(dir.resolve("access-only.log"), reportLog);
    Result r = egret("propose", "--group", "3", log.toString());
    assertThat(r.code()).as(r.err()).isZero();
    Path proposed = Files.writeString(dir.resolve("standalone.yaml"), r.out());
    assertThat(egret("check", proposed.toString()).code()).isZero();
    EgretConfig c = ConfigCompiler.load(proposed);
    Allowlist a = c.allowlist();
    for (String line : reportLog) {
      JsonNode hop = new ObjectMapper().readTree(line);
      String method = hop.get("method").asText();
      assertThat(a.decide(RequestTargets.target(method, hop.get("url").asText()).target()).verdict())
          .as(line).isEqualTo(Verdict.ALLOW);
    }
    int p = partner.httpsPort();
    for (String probe : List.of("c.github.io:" + p, "other.partner.example:" + p,
        "example.com:" + p, API + ":443", CRM.get(0) + ":443")) {
      assertThat(a.decide(RequestTargets.target("CONNECT", probe).target()).verdict()).as(probe)
          .isEqualTo(Verdict.DENY);
    }
    // Plain http:// only where it was seen: the top level blocks, those rules upgrade.
    assertThat(r.out()).contains("plaintext: block");
    assertThat(a.decide(RequestTargets.target("GET", "http://a.github.io:" + p + "/").target())
        .verdict()).isEqualTo(Verdict.DENY);
    assertThat(a.decide(RequestTargets.target("GET", "http://" + NEVER + ":" + p + "/").target())
        .verdict()).isEqualTo(Verdict.ALLOW);
    Result bad = egret("propose", "--group", "many", log.toString());
    assertThat(bad.code()).isEqualTo(2);
    assertThat(bad.err()).contains("--group needs a number of hosts, 2 or more (got 'many')");
    assertThat(r.out()).contains("methods GET 1, PATCH 1")
        .contains("paths /services/data 2");
  }

  /** Other containers' output interleaved with Egret's, as a log shipper collects it. */
  private static List<String> withNoise(List<String> log) {
    List<String> out = new ArrayList<>();
    out.add("Picked up JAVA_TOOL_OPTIONS: -Xmx256m");
    out.addAll(log.subList(0, 3));
    out.add("{\"level\":\"info\",\"msg\":\"app started\"}");
    out.addAll(log.subList(3, log.size()));
    return out;
  }

  private static String replay(HttpClient client, int proxyPort, JsonNode hop) throws Exception {
    String url = hop.get("url").asText();
    if (hop.get("kind").asText().equals("tunnel")) {
      return tunnel(proxyPort, url);
    }
    return send(client, hop.get("method").asText(), url);
  }

  /**
   * {@code CONNECT authority}, then TLS to the partner inside and one {@code GET /} with {@code
   * Connection: close}, so the tunnel ends (and is logged) when this returns. Returns the
   * partner's status, or "refused" when Egret did not open the tunnel.
   */
  private static String tunnel(int proxyPort, String authority) throws Exception {
    try (java.net.Socket s = new java.net.Socket("127.0.0.1", proxyPort)) {
      s.setSoTimeout(15_000);
      s.getOutputStream().write(("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority
          + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      String head = head(s.getInputStream());
      if (!head.startsWith("HTTP/1.1 200")) {
        return head.startsWith("HTTP/1.1 403") ? "refused" : head;
      }
      String host = authority.substring(0, authority.lastIndexOf(':'));
      int port = Integer.parseInt(authority.substring(authority.lastIndexOf(':') + 1));
      try (javax.net.ssl.SSLSocket tls = (javax.net.ssl.SSLSocket) root.clientContext()
          .getSocketFactory().createSocket(s, host, port, true)) {
        javax.net.ssl.SSLParameters params = tls.getSSLParameters();
        params.setEndpointIdentificationAlgorithm("HTTPS");
        tls.setSSLParameters(params);
        tls.getOutputStream().write(("GET / HTTP/1.1\r\nHost: " + authority
            + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        tls.getOutputStream().flush();
        String answer = new String(tls.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        return answer.substring(9, 12);
      }
    }
  }

  private static String head(java.io.InputStream in) throws java.io.IOException {
    StringBuilder b = new StringBuilder();
    int c;
    while ((c = in.read()) >= 0) {
      b.append((char) c);
      if (b.length() >= 4 && b.substring(b.length() - 4).equals("\r\n\r\n")) {
        break;
      }
    }
    return b.toString();
  }

  private static String send(HttpClient client, String method, String url) throws Exception {
    HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(url))
        .method(method, HttpRequest.BodyPublishers.noBody()).timeout(Duration.ofSeconds(15)).build(),
        HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() == 403) {
      return "refused";
    }
    return String.valueOf(r.statusCode());
  }

  private static HttpClient client(int proxyPort) {
    return HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", proxyPort)))
        .sslContext(root.clientContext())
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5)).build();
  }

}
