package dev.egret.tunnel;

import static dev.egret.tunnel.HelloBytes.ALERT;
import static dev.egret.tunnel.HelloBytes.CLIENT_HELLO;
import static dev.egret.tunnel.HelloBytes.HANDSHAKE;
import static dev.egret.tunnel.HelloBytes.bytes;
import static dev.egret.tunnel.HelloBytes.clientHelloBody;
import static dev.egret.tunnel.HelloBytes.clientHelloRecord;
import static dev.egret.tunnel.HelloBytes.clientSupportedVersions;
import static dev.egret.tunnel.HelloBytes.concat;
import static dev.egret.tunnel.HelloBytes.extension;
import static dev.egret.tunnel.HelloBytes.fragmented;
import static dev.egret.tunnel.HelloBytes.handshake;
import static dev.egret.tunnel.HelloBytes.handshakePayload;
import static dev.egret.tunnel.HelloBytes.jdkClientHello;
import static dev.egret.tunnel.HelloBytes.jdkClientHelloWithSni;
import static dev.egret.tunnel.HelloBytes.record;
import static dev.egret.tunnel.HelloBytes.records;
import static dev.egret.tunnel.HelloBytes.serverName;
import static dev.egret.tunnel.HelloBytes.u16;
import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ClientHelloInspectorTest {

  private static HelloInspection.OfClient inspect(byte[] bytes) {
    return new ClientHelloInspector().offer(bytes);
  }

  private static HelloInspection.ClientHello hello(byte[] bytes) {
    HelloInspection.OfClient seen = inspect(bytes);
    assertThat(seen).isInstanceOf(HelloInspection.ClientHello.class);
    return (HelloInspection.ClientHello) seen;
  }

  // ---- real ClientHellos from the JDK ----

  @Test
  void readsSniAndVersionsFromJdkTls13Hello() throws Exception {
    HelloInspection.ClientHello hello = hello(jdkClientHello("api.example.com"));

    assertThat(hello.sni()).isEqualTo("api.example.com");
    assertThat(hello.legacyVersion()).isEqualTo(0x0303);
    assertThat(hello.supportedVersions()).contains(0x0304, 0x0303);
    assertThat(hello.highestVersion()).isEqualTo(0x0304);
  }

  @Test
  void readsSniFromJdkTls12OnlyHello() throws Exception {
    HelloInspection.ClientHello hello = hello(jdkClientHello("api.example.com", "TLSv1.2"));

    assertThat(hello.sni()).isEqualTo("api.example.com");
    assertThat(hello.legacyVersion()).isEqualTo(0x0303);
    assertThat(hello.supportedVersions()).doesNotContain(0x0304);
    assertThat(hello.highestVersion()).isEqualTo(0x0303);
  }

  @Test
  void lowerCasesAnExplicitSni() throws Exception {
    assertThat(hello(jdkClientHelloWithSni("Other.EXAMPLE.org")).sni())
        .isEqualTo("other.example.org");
  }

  @Test
  void reportsNoSniWhenTheEngineHasNoHost() throws Exception {
    assertThat(hello(jdkClientHello(null)).sni()).isNull();
  }

  @Test
  void reportsNoSniForAnIpLiteralHost() throws Exception {
    assertThat(hello(jdkClientHello("127.0.0.1")).sni()).isNull();
  }

  @Test
  void assemblesAHelloOfferedOneByteAtATime() throws Exception {
    byte[] flight = jdkClientHello("api.example.com");
    ClientHelloInspector inspector = new ClientHelloInspector();

    for (int i = 0; i < flight.length - 1; i++) {
      assertThat(inspector.offer(flight, i, 1)).as("after byte %d", i)
          .isEqualTo(HelloInspection.NEED_MORE);
    }
    HelloInspection.OfClient seen = inspector.offer(flight, flight.length - 1, 1);

    assertThat(seen).isInstanceOf(HelloInspection.ClientHello.class);
    assertThat(((HelloInspection.ClientHello) seen).sni()).isEqualTo("api.example.com");
  }

  @Test
  void assemblesAHelloSplitAcrossTwoRecords() throws Exception {
    byte[] message = handshakePayload(jdkClientHello("api.example.com"));
    // Cuts inside the 4-byte handshake header, just after it, inside the session id, in the
    // middle, and one byte before the end.
    for (int cut : new int[] {1, 2, 4, 60, message.length / 2, message.length - 1}) {
      byte[] twoRecords = records(HANDSHAKE, 0x0301, message, cut);

      assertThat(hello(twoRecords).sni()).as("cut at %d", cut).isEqualTo("api.example.com");
    }
  }

  @Test
  void assemblesAHelloInOneByteRecords() throws Exception {
    byte[] message = handshakePayload(jdkClientHello("api.example.com"));

    assertThat(hello(fragmented(HANDSHAKE, 0x0303, message, 1)).sni())
        .isEqualTo("api.example.com");
  }

  @Test
  void needsMoreAtEveryPrefixOfARealHello() throws Exception {
    byte[] flight = jdkClientHello("api.example.com");
    for (int length = 0; length < flight.length; length++) {
      ClientHelloInspector inspector = new ClientHelloInspector();

      assertThat(inspector.offer(flight, 0, length)).as("prefix %d", length)
          .isEqualTo(HelloInspection.NEED_MORE);
      assertThat(inspector.offer(flight, length, flight.length - length))
          .as("rest after %d", length)
          .isInstanceOf(HelloInspection.ClientHello.class);
    }
  }

  @Test
  void ignoresBytesAfterTheHelloAndKeepsItsVerdict() throws Exception {
    byte[] flight = concat(jdkClientHello("api.example.com"), "trailing junk".getBytes());
    ClientHelloInspector inspector = new ClientHelloInspector();

    HelloInspection.OfClient first = inspector.offer(flight);

    assertThat(first).isInstanceOf(HelloInspection.ClientHello.class);
    assertThat(inspector.offer("GET / HTTP/1.1\r\n".getBytes())).isSameAs(first);
    assertThat(inspector.result()).isSameAs(first);
  }

  @Test
  void acceptsAHelloWithoutExtensions() {
    byte[] body = Arrays.copyOf(clientHelloBody(), clientHelloBody().length - 2);
    HelloInspection.ClientHello hello =
        hello(record(HANDSHAKE, 0x0301, handshake(CLIENT_HELLO, body)));

    assertThat(hello.sni()).isNull();
    assertThat(hello.supportedVersions()).isEmpty();
  }

  @Test
  void acceptsALargeHelloUpToTheLimit() {
    // A 40 KiB padding extension (type 21), as if a key share were very large.
    byte[] message = handshake(CLIENT_HELLO, clientHelloBody(
        serverName("big.example.com"), extension(21, new byte[40_000])));

    assertThat(hello(fragmented(HANDSHAKE, 0x0303, message, 1 << 14)).sni())
        .isEqualTo("big.example.com");
  }

  @Test
  void judgesAHelloNearTheLimitAlikeWhateverFollowsItInTheSameRead() {
    // The hello ends 66 bytes short of the 64 KiB limit; its last record carries 100 more bytes
    // (another handshake message). Read in one piece or cut where the hello ends, it is the same
    // hello: what follows it is not the hello's size.
    byte[] message = handshake(CLIENT_HELLO, clientHelloBody(
        serverName("big.example.com"), extension(21, new byte[65_375])));
    byte[] stream = fragmented(HANDSHAKE, 0x0303,
        concat(message, handshake(11, new byte[96])), 1 << 14);
    int helloEnd = message.length + 5 * (1 + message.length / (1 << 14));
    assertThat(helloEnd).isBetween(HandshakeReassembler.LIMIT - 100, HandshakeReassembler.LIMIT);

    HelloInspection.OfClient whole = new ClientHelloInspector().offer(stream);
    ClientHelloInspector cut = new ClientHelloInspector();
    cut.offer(Arrays.copyOf(stream, helloEnd));
    HelloInspection.OfClient pieces = cut.offer(Arrays.copyOfRange(stream, helloEnd, stream.length));

    assertThat(pieces).isInstanceOf(HelloInspection.ClientHello.class);
    assertThat(whole).isEqualTo(pieces);
  }

  // ---- hostile input ----

  static Stream<Arguments> hostileInput() throws Exception {
    byte[] message = handshakePayload(jdkClientHello("api.example.com"));
    byte[] ccs = record(20, 0x0303, bytes(1));
    return Stream.of(
        refused("empty input", new byte[0], HelloInspection.NeedMore.class, ""),
        refused("plaintext HTTP", "GET / HTTP/1.1\r\n".getBytes(StandardCharsets.US_ASCII),
            HelloInspection.NotTls.class, "plaintext"),
        refused("garbage", bytes(0x00, 0x13, 0x37, 0xde, 0xad), HelloInspection.NotTls.class,
            "content type 0"),
        refused("SSLv2-compatible hello",
            bytes(0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10),
            HelloInspection.NotTls.class, "SSLv2"),
        refused("alert instead of a hello", record(ALERT, 0x0303, bytes(2, 40)),
            HelloInspection.NotTls.class, "alert"),
        refused("record major version 2", bytes(HANDSHAKE, 0x02, 0x00, 0x00, 0x10),
            HelloInspection.NotTls.class, "major"),
        refused("first message a ServerHello", record(HANDSHAKE, 0x0303, bytes(2, 0, 0, 0)),
            HelloInspection.NotTls.class, "type 2"),
        refused("record claims 65535 bytes", bytes(HANDSHAKE, 0x03, 0x01, 0xff, 0xff),
            HelloInspection.Malformed.class, "record length 65535"),
        refused("hello claims 16 MiB",
            record(HANDSHAKE, 0x0301, bytes(CLIENT_HELLO, 0xff, 0xff, 0xff)),
            HelloInspection.Malformed.class, "too large"),
        refused("hello claims 70000 bytes",
            record(HANDSHAKE, 0x0301, bytes(CLIENT_HELLO, 0x01, 0x11, 0x70)),
            HelloInspection.Malformed.class, "too large"),
        refused("empty handshake record", bytes(HANDSHAKE, 0x03, 0x01, 0x00, 0x00),
            HelloInspection.Malformed.class, "empty handshake record"),
        refused("change_cipher_spec between fragments",
            concat(record(HANDSHAKE, 0x0301, Arrays.copyOf(message, 40)), ccs,
                record(HANDSHAKE, 0x0301, Arrays.copyOfRange(message, 40, message.length))),
            HelloInspection.Malformed.class, "interrupts"),
        refused("hello body shorter than its fields",
            record(HANDSHAKE, 0x0301, handshake(CLIENT_HELLO, bytes(3, 3, 0, 0))),
            HelloInspection.Malformed.class, "truncated random"),
        refused("hello legacy_version 0x0200",
            record(HANDSHAKE, 0x0301,
                handshake(CLIENT_HELLO, withVersion(clientHelloBody(), 0x0200))),
            HelloInspection.Malformed.class, "legacy_version"),
        refused("session id of 33 bytes",
            record(HANDSHAKE, 0x0301, handshake(CLIENT_HELLO, patch(clientHelloBody(), 34, 33))),
            HelloInspection.Malformed.class, "legacy_session_id of 33"),
        refused("odd cipher_suites length",
            record(HANDSHAKE, 0x0301, handshake(CLIENT_HELLO, patch(clientHelloBody(), 36, 3))),
            HelloInspection.Malformed.class, "cipher_suites length 3"),
        refused("no compression methods",
            record(HANDSHAKE, 0x0301, handshake(CLIENT_HELLO, patch(clientHelloBody(), 39, 0))),
            HelloInspection.Malformed.class, "legacy_compression_methods"),
        refused("extension length overruns the block",
            clientHelloRecord(concat(u16(0), u16(0x1000), bytes(0, 0))),
            HelloInspection.Malformed.class, "truncated extension server_name"),
        refused("extensions block overruns the hello",
            record(HANDSHAKE, 0x0301, handshake(CLIENT_HELLO,
                patch(clientHelloBody(serverName("a.example")), 42, 0xff))),
            HelloInspection.Malformed.class, "truncated extensions"),
        refused("bytes after the extensions",
            record(HANDSHAKE, 0x0301, handshake(CLIENT_HELLO, concat(clientHelloBody(), bytes(0)))),
            HelloInspection.Malformed.class, "stray"),
        refused("duplicate server_name",
            clientHelloRecord(serverName("api.example.com"), serverName("evil.example.net")),
            HelloInspection.Malformed.class, "duplicate server_name"),
        refused("two names in one server_name",
            clientHelloRecord(serverName("api.example.com", "evil.example.net")),
            HelloInspection.Malformed.class, "more than one name"),
        refused("server_name type not host_name",
            clientHelloRecord(extension(0, concat(u16(4), bytes(1), u16(1), bytes('a')))),
            HelloInspection.Malformed.class, "type 1"),
        refused("empty server_name list", clientHelloRecord(extension(0, u16(0))),
            HelloInspection.Malformed.class, "empty server_name list"),
        refused("server_name list overruns its extension",
            clientHelloRecord(extension(0, concat(u16(40), bytes(0), u16(1), bytes('a')))),
            HelloInspection.Malformed.class, "truncated server_name list"),
        refused("empty host", clientHelloRecord(serverName("")),
            HelloInspection.Malformed.class, "empty server_name host"),
        refused("NUL in host", clientHelloRecord(serverName("api.example.com\0.evil.net")),
            HelloInspection.Malformed.class, "0x00 at index 15"),
        refused("colon in host", clientHelloRecord(serverName("api.example.com:443")),
            HelloInspection.Malformed.class, "0x3a"),
        refused("non-ASCII host", clientHelloRecord(serverName("b\u00fccher.example")),
            HelloInspection.Malformed.class, "0xfc"),
        refused("empty label", clientHelloRecord(serverName("api..example.com")),
            HelloInspection.Malformed.class, "empty label"),
        refused("leading dot", clientHelloRecord(serverName(".example.com")),
            HelloInspection.Malformed.class, "empty label"),
        refused("label over 63", clientHelloRecord(serverName("a".repeat(64) + ".example")),
            HelloInspection.Malformed.class, "label over 63"),
        refused("host over 253", clientHelloRecord(serverName("a.".repeat(127) + "aa")),
            HelloInspection.Malformed.class, "must be 1 to 253"),
        refused("odd supported_versions", clientHelloRecord(
                extension(43, concat(bytes(3), u16(0x0304), bytes(3)))),
            HelloInspection.Malformed.class, "supported_versions length 3"),
        refused("1-byte records past 64 KiB",
            fragmented(HANDSHAKE, 0x0303, handshake(CLIENT_HELLO, clientHelloBody(
                serverName("big.example.com"), extension(21, new byte[12_000]))), 1),
            HelloInspection.Malformed.class, "too large"));
  }

  private static Arguments refused(String name, byte[] bytes, Class<?> type, String reason) {
    return Arguments.of(name, bytes, type, reason);
  }

  private static byte[] patch(byte[] body, int at, int value) {
    byte[] copy = body.clone();
    copy[at] = (byte) value;
    return copy;
  }

  private static byte[] withVersion(byte[] body, int version) {
    return patch(patch(body, 0, version >>> 8), 1, version);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("hostileInput")
  void refusesHostileInput(String name, byte[] bytes, Class<?> type, String reason) {
    HelloInspection.OfClient whole = inspect(bytes);
    assertThat(whole).isInstanceOf(type);
    if (whole instanceof HelloInspection.Refused refused) {
      assertThat(refused.reason()).contains(reason);
    }

    // The same verdict when the bytes dribble in one at a time.
    ClientHelloInspector inspector = new ClientHelloInspector();
    HelloInspection.OfClient dribbled = HelloInspection.NEED_MORE;
    for (int i = 0; i < bytes.length && !dribbled.done(); i++) {
      dribbled = inspector.offer(bytes, i, 1);
    }
    assertThat(dribbled).isEqualTo(whole);
  }

  @Test
  void acceptsTheHandBuiltBaselineTheHostileCasesBreak() {
    HelloInspection.ClientHello hello = hello(clientHelloRecord(
        serverName("API.example.com."), clientSupportedVersions(0x3a3a, 0x0304, 0x0303)));

    assertThat(hello.sni()).isEqualTo("api.example.com.");
    assertThat(hello.supportedVersions()).containsExactly(0x3a3a, 0x0304, 0x0303);
    assertThat(hello.highestVersion()).isEqualTo(0x0304);
  }

  @Test
  void doesNotAllocateWhatAHeaderClaims() {
    com.sun.management.ThreadMXBean threads =
        (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    byte[] claim = record(HANDSHAKE, 0x0301, bytes(CLIENT_HELLO, 0xff, 0xff, 0xff));
    byte[] body = new byte[16_000];

    long before = threads.getCurrentThreadAllocatedBytes();
    ClientHelloInspector inspector = new ClientHelloInspector();
    HelloInspection.OfClient first = inspector.offer(claim);
    long afterClaim = threads.getCurrentThreadAllocatedBytes();

    // 16 MiB claimed: over the limit, refused before any body buffer exists.
    assertThat(first).isInstanceOf(HelloInspection.Malformed.class);
    assertThat(afterClaim - before).isLessThan(8_192);

    // A claim under the limit (61440 bytes) grows the buffer only with the bytes that came.
    ClientHelloInspector growing = new ClientHelloInspector();
    byte[] start = record(HANDSHAKE, 0x0301,
        concat(bytes(CLIENT_HELLO, 0x00, 0xf0, 0x00), Arrays.copyOf(body, 100)));
    long beforeSmall = threads.getCurrentThreadAllocatedBytes();
    HelloInspection.OfClient partial = growing.offer(start);
    long afterSmall = threads.getCurrentThreadAllocatedBytes();

    assertThat(partial).isEqualTo(HelloInspection.NEED_MORE);
    assertThat(afterSmall - beforeSmall).isLessThan(8_192);
  }

  // ---- fuzz ----

  @Test
  void neverThrowsOnMutatedHellos() throws Exception {
    byte[] original = jdkClientHello("api.example.com");
    Random random = new Random(20_240_611L);
    int verdicts = 0;
    long deadline = System.nanoTime() + 60_000_000_000L;
    for (int round = 0; round < 20_000 && System.nanoTime() < deadline; round++) {
      byte[] mutated = mutate(original, random);
      ClientHelloInspector inspector = new ClientHelloInspector();
      HelloInspection.OfClient seen = HelloInspection.NEED_MORE;
      int at = 0;
      while (at < mutated.length) {
        int n = 1 + random.nextInt(mutated.length - at);
        seen = inspector.offer(mutated, at, n);
        at += n;
      }
      assertThat(seen).as("round %d", round).isNotNull();
      if (seen instanceof HelloInspection.ClientHello hello && hello.sni() != null) {
        assertThat(hello.sni()).as("round %d", round).matches("[a-z0-9._-]+");
      }
      if (seen instanceof HelloInspection.Malformed malformed) {
        assertThat(malformed.reason()).as("round %d", round).doesNotStartWith("unreadable");
      }
      verdicts += seen.done() ? 1 : 0;
    }
    assertThat(verdicts).isGreaterThan(10_000);
  }

  static byte[] mutate(byte[] original, Random random) {
    byte[] b = original.clone();
    switch (random.nextInt(5)) {
      case 0 -> { // flip a few bits
        for (int i = 0, n = 1 + random.nextInt(4); i < n; i++) {
          b[random.nextInt(b.length)] ^= (byte) (1 << random.nextInt(8));
        }
      }
      case 1 -> { // overwrite a byte with an extreme value
        b[random.nextInt(b.length)] = (byte) (random.nextBoolean() ? 0xff : 0x00);
      }
      case 2 -> { // random bytes over a short run
        int at = random.nextInt(b.length);
        for (int i = at; i < Math.min(b.length, at + 1 + random.nextInt(8)); i++) {
          b[i] = (byte) random.nextInt(256);
        }
      }
      case 3 -> { // cut out a slice
        int at = random.nextInt(b.length);
        int n = 1 + random.nextInt(Math.min(16, b.length - at));
        byte[] shorter = new byte[b.length - n];
        System.arraycopy(b, 0, shorter, 0, at);
        System.arraycopy(b, at + n, shorter, at, b.length - at - n);
        b = shorter;
      }
      default -> { // insert random bytes
        int at = random.nextInt(b.length);
        byte[] extra = new byte[1 + random.nextInt(16)];
        random.nextBytes(extra);
        b = concat(Arrays.copyOf(b, at), extra, Arrays.copyOfRange(b, at, b.length));
      }
    }
    return b;
  }
}
