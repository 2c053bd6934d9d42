package dev.egret.address;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.listener.RawExchange;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The address guard through a real Egret. The allowlist admits every target below, and the
 * config exempts no address, so each is refused after resolution with 403
 * {@code destination_ip_prohibited} naming the range, and Egret never connects: the
 * {@link TlsTestServer} on 127.0.0.1 that the loopback targets point at sees no connection.
 * The same targets are reached once {@code addresses.allow} or a rule's {@code allowAddresses}
 * exempts 127.0.0.1.
 *
 * <p>Names that resolve to 10.1.2.3 or 169.254.169.254 (through the fixture's in-memory hosts
 * file) are refused the same way; their rules allow only the test server's ephemeral port, so
 * even a broken guard would not reach a real service there.
 */
class AddressRefusalTest {
  @TempDir static Path dir;
  static TestCert root;
  /** Absolute, so every Egret below can use it from its own config folder. */
  static String rootPem;
  static TlsTestServer upstream;
  static int port;
  static EgretFixture egret;
  static final Map<String, String> HOSTS = Map.of(
      "localhost", "127.0.0.1",
      "private.partner.test", "10.1.2.3",
      "metadata.partner.test", "169.254.169.254",
      "ecs.partner.test", "169.254.170.2");

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Address Guard Root").issue();
    upstream = TlsTestServer.https(root.leaf("localhost").dns("localhost").ip("127.0.0.1")
        .issue()).name("loopback").start();
    port = upstream.port();
    rootPem = root.writePem(dir).cert().toAbsolutePath().toString();
    egret = EgretFixture.builder().hosts(HOSTS).start(dir, config(""));
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

  /** Every target allowed by a rule; {@code extra} goes in at the top level. */
  private static String config(String extra) {
    return """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%1$s]}
        %3$s
        allow:
          - host: localhost
            ports: [%2$d]
          - host: 127.0.0.1
            ports: [%2$d]
          - host: 127.8.9.10
            ports: [%2$d]
          - host: "[::1]"
            ports: [%2$d]
          - host: private.partner.test
            ports: [%2$d]
          - host: metadata.partner.test
            ports: [%2$d]
          - host: ecs.partner.test
            ports: [%2$d]
          - host: nowhere.partner.test
            ports: [%2$d]
        """.formatted(rootPem, port, extra);
  }


