package dev.egret.tunnel;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.RecordingTelemetry;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Stream;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * What the config's timeouts, limits and {@code tls.minVersion} do to tunnels, with an Egret
 * whose values are small enough to watch: a 2 s handshake and idle timeout, two tunnels per
 * destination, TLS 1.3 at least.
 */
class TunnelLimitsTest {
  private static final String HOST = "api.partner.test";
  private static final Duration TIMEOUT = Duration.ofSeconds(2);
  private static final Duration HOP_WAIT = Duration.ofSeconds(10);

  @TempDir static Path dir;
  static SSLContext trustRoot;
  static TlsTestServer tls12;
  static TlsTestServer tls13;
  static RawUpstream raw;
  static RecordingTelemetry telemetry;
  static EgretFixture egret;

  @BeforeAll
  static void start() throws Exception {
    TestCert root = TestPki.rootCa("Tunnel Limits Root").issue();
    TestCert leaf = root.leaf(HOST).issue();
    trustRoot = root.clientContext();
    tls12 = TlsTestServer.https(leaf).name("tls12").protocols("TLSv1.2").start();
    tls13 = TlsTestServer.https(leaf).name("tls13").protocols("TLSv1.3").start();
    raw = RawUpstream.start();
    telemetry = new RecordingTelemetry();
    egret = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1")).telemetry(telemetry)
        .start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {minVersion: TLSv1.3}
        addresses: {allow: [127.0.0.1/32]}
        timeouts: {handshake: %1$dms, idle: %1$dms}
        limits: {maxConnectionsPerDestination: 2}
        allow:
          - host: %2$s
            ports: [%3$d, %4$d, %5$d]
        """.formatted(TIMEOUT.toMillis(), HOST, tls12.port(), tls13.port(), raw.port()));
  }

  @AfterAll
  static void stop() throws Exception {
    egret.close();
    raw.close();
    tls12.close();
    tls13.close();
  }

  @BeforeEach
  void noTunnelLeftOpen() throws InterruptedException {
    telemetry.awaitNoTunnels(HOP_WAIT);
  }

  private static String authority(int port) {
    return HOST + ":" + port;
  }

  @Test
  void answers503ConnectionLimitReachedBeyondMaxConnectionsPerDestination() throws Exception {
    int before = raw.closedCount();
    int tls13Connections = tls13.connections();
    try (ProxyConnect first = ProxyConnect.open(egret.proxyPort(), authority(raw.port()));
         ProxyConnect second = ProxyConnect.open(egret.proxyPort(), authority(raw.port()))) {
      assertThat(first.status()).isEqualTo(200);
      assertThat(second.status()).isEqualTo(200);
      // The cap counts the rule, not the port: a tunnel to another port of it is refused too.
      try (ProxyConnect third = ProxyConnect.open(egret.proxyPort(), authority(tls13.port()))) {
        assertThat(third.head()).startsWith("HTTP/1.1 503 ")
            .contains("egret; error=connection_limit_reached");
        assertThat(third.body()).contains("\"error\":\"connection_limit_reached\"")
            .contains("maxConnectionsPerDestination");
      }
      Hop refused = telemetry.awaitTunnelHop(authority(tls13.port()),
          ErrorKind.CONNECTION_LIMIT_REACHED, HOP_WAIT);
      assertThat(refused.status).isEqualTo(503);
      assertThat(refused.upstreamAddress).as("refused before connecting").isNull();
      assertThat(tls13.connections()).isEqualTo(tls13Connections);
    }
    // Both closed: their slots come back and a new tunnel opens.
    raw.awaitClosed(before + 1, HOP_WAIT);
    telemetry.awaitNoTunnels(HOP_WAIT);
    try (ProxyConnect again = ProxyConnect.open(egret.proxyPort(), authority(tls13.port()))) {
      assertThat(again.status()).isEqualTo(200);
      SSLSocket ssl = again.tls(trustRoot, HOST, tls13.port());
      assertThat(ssl.getSession().getProtocol()).isEqualTo("TLSv1.3");
    }
  }

  @Test
  void cutsATls12HandshakeWhenMinVersionIsTls13() throws Exception {
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(tls12.port()))) {
      assertThat(c.status()).isEqualTo(200);
      assertThatThrownBy(() -> c.tls(trustRoot, HOST, tls12.port()))
          .isInstanceOf(IOException.class);
    }
    Hop hop = telemetry.awaitTunnelHop(authority(tls12.port()), ErrorKind.TLS_PROTOCOL_ERROR,
        HOP_WAIT);
    assertThat(hop.errorDetails).contains("negotiated TLSv1.2, below tls.minVersion TLSv1.3");
  }

  @Test
  void closesATunnelThatCarriedNothingForTheIdleTimeout() throws Exception {
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(tls13.port()))) {
      SSLSocket ssl = c.tls(trustRoot, HOST, tls13.port());
      long quietSince = System.nanoTime();
      // The server would wait 30 s for a request; Egret ends the quiet tunnel first.
      assertThat(ProxyConnect.readUntilClosed(ssl.getInputStream())).isZero();
      Duration quiet = Duration.ofNanos(System.nanoTime() - quietSince);
      assertThat(quiet).isBetween(TIMEOUT.minusMillis(100), TIMEOUT.plusSeconds(3));
    }
    Hop hop = telemetry.awaitHop(h -> authority(tls13.port()).equals(h.url)
        && h.tlsVersion != null, HOP_WAIT);
    assertThat(hop.error).as("an idle close is not a failure").isNull();
  }

  static Stream<Arguments> brokenClientHellos() throws Exception {
    byte[] real = HelloBytes.jdkClientHello(HOST, "TLSv1.3", "TLSv1.2");
    byte[] random = new byte[600];
    new java.util.Random(7).nextBytes(random);
    random[0] = 0x16; // a handshake record at first glance
    return Stream.of(
        Arguments.of("the first 40 bytes of a real ClientHello", Arrays.copyOf(real, 40)),
        Arguments.of("a record header alone", Arrays.copyOf(real, 5)),
        Arguments.of("random bytes after a handshake type byte", random),
        Arguments.of("a ServerHello sent by the client", HelloBytes.record(HelloBytes.HANDSHAKE,
            0x0303, HelloBytes.handshake(HelloBytes.SERVER_HELLO, new byte[38]))),
        Arguments.of("an SSLv2-style hello", HelloBytes.bytes(0x80, 0x2e, 0x01, 0x03, 0x01)),
        Arguments.of("a record claiming 65535 bytes", HelloBytes.bytes(0x16, 0x03, 0x01, 0xff,
            0xff, 0x01, 0x00, 0x00)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("brokenClientHellos")
  void cutsABrokenClientHelloWithinTheHandshakeTimeout(String what, byte[] bytes)
      throws Exception {
    int before = raw.closedCount();
    long start = System.nanoTime();
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(raw.port()))) {
      assertThat(c.status()).isEqualTo(200);
      c.socket().getOutputStream().write(bytes);
      c.socket().getOutputStream().flush();
      InputStream in = c.socket().getInputStream();
      assertThat(ProxyConnect.readUntilClosed(in)).as("bytes relayed back").isZero();
    }
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(TIMEOUT.plusSeconds(2));
    assertThat(raw.awaitClosed(before, HOP_WAIT)).as("bytes the upstream received").isZero();
    Hop hop = telemetry.awaitHop(h -> authority(raw.port()).equals(h.url)
        && h.error == ErrorKind.TLS_PROTOCOL_ERROR && h.startNanos >= start, HOP_WAIT);
    assertThat(hop.bytesUpstream).isZero();
  }
}
