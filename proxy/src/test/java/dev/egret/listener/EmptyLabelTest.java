package dev.egret.listener;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A host with an empty label is malformed (docs: "Config file"): 400 {@code http_request_error},
 * never matched against a rule, never resolved. The attack it stops: two trailing dots, of which
 * only one is the root label, so {@code evil.partner.test..} missed the exact deny rule and was
 * judged (and resolved) as another name. Through a running Egret, absolute-form and CONNECT,
 * with an upstream the allowlist admits that must see no request.
 */
class EmptyLabelTest {
  private static final String API = "api.partner.test";
  @TempDir static Path dir;
  static TlsTestServer upstream;
  static EgretFixture egret;

  @BeforeAll
  static void start() throws Exception {
    TestCert root = TestPki.rootCa("Empty Label Root").issue();
    upstream = TlsTestServer.https(root.leaf(API).issue()).name("partner").start();
    // Every name the attack could be judged as resolves, so only the guard can stop it.
    egret = EgretFixture.builder()
        .hosts(Map.of(API, "127.0.0.1", "evil.partner.test", "127.0.0.1",
            "evil.partner.test.", "127.0.0.1"))
        .start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: "**.partner.test"
            ports: [%d]
          - host: 127.0.0.1
            ports: [%d]
        deny:
          - host: evil.partner.test
        """.formatted(root.writePem(dir).cert().getFileName(), upstream.port(), upstream.port()));
  }

  @AfterAll
  static void stop() throws Exception {
    if (egret != null) {
      egret.close();
    }
    if (upstream != null) {
      upstream.close();
    }
  }

  static Stream<String> hosts() {
    return Stream.of("evil.partner.test..", "api.partner.test..", "a..partner.test",
        ".api.partner.test", "127.0.0.1..", "2130706433..", "0x7f.1..", "127..0.0.1",
        "evil.partner.test...");
  }

  @ParameterizedTest(name = "GET http://{0}:PORT/")
  @MethodSource("hosts")
  void refusesAnAbsoluteFormHostWithAnEmptyLabel(String host) throws Exception {
    int before = upstream.requests().size();
    RawExchange r = RawExchange.send(egret.proxyPort(), "GET http://" + host + ":"
        + upstream.port() + "/x HTTP/1.1\r\nConnection: close\r\n\r\n");
    assertRefused(r);
    assertThat(barrierThenRequestsSince(before)).as("requests the upstream saw").isZero();
  }

  @ParameterizedTest(name = "CONNECT {0}:PORT")
  @MethodSource("hosts")
  void refusesAConnectHostWithAnEmptyLabel(String host) throws Exception {
    RawExchange r = RawExchange.send(egret.proxyPort(), "CONNECT " + host + ":" + upstream.port()
        + " HTTP/1.1\r\nHost: " + host + ":" + upstream.port() + "\r\n\r\n");
    assertRefused(r);
  }

  @Test
  void refusesAnHttpsTargetWithAnEmptyLabel() throws Exception {
    int before = upstream.requests().size();
    RawExchange r = RawExchange.send(egret.proxyPort(), "GET https://evil.partner.test..:"
        + upstream.port() + "/x HTTP/1.1\r\nConnection: close\r\n\r\n");
    assertRefused(r);
    assertThat(barrierThenRequestsSince(before)).isZero();
  }

  @Test
  void oneTrailingDotIsTheRootLabelAndStillMatchesTheDenyRule() throws Exception {
    RawExchange r = RawExchange.send(egret.proxyPort(), "GET http://evil.partner.test.:"
        + upstream.port() + "/x HTTP/1.1\r\nConnection: close\r\n\r\n");
    assertThat(r.responses()).as(r.toString()).extracting(RawExchange.Response::status)
        .containsExactly(403);
    assertThat(r.responses().get(0).body()).contains("denied by the deny rule 'evil.partner.test'");
  }

  @Test
  void oneTrailingDotStillReachesTheAllowedHost() throws Exception {
    RawExchange r = RawExchange.send(egret.proxyPort(), "GET http://api.partner.test.:"
        + upstream.port() + "/x HTTP/1.1\r\nConnection: close\r\n\r\n");
    assertThat(r.responses()).as(r.toString()).extracting(RawExchange.Response::status)
        .containsExactly(200);
  }

  private static void assertRefused(RawExchange r) {
    assertThat(r.responses()).as(r.toString()).hasSize(1);
    RawExchange.Response answer = r.responses().get(0);
    assertThat(answer.status()).as(r.toString()).isEqualTo(400);
    assertThat(answer.header("Proxy-Status")).as(r.toString())
        .hasValueSatisfying(v -> assertThat(v).startsWith("egret; error=http_request_error"));
    assertThat(answer.body()).as(r.toString()).contains("\"error\":\"http_request_error\"");
    assertThat(answer.body()).as(r.toString()).containsAnyOf("empty label", "empty host");
    assertThat(r.closedByPeer()).isTrue();
  }

  /**
   * Requests the upstream read since {@code before}, counted after a barrier request went
   * through Egret to it (and is left out), so anything Egret might have sent earlier has arrived.
   */
  private static int barrierThenRequestsSince(int before) throws Exception {
    RawExchange b = RawExchange.send(egret.proxyPort(), "GET http://" + API + ":" + upstream.port()
        + "/barrier HTTP/1.1\r\nConnection: close\r\n\r\n");
    assertThat(b.responses()).as("barrier: " + b).extracting(RawExchange.Response::status)
        .containsExactly(200);
    return upstream.requests().size() - before - 1;
  }
}
