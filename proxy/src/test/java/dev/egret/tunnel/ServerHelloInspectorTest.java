package dev.egret.tunnel;

import static dev.egret.tunnel.HelloBytes.ALERT;
import static dev.egret.tunnel.HelloBytes.CLIENT_HELLO;
import static dev.egret.tunnel.HelloBytes.HANDSHAKE;
import static dev.egret.tunnel.HelloBytes.SERVER_HELLO;
import static dev.egret.tunnel.HelloBytes.bytes;
import static dev.egret.tunnel.HelloBytes.concat;
import static dev.egret.tunnel.HelloBytes.extension;
import static dev.egret.tunnel.HelloBytes.handshake;
import static dev.egret.tunnel.HelloBytes.handshakePayload;
import static dev.egret.tunnel.HelloBytes.jdkServerFirstFlight;
import static dev.egret.tunnel.HelloBytes.record;
import static dev.egret.tunnel.HelloBytes.records;
import static dev.egret.tunnel.HelloBytes.serverHelloBody;
import static dev.egret.tunnel.HelloBytes.u16;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ServerHelloInspectorTest {
  private static final String[] BOTH = {"TLSv1.3", "TLSv1.2"};
  private static final String[] TLS12 = {"TLSv1.2"};
  private static final String[] TLS13 = {"TLSv1.3"};

  /** SHA-256("HelloRetryRequest"), the random that marks a HelloRetryRequest. */
  private static final byte[] RETRY_RANDOM = bytes(
      0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8,
      0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8,
      0x33, 0x9c);

  private static byte[] tls13Flight;
  private static byte[] tls12Flight;

  @BeforeAll
  static void runJdkHandshakes() throws Exception {
    tls13Flight = jdkServerFirstFlight(BOTH, BOTH);
    tls12Flight = jdkServerFirstFlight(TLS12, TLS12);
  }

  private static HelloInspection.OfServer inspect(byte[] bytes) {
    return new ServerHelloInspector().offer(bytes);
  }

  private static HelloInspection.ServerHello hello(byte[] bytes) {
    HelloInspection.OfServer seen = inspect(bytes);
    assertThat(seen).isInstanceOf(HelloInspection.ServerHello.class);
    return (HelloInspection.ServerHello) seen;
  }

  /** A ServerHello record with a plain random. */
  private static byte[] serverHello(int version, int suite, byte[]... extensions) {
    return record(HANDSHAKE, version, handshake(SERVER_HELLO,
        serverHelloBody(version, new byte[32], suite, extensions)));
  }

  private static byte[] selectedVersion(int version) {
    return extension(43, u16(version));
  }

  // ---- real ServerHellos from the JDK ----

  @Test
  void readsTls13FromTheSupportedVersionsOfAJdkServer() {
    HelloInspection.ServerHello hello = hello(tls13Flight);

    assertThat(hello.version()).isEqualTo(0x0304);
    assertThat(hello.legacyVersion()).isEqualTo(0x0303);
    assertThat(hello.helloRetryRequest()).isFalse();
    assertThat(hello.versionName()).isEqualTo("TLSv1.3");
  }

  @Test
  void readsTls12WhenBothJdkEnginesAreLimitedToIt() {
    HelloInspection.ServerHello hello = hello(tls12Flight);

    assertThat(hello.version()).isEqualTo(0x0303);
    assertThat(hello.versionName()).isEqualTo("TLSv1.2");
  }

  @Test
  void reportsTheAlertOfAJdkServerThatSharesNoVersion() throws Exception {
    HelloInspection.OfServer seen = inspect(jdkServerFirstFlight(TLS12, TLS13));

    assertThat(seen).isInstanceOf(HelloInspection.Alert.class);
    HelloInspection.Alert alert = (HelloInspection.Alert) seen;
    assertThat(alert.fatal()).isTrue();
    assertThat(alert.description()).isEqualTo(70);
    assertThat(alert.descriptionName()).isEqualTo("protocol_version");
  }

  @Test
  void decidesOneByteAtATimeAsSoonAsTheServerHelloIsIn() {
    // The TLS 1.2 flight goes on with Certificate and more after the ServerHello.
    int helloEnd = 5 + 4 + (((tls12Flight[6] & 0xff) << 16) | ((tls12Flight[7] & 0xff) << 8)
        | (tls12Flight[8] & 0xff));
    assertThat(tls12Flight.length).isGreaterThan(helloEnd);
    ServerHelloInspector inspector = new ServerHelloInspector();

    for (int i = 0; i < helloEnd - 1; i++) {
      assertThat(inspector.offer(tls12Flight, i, 1)).as("after byte %d", i)
          .isEqualTo(HelloInspection.NEED_MORE);
    }
    HelloInspection.OfServer seen = inspector.offer(tls12Flight, helloEnd - 1, 1);

    assertThat(seen).isInstanceOf(HelloInspection.ServerHello.class);
    assertThat(inspector.offer(tls12Flight, helloEnd, tls12Flight.length - helloEnd))
        .isSameAs(seen);
  }

  @Test
  void needsMoreAtEveryPrefixOfARealServerHello() {
    int helloEnd = 5 + 4 + (((tls13Flight[6] & 0xff) << 16) | ((tls13Flight[7] & 0xff) << 8)
        | (tls13Flight[8] & 0xff));
    for (int length = 0; length < helloEnd; length++) {
      assertThat(new ServerHelloInspector().offer(tls13Flight, 0, length)).as("prefix %d", length)
          .isEqualTo(HelloInspection.NEED_MORE);
    }
  }

  @Test
  void assemblesAServerHelloSplitAcrossRecords() {
    byte[] payload = handshakePayload(tls13Flight);

    assertThat(hello(records(HANDSHAKE, 0x0303, payload, 3, 40)).version()).isEqualTo(0x0304);
  }

  // ---- hand-built ServerHellos: versions the JDK will not negotiate, and retries ----

  @Test
  void readsTls10AndTls11FromTheLegacyVersion() {
    // server_version 0x0301 / 0x0302, zero random, empty session id, TLS_RSA_WITH_AES_128_CBC_SHA
    // (0x002f), null compression, no extensions block at all (legal before TLS 1.3).
    assertThat(hello(serverHello(0x0301, 0x002f)).versionName()).isEqualTo("TLSv1");
    assertThat(hello(serverHello(0x0302, 0x002f)).versionName()).isEqualTo("TLSv1.1");
    assertThat(hello(serverHello(0x0300, 0x002f)).versionName()).isEqualTo("SSLv3");
  }

  @Test
  void readsTls12FromTheLegacyVersionWhenExtensionsLackSupportedVersions() {
    // renegotiation_info (0xff01) with an empty renegotiated_connection.
    HelloInspection.ServerHello hello = hello(serverHello(0x0303, 0xc02f,
        extension(0xff01, bytes(0))));

    assertThat(hello.version()).isEqualTo(0x0303);
  }

  @Test
  void treatsAHelloRetryRequestAsTls13() {
    // HelloRetryRequest: server_version 0x0303, the fixed random, TLS_AES_128_GCM_SHA256,
    // supported_versions selecting 0x0304 and key_share naming x25519 (0x001d).
    byte[] retry = record(HANDSHAKE, 0x0303, handshake(SERVER_HELLO, serverHelloBody(
        0x0303, RETRY_RANDOM, 0x1301, selectedVersion(0x0304), extension(51, u16(0x001d)))));

    HelloInspection.ServerHello hello = hello(retry);

    assertThat(hello.helloRetryRequest()).isTrue();
    assertThat(hello.version()).isEqualTo(0x0304);
  }

  @Test
  void reportsAnAlertSplitAcrossSegments() {
    ServerHelloInspector inspector = new ServerHelloInspector();
    byte[] alert = record(ALERT, 0x0303, bytes(2, 40));

    assertThat(inspector.offer(alert, 0, 5)).isEqualTo(HelloInspection.NEED_MORE);
    assertThat(inspector.offer(alert, 5, 1)).isEqualTo(HelloInspection.NEED_MORE);
    assertThat(inspector.offer(alert, 6, 1))
        .isEqualTo(new HelloInspection.Alert(2, 40));
    assertThat(((HelloInspection.Alert) inspector.result()).descriptionName())
        .isEqualTo("handshake_failure");
  }

  @Test
  void namesVersionsAsTheJdkDoes() {
    assertThat(TlsVersions.name(0x0300)).isEqualTo("SSLv3");
    assertThat(TlsVersions.name(0x0301)).isEqualTo("TLSv1");
    assertThat(TlsVersions.name(0x0302)).isEqualTo("TLSv1.1");
    assertThat(TlsVersions.name(0x0303)).isEqualTo("TLSv1.2");
    assertThat(TlsVersions.name(0x0304)).isEqualTo("TLSv1.3");
    assertThat(TlsVersions.name(0x7f1c)).isEqualTo("0x7f1c");
    assertThat(TlsVersions.isGrease(0x2a2a)).isTrue();
    assertThat(TlsVersions.isGrease(0x2a3a)).isFalse();
    assertThat(TlsVersions.isGrease(0x0304)).isFalse();
  }

  // ---- hostile input ----

  static Stream<Arguments> hostileInput() {
    return Stream.of(
        refused("empty input", new byte[0], HelloInspection.NeedMore.class, ""),
        refused("plaintext HTTP response",
            "HTTP/1.1 400 Bad Request\r\n".getBytes(StandardCharsets.US_ASCII),
            HelloInspection.NotTls.class, "plaintext"),
        refused("SSLv2 server hello", bytes(0x80, 0x4a, 0x04, 0x00, 0x01, 0x00, 0x02),
            HelloInspection.NotTls.class, "SSLv2"),
        refused("application data first", record(23, 0x0303, bytes(1, 2, 3)),
            HelloInspection.NotTls.class, "application_data"),
        refused("a ClientHello instead", record(HANDSHAKE, 0x0303, bytes(CLIENT_HELLO, 0, 0, 0)),
            HelloInspection.NotTls.class, "type 1"),
        refused("hello claims 16 MiB",
            record(HANDSHAKE, 0x0303, bytes(SERVER_HELLO, 0xff, 0xff, 0xff)),
            HelloInspection.Malformed.class, "too large"),
        refused("record claims 65535 bytes", bytes(HANDSHAKE, 0x03, 0x03, 0xff, 0xff),
            HelloInspection.Malformed.class, "record length 65535"),
        refused("alert record of 3 bytes", record(ALERT, 0x0303, bytes(2, 40, 0)),
            HelloInspection.Malformed.class, "alert record of 3 bytes"),
        refused("alert after a partial hello",
            concat(record(HANDSHAKE, 0x0303, bytes(SERVER_HELLO, 0, 0)),
                record(ALERT, 0x0303, bytes(2, 40))),
            HelloInspection.Malformed.class, "interrupts"),
        refused("body shorter than its fields",
            record(HANDSHAKE, 0x0303, handshake(SERVER_HELLO, bytes(3, 3, 1, 2))),
            HelloInspection.Malformed.class, "truncated random"),
        refused("server_version 0x0200",
            record(HANDSHAKE, 0x0303, handshake(SERVER_HELLO,
                serverHelloBody(0x0200, new byte[32], 0x002f))),
            HelloInspection.Malformed.class, "server_version 0x0200"),
        refused("session id echo of 33 bytes",
            record(HANDSHAKE, 0x0303, handshake(SERVER_HELLO,
                concat(u16(0x0303), new byte[32], bytes(33), new byte[36]))),
            HelloInspection.Malformed.class, "legacy_session_id_echo of 33"),
        refused("selected_version of 3 bytes",
            serverHello(0x0303, 0x1301, extension(43, bytes(3, 4, 0))),
            HelloInspection.Malformed.class, "stray"),
        refused("selected_version of 1 byte",
            serverHello(0x0303, 0x1301, extension(43, bytes(3))),
            HelloInspection.Malformed.class, "truncated selected_version"),
        refused("duplicate supported_versions",
            serverHello(0x0303, 0x1301, selectedVersion(0x0304), selectedVersion(0x0303)),
            HelloInspection.Malformed.class, "duplicate supported_versions"),
        refused("extension length overruns the block",
            serverHello(0x0303, 0x1301, concat(u16(43), u16(0x0100), u16(0x0304))),
            HelloInspection.Malformed.class, "truncated extension supported_versions"),
        refused("HelloRetryRequest without supported_versions",
            record(HANDSHAKE, 0x0303, handshake(SERVER_HELLO,
                serverHelloBody(0x0303, RETRY_RANDOM, 0x1301, extension(51, u16(0x001d))))),
            HelloInspection.Malformed.class, "HelloRetryRequest"));
  }

  private static Arguments refused(String name, byte[] bytes, Class<?> type, String reason) {
    return Arguments.of(name, bytes, type, reason);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("hostileInput")
  void refusesHostileInput(String name, byte[] bytes, Class<?> type, String reason) {
    HelloInspection.OfServer whole = inspect(bytes);
    assertThat(whole).isInstanceOf(type);
    if (whole instanceof HelloInspection.Refused refused) {
      assertThat(refused.reason()).contains(reason);
    }

    ServerHelloInspector inspector = new ServerHelloInspector();
    HelloInspection.OfServer dribbled = HelloInspection.NEED_MORE;
    for (int i = 0; i < bytes.length && !dribbled.done(); i++) {
      dribbled = inspector.offer(bytes, i, 1);
    }
    assertThat(dribbled).isEqualTo(whole);
  }

  // ---- fuzz ----

  @Test
  void neverThrowsOnMutatedFlights() {
    Random random = new Random(20_240_612L);
    int verdicts = 0;
    long deadline = System.nanoTime() + 60_000_000_000L;
    for (int round = 0; round < 20_000 && System.nanoTime() < deadline; round++) {
      byte[] mutated = ClientHelloInspectorTest.mutate(
          round % 2 == 0 ? tls13Flight : tls12Flight, random);
      ServerHelloInspector inspector = new ServerHelloInspector();
      HelloInspection.OfServer seen = HelloInspection.NEED_MORE;
      int at = 0;
      while (at < mutated.length) {
        int n = 1 + random.nextInt(mutated.length - at);
        seen = inspector.offer(mutated, at, n);
        at += n;
      }
      assertThat(seen).as("round %d", round).isNotNull();
      if (seen instanceof HelloInspection.Malformed malformed) {
        assertThat(malformed.reason()).as("round %d", round).doesNotStartWith("unreadable");
      }
      verdicts += seen.done() ? 1 : 0;
    }
    assertThat(verdicts).isGreaterThan(10_000);
  }
}
