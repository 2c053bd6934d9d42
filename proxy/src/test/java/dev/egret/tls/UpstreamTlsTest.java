package dev.egret.tls;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.KeyKind;
import dev.egret.testing.ReceivedRequest;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Upstream TLS end to end, held to the documented browser baseline: a JDK client sends
 * {@code http://NAME:PORT/} through a real Egret, which upgrades it to TLS on the same port
 * towards a {@link TlsTestServer} built for one case. A refusal must be a 502 with the right
 * {@code Proxy-Status} error and details that say why, and the upstream must have received no
 * request (no handshake even completed on its side). An accepted case must bring back the
 * server's body over the expected protocol, with the host <em>name</em> as SNI although Egret
 * connects to the resolved address.
 *
 * <p>All servers start once and one Egret serves them (a second one for {@code minVersion:
 * TLSv1.3}); every host name maps to 127.0.0.1 through the fixture's hosts file. Leaves share one
 * RSA key (a slot) because generating RSA keys is what makes such suites slow.
 */
class UpstreamTlsTest {
  private static final Duration WAIT = Duration.ofSeconds(10);
  private static final String LEAF_KEY = "upstream-tls-leaf";
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;

  static TestCert root;
  static TestCert intermediate;
  static TestCert stranger;
  static TestCert partnerCa;
  static TestCert clientCa;
  static TestCert rsaLeaf;
  static TestCert pinnedLeaf;

  /** Every upstream by host name; the same server is never shared by two tests. */
  static final Map<String, TlsTestServer> servers = new LinkedHashMap<>();
  /** Extra YAML lines for a host's allow rule (pins, trust, clientCert). */
  static final Map<String, String> ruleExtras = new LinkedHashMap<>();
  static final Map<String, TlsTestServer> servers13 = new LinkedHashMap<>();

  static EgretFixture egret;
  static EgretFixture egret13;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Upstream TLS Test Root").issue();
    intermediate = root.intermediate("Upstream TLS Test Intermediate").issue();
    stranger = TestPki.rootCa("Stranger Root").issue();
    partnerCa = TestPki.rootCa("Partner Private CA").issue();
    clientCa = TestPki.rootCa("Egret Client CA").issue();
    rsaLeaf = leaf(root, "rsa2048.tls.test").issue();

    // Refused for the certificate.
    serve("expired.tls.test", leaf(root, "expired.tls.test").expired().issue());
    serve("notyet.tls.test", leaf(root, "notyet.tls.test").notYetValid().issue());
    serve("wronghost.tls.test", leaf(root, "other.partner.test").issue());
    serve("ipsan.tls.test", root.leaf("127.0.0.1").keySlot(LEAF_KEY).issue());
    serve("selfsigned.tls.test", TestPki.rootCa("selfsigned.tls.test").dns("selfsigned.tls.test")
        .keySlot(LEAF_KEY).issue());
    serve("unknownroot.tls.test", leaf(stranger, "unknownroot.tls.test").issue());
    servers.put("nointermediate.tls.test", TlsTestServer.https(
        leaf(intermediate, "nointermediate.tls.test").issue()).name("nointermediate.tls.test")
        .withoutIntermediates().start());
    serve("sha1.tls.test", leaf(root, "sha1.tls.test").signature("SHA1withRSA").issue());
    serve("rsa1024.tls.test", root.leaf("rsa1024.tls.test").key(KeyKind.RSA_1024).issue());
    serve("pinmismatch.tls.test", leaf(root, "pinmismatch.tls.test").issue());
    ruleExtras.put("pinmismatch.tls.test", "pins: [\"" + stranger.spkiPin() + "\"]");
    serve("misplaced.tls.test", leaf(partnerCa, "misplaced.tls.test").issue());
    serve("replaced.tls.test", leaf(root, "replaced.tls.test").issue());
    ruleExtras.put("replaced.tls.test", "trust: [" + partnerCa.writePem(dir).cert() + "]");

    // Refused for the protocol or the cipher suites.
    serve("tls10.tls.test", b -> b.protocols("TLSv1"));
    serve("tls11.tls.test", b -> b.protocols("TLSv1.1"));
    serve("cbc.tls.test", b -> b.cipherSuites(TlsTestServer.CBC_ONLY));
    serve("null.tls.test", b -> b.cipherSuites(TlsTestServer.NULL_ONLY));
    serve("dhe.tls.test", b -> b.cipherSuites(TlsTestServer.DHE_ONLY));
    serve("staticrsa.tls.test", b -> b.cipherSuites(TlsTestServer.STATIC_RSA_ONLY));
    serve("3des.tls.test", b -> b.cipherSuites(TlsTestServer.TRIPLE_DES_ONLY));

    servers.put("plain.tls.test", TlsTestServer.plain().name("plain.tls.test").start());

    // Accepted.
    serve("rsa2048.tls.test", rsaLeaf);
    serve("p256.tls.test", leaf(root, "p256.tls.test").key(KeyKind.EC_P256).issue());
    serve("chain.tls.test", leaf(intermediate, "chain.tls.test").issue());
    serve("tls12.tls.test", b -> b.protocols("TLSv1.2"));
    serve("tls13.tls.test", b -> b.protocols("TLSv1.3"));
    serve("pinroot.tls.test", leaf(root, "pinroot.tls.test").issue());
    ruleExtras.put("pinroot.tls.test", "pins: [\"" + stranger.spkiPin() + "\", \""
        + root.spkiPin() + "\"]");
    pinnedLeaf = root.leaf("pinleaf.tls.test").keySlot("pinned-leaf").issue();
    serve("pinleaf.tls.test", pinnedLeaf);
    ruleExtras.put("pinleaf.tls.test", "pins: [\"" + pinnedLeaf.spkiPin() + "\"]");
    serve("partner.tls.test", leaf(partnerCa, "partner.tls.test").issue());
    ruleExtras.put("partner.tls.test", "trust: [" + partnerCa.writePem(dir).cert() + "]");

    // mTLS: the same kind of server, once with Egret's client certificate and once without.
    TestCert.PemFiles client = clientCa.leaf("egret-client").forClients().issue().writePem(dir);
    for (String host : List.of("mtls.tls.test", "nocert.tls.test")) {
      servers.put(host, TlsTestServer.https(leaf(root, host).issue()).name(host)
          .requireClientCertificate(clientCa).start());
    }
    ruleExtras.put("mtls.tls.test",
        "clientCert: {cert: " + client.cert() + ", key: " + client.key() + "}");

    Path rootPem = root.writePem(dir).cert();
    egret = startEgret("main", "TLSv1.2", rootPem, servers);

    for (String version : List.of("TLSv1.2", "TLSv1.3")) {
      String host = "only" + version.substring(4).replace(".", "") + ".min13.tls.test";
      servers13.put(host, TlsTestServer.https(leaf(root, host).issue()).name(host)
          .protocols(version).start());
    }
    egret13 = startEgret("min13", "TLSv1.3", rootPem, servers13);
  }

  @AfterAll
  static void stop() throws Exception {
    for (EgretFixture f : new EgretFixture[] {egret, egret13}) {
      if (f != null) {
        f.close();
      }
    }
    servers.values().forEach(TlsTestServer::close);
    servers13.values().forEach(TlsTestServer::close);
  }

  // ---- refused: the certificate ----

  @Test
  void refusesExpiredLeaf() throws Exception {
    assertRefused("expired.tls.test", "tls_certificate_error",
        "the certificate has expired (NotAfter: ");
  }

  @Test
  void refusesNotYetValidLeaf() throws Exception {
    assertRefused("notyet.tls.test", "tls_certificate_error",
        "the certificate is not yet valid (NotBefore: ");
  }

  @Test
  void refusesCertificateForAnotherHostEvenThoughEgretDialsAnAddress() throws Exception {
    assertRefused("wronghost.tls.test", "tls_certificate_error",
        "No subject alternative DNS name matching wronghost.tls.test");
  }

  /** The certificate names the very address Egret dials, but not the host it was asked for. */
  @Test
  void checksTheHostNameNotTheAddressEgretConnectsTo() throws Exception {
    assertRefused("ipsan.tls.test", "tls_certificate_error",
        "No name matching ipsan.tls.test found");
  }

  @Test
  void refusesSelfSignedLeafOutsideTheTrustList() throws Exception {
    assertRefused("selfsigned.tls.test", "tls_certificate_error",
        "no chain to a trusted root");
  }

  @Test
  void refusesChainToARootEgretDoesNotTrust() throws Exception {
    assertRefused("unknownroot.tls.test", "tls_certificate_error",
        "no chain to a trusted root");
  }

  @Test
  void refusesLeafSentWithoutItsIntermediate() throws Exception {
    assertRefused("nointermediate.tls.test", "tls_certificate_error",
        "no chain to a trusted root");
  }

  @Test
  void refusesSha1SignedLeafUnderATrustedPrivateCa() throws Exception {
    assertRefused("sha1.tls.test", "tls_certificate_error", "SHA1withRSA",
        "SHA-1 and weaker signatures are refused");
  }

  @Test
  void refusesRsa1024Leaf() throws Exception {
    assertRefused("rsa1024.tls.test", "tls_certificate_error", "1024-bit RSA key",
        "at least 2048 bits");
  }

  @Test
  void refusesPinMismatchListingTheChainsPinsBesideTheConfiguredOnes() throws Exception {
    TestCert leaf = leaf(root, "pinmismatch.tls.test").issue();
    JsonNode body = assertRefused("pinmismatch.tls.test", "tls_certificate_error",
        "pinning failure");
    String details = body.get("details").asText();
    assertThat(details).contains(leaf.spkiPin(), root.spkiPin(), stranger.spkiPin());
    assertThat(details.indexOf(root.spkiPin())).isLessThan(details.indexOf(stranger.spkiPin()));
  }

  @Test
  void refusesAServerUnderAPerRuleCaForARuleThatDoesNotTrustIt() throws Exception {
    assertRefused("misplaced.tls.test", "tls_certificate_error",
        "no chain to a trusted root");
  }

  @Test
  void perRuleTrustReplacesTheTopLevelTrustRatherThanAddingToIt() throws Exception {
    assertRefused("replaced.tls.test", "tls_certificate_error",
        "no chain to a trusted root");
  }

  // ---- refused: the protocol or the suites ----

  @Test
  void refusesTls10OnlyServer() throws Exception {
    assertRefused("tls10.tls.test", "tls_protocol_error",
        "speaks no TLS version that Egret allows", "protocol_version");
  }

  @Test
  void refusesTls11OnlyServer() throws Exception {
    assertRefused("tls11.tls.test", "tls_protocol_error",
        "speaks no TLS version that Egret allows", "protocol_version");
  }

  @Test
  void refusesCbcOnlyServer() throws Exception {
    assertRefused("cbc.tls.test", "tls_protocol_error",
        "shares no cipher suite with Egret");
  }

  @Test
  void refusesNullOnlyServer() throws Exception {
    assertRefused("null.tls.test", "tls_protocol_error",
        "shares no cipher suite with Egret");
  }

  @Test
  void refusesDheOnlyServerBecauseEgretOffersNoFiniteFieldDhe() throws Exception {
    assertRefused("dhe.tls.test", "tls_protocol_error",
        "shares no cipher suite with Egret");
  }

  @Test
  void refusesStaticRsaOnlyServer() throws Exception {
    assertRefused("staticrsa.tls.test", "tls_protocol_error",
        "shares no cipher suite with Egret");
  }

  @Test
  void refusesTripleDesOnlyServer() throws Exception {
    assertRefused("3des.tls.test", "tls_protocol_error",
        "shares no cipher suite with Egret");
  }

  @Test
  void refusesAnUpstreamThatDoesNotSpeakTls() throws Exception {
    TlsTestServer server = servers.get("plain.tls.test");
    HttpResponse<String> r = get(egret, "plain.tls.test", server.port());

    assertThat(r.statusCode()).as(r.body()).isEqualTo(502);
    assertThat(r.headers().firstValue("proxy-status")).hasValueSatisfying(v ->
        assertThat(v).startsWith("egret; error=tls_protocol_error; details="));
    assertThat(JSON.readTree(r.body()).get("details").asText())
        .isEqualTo("plain.tls.test did not answer with TLS");
    assertThat(server.requests()).isEmpty();
  }

  @Test
  void minVersion13RefusesATls12OnlyServer() throws Exception {
    assertRefused(egret13, servers13.get("only12.min13.tls.test"), "only12.min13.tls.test",
        "tls_protocol_error",
        "speaks no TLS version that Egret allows", "protocol_version");
  }

  @Test
  void refusesMutualTlsServerWhenTheRuleHasNoClientCertificate() throws Exception {
    assertRefused("nocert.tls.test", "tls_certificate_error",
        "refused Egret's client certificate or wanted one");
  }

  // ---- accepted ----

  @Test
  void acceptsRsa2048Leaf() throws Exception {
    assertAccepted("rsa2048.tls.test", "TLSv1.3");
  }

  @Test
  void acceptsP256Leaf() throws Exception {
    TlsTestServer.Handshake h = assertAccepted("p256.tls.test", "TLSv1.3");
    assertThat(h.cipherSuite()).startsWith("TLS_AES_");
  }

  @Test
  void acceptsLeafWithItsIntermediate() throws Exception {
    assertAccepted("chain.tls.test", "TLSv1.3");
  }

  @Test
  void acceptsTls12OnlyServerWithAnAeadForwardSecretSuite() throws Exception {
    TlsTestServer.Handshake h = assertAccepted("tls12.tls.test", "TLSv1.2");
    assertThat(h.cipherSuite()).startsWith("TLS_ECDHE_").containsAnyOf("_GCM_", "_CHACHA20_");
  }

  @Test
  void acceptsTls13OnlyServer() throws Exception {
    assertAccepted("tls13.tls.test", "TLSv1.3");
  }

  @Test
  void acceptsAChainHoldingThePinnedRoot() throws Exception {
    assertAccepted("pinroot.tls.test", "TLSv1.3");
  }

  @Test
  void acceptsAChainHoldingThePinnedLeaf() throws Exception {
    assertAccepted("pinleaf.tls.test", "TLSv1.3");
  }

  @Test
  void acceptsAServerUnderTheRulesOwnCa() throws Exception {
    assertAccepted("partner.tls.test", "TLSv1.3");
  }

  @Test
  void minVersion13AcceptsATls13OnlyServer() throws Exception {
    assertAccepted(egret13, servers13.get("only13.min13.tls.test"), "only13.min13.tls.test",
        "TLSv1.3");
  }

  @Test
  void presentsTheRulesClientCertificateToAMutualTlsServer() throws Exception {
    TlsTestServer.Handshake h = assertAccepted("mtls.tls.test", "TLSv1.3");
    assertThat(h.clientCertificate()).hasValueSatisfying(
        subject -> assertThat(subject).contains("CN=egret-client"));
  }

  // ---- helpers ----

  /** A leaf on the shared RSA key, so each case costs a signature, not a key generation. */
  private static TestPki leaf(TestCert issuer, String host) {
    return issuer.leaf(host).keySlot(LEAF_KEY);
  }

  private static void serve(String host, TestCert cert) {
    servers.put(host, TlsTestServer.https(cert).name(host).start());
  }

  /** A server with a good certificate for {@code host} and what {@code tweak} changes. */
  private static void serve(String host,
      java.util.function.UnaryOperator<TlsTestServer.Builder> tweak) {
    servers.put(host,
        tweak.apply(TlsTestServer.https(leaf(root, host).issue()).name(host)).start());
  }

  private static EgretFixture startEgret(String name, String minVersion, Path rootPem,
      Map<String, TlsTestServer> upstreams) throws Exception {
    StringBuilder rules = new StringBuilder();
    Map<String, String> hosts = new LinkedHashMap<>();
    upstreams.forEach((host, server) -> {
      rules.append("  - host: ").append(host).append('\n')
          .append("    ports: [").append(server.port()).append("]\n");
      String extra = ruleExtras.get(host);
      if (extra != null) {
        rules.append("    ").append(extra).append('\n');
      }
      hosts.put(host, "127.0.0.1");
    });
    Path home = Files.createDirectories(dir.resolve(name));
    return EgretFixture.builder().hosts(hosts).start(home, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {minVersion: %s, trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        timeouts: {connect: 5s, handshake: 5s, response: 10s, idle: 30s}
        allow:
        %s""".formatted(minVersion, rootPem, rules));
  }

  private static HttpResponse<String> get(EgretFixture through, String host, int port)
      throws Exception {
    return through.client().send(
        HttpRequest.newBuilder(URI.create("http://" + host + ":" + port + "/tls-check"))
            .timeout(WAIT).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static JsonNode assertRefused(String host, String error, String... details)
      throws Exception {
    return assertRefused(egret, servers.get(host), host, error, details);
  }

  /**
   * Asserts the documented answer to a refused upstream, and that the upstream got nothing: its
   * side of the handshake failed, so no request could follow.
   */
  private static JsonNode assertRefused(EgretFixture through, TlsTestServer server, String host,
      String error, String... details) throws Exception {
    HttpResponse<String> r = get(through, host, server.port());

    assertThat(r.statusCode()).as(r.body()).isEqualTo(502);
    assertThat(r.headers().firstValue("proxy-status")).hasValueSatisfying(v ->
        assertThat(v).startsWith("egret; error=" + error + "; details="));
    JsonNode body = JSON.readTree(r.body());
    assertThat(body.get("error").asText()).isEqualTo(error);
    assertThat(body.get("host").asText()).isEqualTo(host);
    assertThat(body.get("details").asText()).as(r.body()).contains(details);
    server.awaitHandshakeOutcomes(1, WAIT);
    assertThat(server.handshakes()).isEmpty();
    assertThat(server.requests()).isEmpty();
    return body;
  }

  private static TlsTestServer.Handshake assertAccepted(String host, String protocol)
      throws Exception {
    return assertAccepted(egret, servers.get(host), host, protocol);
  }

  /** Asserts the server's answer came back over {@code protocol}, asked for by host name. */
  private static TlsTestServer.Handshake assertAccepted(EgretFixture through,
      TlsTestServer server, String host, String protocol) throws Exception {
    HttpResponse<String> r = get(through, host, server.port());

    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    assertThat(r.body()).isEqualTo("hello from " + host);
    assertThat(server.handshakes()).isNotEmpty();
    TlsTestServer.Handshake h = server.handshakes().get(0);
    assertThat(h.sni()).contains(host);
    assertThat(h.protocol()).isEqualTo(protocol);
    ReceivedRequest seen = server.requests().get(0);
    assertThat(seen.target()).isEqualTo("/tls-check");
    assertThat(seen.header("Host")).contains(host + ":" + server.port());
    assertThat(seen.sni()).contains(host);
    return h;
  }
}