  private static String get(String url) {
    return "GET " + url + " HTTP/1.1\r\nConnection: close\r\n\r\n";
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({
      "GET, http://localhost:{P}/, 127.0.0.0/8",
      "GET, http://127.0.0.1:{P}/, 127.0.0.0/8",
      "GET, http://127.8.9.10:{P}/, 127.0.0.0/8",
      "GET, http://[::1]:{P}/, ::1/128",
      "GET, http://[::ffff:127.0.0.1]:{P}/, 127.0.0.0/8",
      "GET, https://localhost:{P}/, 127.0.0.0/8",
      "GET, https://127.0.0.1:{P}/x, 127.0.0.0/8",
      "GET, https://[::1]:{P}/, ::1/128",
      "GET, https://[::ffff:127.0.0.1]:{P}/, 127.0.0.0/8",
      "CONNECT, localhost:{P}, 127.0.0.0/8",
      "CONNECT, 127.0.0.1:{P}, 127.0.0.0/8",
      "CONNECT, 127.8.9.10:{P}, 127.0.0.0/8",
      "CONNECT, [::1]:{P}, ::1/128",
      "CONNECT, [::ffff:127.0.0.1]:{P}, 127.0.0.0/8",
      "GET, http://private.partner.test:{P}/, 10.0.0.0/8",
      "GET, http://metadata.partner.test:{P}/latest/meta-data/, 169.254.0.0/16",
      "GET, http://ecs.partner.test:{P}/v2/credentials, 169.254.0.0/16",
      "CONNECT, private.partner.test:{P}, 10.0.0.0/8",
      "CONNECT, metadata.partner.test:{P}, 169.254.0.0/16",
  })
  void refusesADeniedAddressWithoutConnecting(String method, String target, String range)
      throws Exception {
    int connections = upstream.connections();
    String t = target.replace("{P}", String.valueOf(port));
    RawExchange r = RawExchange.send(egret.proxyPort(),
        method + " " + t + " HTTP/1.1\r\nConnection: close\r\n\r\n");

    assertThat(r.responses()).as(r.toString()).hasSize(1);
    RawExchange.Response answer = r.responses().get(0);
    assertThat(answer.status()).as(r.toString()).isEqualTo(403);
    assertThat(answer.header("Proxy-Status")).as(r.toString()).hasValueSatisfying(v ->
        assertThat(v).startsWith("egret; error=destination_ip_prohibited").contains(range));
    assertThat(answer.body()).contains("\"error\":\"destination_ip_prohibited\"", range);
    assertThat(upstream.connections()).as("Egret connected to the upstream").isEqualTo(connections);
  }

  @Test
  void answersDnsErrorForAnAllowedNameThatDoesNotResolve() throws Exception {
    RawExchange r = RawExchange.send(egret.proxyPort(),
        get("http://nowhere.partner.test:" + port + "/"));
    assertThat(r.responses()).as(r.toString()).hasSize(1);
    assertThat(r.responses().get(0).status()).isEqualTo(502);
    assertThat(r.responses().get(0).header("Proxy-Status"))
        .hasValueSatisfying(v -> assertThat(v).startsWith("egret; error=dns_error"));
  }

  @Test
  void reachesLoopbackWhenAddressesAllowExemptsIt() throws Exception {
    try (EgretFixture exempt = EgretFixture.builder().hosts(HOSTS).start(
        Files.createTempDirectory(dir, "allow"), config("addresses: {allow: [127.0.0.1/32]}"))) {
      for (String url : new String[] {"http://localhost:" + port + "/a",
          "http://127.0.0.1:" + port + "/b", "http://[::ffff:127.0.0.1]:" + port + "/c",
          "https://localhost:" + port + "/d"}) {
        RawExchange r = RawExchange.send(exempt.proxyPort(), get(url));
        assertThat(r.responses()).as(url + ": " + r).extracting(RawExchange.Response::status)
            .containsExactly(200);
      }
      // The exemption is exactly 127.0.0.1/32: the rest of 127.0.0.0/8 stays refused.
      RawExchange other = RawExchange.send(exempt.proxyPort(),
          get("http://127.8.9.10:" + port + "/"));
      assertThat(other.responses().get(0).status()).isEqualTo(403);
      assertThat(other.responses().get(0).header("Proxy-Status")).hasValueSatisfying(v ->
          assertThat(v).contains("destination_ip_prohibited").contains("127.0.0.0/8"));
      RawExchange privateName = RawExchange.send(exempt.proxyPort(),
          get("http://private.partner.test:" + port + "/"));
      assertThat(privateName.responses().get(0).status()).isEqualTo(403);
    }
    assertThat(upstream.requests()).extracting(q -> q.target())
        .contains("/a", "/b", "/c", "/d");
  }

  @Test
  void reachesLoopbackOnlyThroughTheRuleWhoseAllowAddressesExemptsIt() throws Exception {
    String yaml = config("").replace("""
          - host: localhost
            ports: [%d]
        """.formatted(port), """
          - host: localhost
            ports: [%d]
            allowAddresses: [127.0.0.1/32]
        """.formatted(port));
    assertThat(yaml).contains("allowAddresses");
    try (EgretFixture perRule = EgretFixture.builder().hosts(HOSTS)
        .start(Files.createTempDirectory(dir, "rule"), yaml)) {
      RawExchange reached = RawExchange.send(perRule.proxyPort(),
          get("http://localhost:" + port + "/rule"));
      assertThat(reached.responses()).as(reached.toString())
          .extracting(RawExchange.Response::status).containsExactly(200);

      // The same address through another rule, which exempts nothing, is still refused.
      int connections = upstream.connections();
      RawExchange refused = RawExchange.send(perRule.proxyPort(),
          get("http://127.0.0.1:" + port + "/other-rule"));
      assertThat(refused.responses().get(0).status()).isEqualTo(403);
      assertThat(refused.responses().get(0).header("Proxy-Status")).hasValueSatisfying(v ->
          assertThat(v).contains("destination_ip_prohibited").contains("127.0.0.0/8"));
      assertThat(upstream.connections()).isEqualTo(connections);

      // A tunnel through the exempting rule opens too (checked last: its upstream connection
      // is counted by the server's accept thread after Egret's 200).
      assertThat(connectStatusLine(perRule, "localhost:" + port)).startsWith("HTTP/1.1 200");
    }
    assertThat(upstream.requests()).extracting(q -> q.target()).contains("/rule")
        .doesNotContain("/other-rule");
  }

  /** Sends a CONNECT and returns Egret's status line, without waiting for the tunnel to end. */
  private static String connectStatusLine(EgretFixture proxy, String target) throws Exception {
    try (Socket s = new Socket("127.0.0.1", proxy.proxyPort())) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write(("CONNECT " + target + " HTTP/1.1\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII));
      StringBuilder line = new StringBuilder();
      InputStream in = s.getInputStream();
      for (int b = in.read(); b >= 0 && b != '\n'; b = in.read()) {
        line.append((char) b);
      }
      return line.toString();
    }
  }
}
