package dev.egret.identity;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.config.ConfigCompiler;
import dev.egret.failure.ErrorKind;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Clients#identify}, case by case: which source names the client, and how each wrong
 * credential is refused (status, source and reason label) without falling back.
 */
class IdentifyTest {
  @TempDir static Path dir;
  static Clients clients;
  static Clients addressesOnly;
  static X509Certificate alphaCert;
  static X509Certificate twoClientsCert;

  @BeforeAll
  static void compile() throws Exception {
    TestCert ca = TestPki.rootCa("Identify CA").issue();
    alphaCert = ca.leaf("alpha").svid("spiffe://t/alpha").issue().certificate();
    twoClientsCert = ca.leaf("alpha.tasks").dns("alpha.tasks", "bravo.tasks").forClients()
        .issue().certificate();
    clients = compile("""
        version: 1
        allow: [{host: a.example}]
        clients:
          - name: alpha
            match:
              spiffe: ["spiffe://t/alpha"]
              dns: [alpha.tasks]
              tokens: ["%s"]
              addresses: [10.1.0.0/16]
          - name: bravo
            match:
              dns: [bravo.tasks]
              tokens: ["%s"]
              addresses: [10.0.0.0/8]
        """.formatted(GatewayTest.hash("alpha-token"), GatewayTest.hash("bravo-token")));
    addressesOnly = compile("""
        version: 1
        allow: [{host: a.example}]
        identity: {onMissing: deny}
        clients:
          - name: office
            match: {addresses: [192.0.2.0/24]}
        """);
  }

  private static Clients compile(String yaml) throws Exception {
    Path f = Files.writeString(dir.resolve("c" + System.nanoTime() + ".yaml"), yaml);
    return ConfigCompiler.compile(f, Files.readAllBytes(f)).clients();
  }

  private static InetSocketAddress at(String ip) {
    return new InetSocketAddress(ip, 40000);
  }

  private static String basic(String user, String token) {
    return "Basic " + Base64.getEncoder().encodeToString((user + ":" + token)
        .getBytes(StandardCharsets.UTF_8));
  }

  private static void named(Identified id, String client, String source) {
    assertThat(id.refused()).as(String.valueOf(id.refusal())).isFalse();
    assertThat(id.client().name()).isEqualTo(client);
    assertThat(id.source()).isEqualTo(source);
  }

  private static void refused(Identified id, int status, String source, String reason) {
    assertThat(id.refused()).isTrue();
    assertThat(id.refusal().status()).isEqualTo(status);
    assertThat(id.refusal().kind().proxyStatusError()).isEqualTo("http_request_denied");
    assertThat(id.source()).isEqualTo(source);
    assertThat(id.reason()).isEqualTo(reason);
    assertThat(id.refusal().details()).doesNotContain("alpha-token").doesNotContain("bravo-token");
  }

  @Test
  void theCertificateComesFirstThenTheTokenThenTheAddress() {
    named(clients.identify(Credentials.request(alphaCert, at("10.2.0.1"), List.of())),
        "alpha", "certificate");
    named(clients.identify(Credentials.request(alphaCert, at("10.2.0.1"),
        List.of(basic("alpha", "alpha-token")))), "alpha", "certificate");
    named(clients.identify(Credentials.request(null, at("10.1.0.1"),
        List.of("Bearer bravo-token"))), "bravo", "token");
    named(clients.identify(Credentials.request(null, at("10.1.0.1"),
        List.of("bAsIc " + basic("bravo", "bravo-token").substring(6)))), "bravo", "token");
    // Address: config order, the first client whose CIDRs hold it.
    named(clients.identify(Credentials.request(null, at("10.1.2.3"), List.of())), "alpha",
        "address");
    named(clients.identify(Credentials.request(null, at("10.9.2.3"), List.of())), "bravo",
        "address");
  }

  @Test
  void presentedButWrongNeverFallsBack() {
    // Each of these comes from an address that would name alpha.
    refused(clients.identify(Credentials.request(null, at("10.1.0.1"),
        List.of("Bearer nope"))), 407, "token", "unknown");
    refused(clients.identify(Credentials.request(null, at("10.1.0.1"),
        List.of(basic("bravo", "alpha-token")))), 407, "token", "unknown");
    refused(clients.identify(Credentials.request(null, at("10.1.0.1"),
        List.of("Bearer alpha-token", "Bearer alpha-token"))), 407, "token", "malformed");
    refused(clients.identify(Credentials.request(null, at("10.1.0.1"),
        List.of(basic("alpha", "")))), 407, "token", "malformed");
    refused(clients.identify(Credentials.request(null, at("10.1.0.1"),
        List.of("Bearer"))), 407, "token", "malformed");
    refused(clients.identify(Credentials.request(alphaCert, at("10.1.0.1"),
        List.of("Bearer bravo-token"))), 403, "token", "conflict");
    refused(clients.identify(Credentials.request(twoClientsCert, at("10.1.0.1"), List.of())),
        403, "certificate", "conflict");
  }

  @Test
  void noIdentityIs407WithTokensAnd403Without() {
    Identified none = clients.identify(Credentials.request(null, at("192.0.2.1"), List.of()));
    refused(none, 407, "token", "missing");
    assertThat(none.refusal().kind()).isEqualTo(ErrorKind.PROXY_AUTHENTICATION_REQUIRED);
    assertThat(none.refusal().details()).contains("no client certificate")
        .contains("no Proxy-Authorization token").contains("192.0.2.1");
    refused(addressesOnly.identify(Credentials.request(null, at("198.51.100.1"), List.of())),
        403, "address", "missing");
    // A token where no client has tokens is not a credential Egret could check.
    refused(addressesOnly.identify(Credentials.request(null, at("192.0.2.1"),
        List.of("Bearer x"))), 403, "token", "unknown");
  }

  @Test
  void transparentConnectionsKnowOnlyTheirAddressAndAreNeverAsked407() {
    named(clients.identify(Credentials.addressOnly(at("10.1.0.9"))), "alpha", "address");
    Identified none = clients.identify(Credentials.addressOnly(at("192.0.2.1")));
    refused(none, 403, "address", "missing");
  }

  @Test
  void aTunnelsRequestsAreItsConnectsClient() {
    named(clients.identify(Credentials.tunnelled(new Credentials.Remembered("bravo", "token"),
        at("10.1.0.1"))), "bravo", "tunnel");
    refused(clients.identify(Credentials.tunnelled(new Credentials.Remembered("gone", "token"),
        at("10.1.0.1"))), 403, "token", "unknown");
  }
}
