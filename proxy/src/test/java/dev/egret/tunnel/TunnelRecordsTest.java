package dev.egret.tunnel;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.RecordingTelemetry;
import static dev.egret.tunnel.HelloBytes.bytes;
import static dev.egret.tunnel.HelloBytes.clientHelloRecord;
import static dev.egret.tunnel.HelloBytes.concat;
import static dev.egret.tunnel.HelloBytes.extension;
import static dev.egret.tunnel.HelloBytes.handshake;
import static dev.egret.tunnel.HelloBytes.record;
import static dev.egret.tunnel.HelloBytes.serverHelloBody;
import static dev.egret.tunnel.HelloBytes.serverName;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The TLS record layer is checked for a tunnel's whole life, both ways (hardening issue,
 * classes 1 to 3): plaintext behind a valid hello, a second ClientHello, plaintext behind a
 * ServerHello, an encrypted ClientHello, and the connection slot every tunnel must give back.
 * Raw sockets play the client and a scripted upstream plays the server.
 */
class TunnelRecordsTest {
  private static final String HOST = "api.partner.test";
  private static final String ECH_HOST = "ech.partner.test";
  private static final Duration WAIT = Duration.ofSeconds(10);
  private static final byte[] PLAIN =
      "GET /secret HTTP/1.1\r\nHost: evil.example\r\n\r\n".getBytes(StandardCharsets.US_ASCII);

  @TempDir static Path dir;
  static RawUpstream raw;
  static ServerSocket scripted;
  static RecordingTelemetry telemetry;
  static EgretFixture egret;

  @BeforeAll
  static void start() throws Exception {
    raw = RawUpstream.start();
    scripted = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
    telemetry = new RecordingTelemetry();
    egret = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1", ECH_HOST, "127.0.0.1"))
        .telemetry(telemetry).start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        addresses: {allow: [127.0.0.1/32]}
        timeouts: {handshake: 5s, idle: 10s}
        limits: {maxConnections: 4}
        allow:
          - host: %s
            ports: [%d, %d]
          - host: %s
            ports: [%d]
            ech: allow
        """.formatted(HOST, raw.port(), scripted.getLocalPort(), ECH_HOST, raw.port()));
  }

  @AfterAll
  static void stop() throws Exception {
    egret.close();
    raw.close();
    scripted.close();
  }

  @org.junit.jupiter.api.BeforeEach
  void upstreamAtRest() throws InterruptedException {
    // The index-based counts below assume no connection of an earlier test is still closing.
    raw.awaitNoneOpen(WAIT);
  }

  private static String authority(String host, int port) {
    return host + ":" + port;
  }

  /** The hop to this authority cut with this error whose details say {@code why}. */
  private static Hop cut(String authority, ErrorKind error, String why) throws Exception {
    return telemetry.awaitHop(h -> authority.equals(h.url) && h.error == error
        && h.errorDetails != null && h.errorDetails.contains(why), WAIT);
  }

  private static byte[] hello(String host) {
    return clientHelloRecord(serverName(host));
  }

  /** Opens a tunnel to the raw upstream, writes each part in its own segment, reads to EOF. */
  private static long tunnel(String host, byte[]... parts) throws Exception {
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(host, raw.port()))) {
      assertThat(c.status()).isEqualTo(200);
      OutputStream out = c.socket().getOutputStream();
      for (byte[] part : parts) {
        out.write(part);
        out.flush();
      }
      c.socket().shutdownOutput(); // the client is done: the tunnel ends once Egret relayed it
      return ProxyConnect.readUntilClosed(c.socket().getInputStream());
    }
  }

  @Test
  void cutsPlaintextSentInTheSameSegmentAsAValidClientHelloForwardingNothing() throws Exception {
    int before = raw.closedCount();

    tunnel(HOST, concat(hello(HOST), PLAIN));

    assertThat(raw.awaitClosed(before, WAIT)).as("bytes the upstream received").isZero();
    Hop hop = cut(authority(HOST, raw.port()), ErrorKind.TLS_PROTOCOL_ERROR,
        "record of type 71, which is not a TLS record type");
    assertThat(hop.errorDetails).contains("not well-formed TLS");
    assertThat(hop.outcome()).isEqualTo("failed");
  }

  @Test
  void cutsPlaintextSentAfterTheClientHelloLetOnlyTheHelloThrough() throws Exception {
    int before = raw.closedCount();
    byte[] hello = hello(HOST);
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(HOST, raw.port()))) {
      OutputStream out = c.socket().getOutputStream();
      out.write(hello);
      out.flush();
      // A record header that frames plaintext as "application data" before any handshake.
      out.write(concat(bytes(23, 3, 3, 0, PLAIN.length), PLAIN));
      out.flush();
      ProxyConnect.readUntilClosed(c.socket().getInputStream());
    }
    // The hello may have been relayed before the next segment came, or held with it: never more.
    assertThat(raw.awaitClosed(before, WAIT)).isLessThanOrEqualTo(hello.length);
    cut(authority(HOST, raw.port()), ErrorKind.TLS_PROTOCOL_ERROR,
        "application data before the TLS handshake allowed it");
  }

  @Test
  void cutsASecondClientHelloNamingAnotherHost() throws Exception {
    int before = raw.closedCount();
    byte[] first = hello(HOST);

    tunnel(HOST, first, hello("other.example"));

    assertThat(raw.awaitClosed(before, WAIT)).isLessThanOrEqualTo(first.length);
    cut(authority(HOST, raw.port()), ErrorKind.TLS_PROTOCOL_ERROR, "another ClientHello");
  }

  @Test
  void cutsHeartbeatAndOversizedRecords() throws Exception {
    int before = raw.closedCount();
    byte[] first = hello(HOST);

    tunnel(HOST, first, bytes(24, 3, 3, 0, 3, 1, 0, 0));

    assertThat(raw.awaitClosed(before, WAIT)).isLessThanOrEqualTo(first.length);
    cut(authority(HOST, raw.port()), ErrorKind.TLS_PROTOCOL_ERROR, "heartbeat");

    tunnel(HOST, concat(first, bytes(22, 3, 3, 0x48, 0x01)));
    assertThat(raw.awaitClosed(before + 1, WAIT)).isZero();
    cut(authority(HOST, raw.port()), ErrorKind.TLS_PROTOCOL_ERROR, "over TLS's 18432");
  }

  @Test
  void neverDeliversPlaintextAServerSendsAfterAWellFormedServerHello() throws Exception {
    byte[] serverHello = record(22, 0x0303,
        handshake(2, serverHelloBody(0x0303, new byte[32], 0xc02f)));
    byte[] secret = "HTTP/1.1 200 OK\r\n\r\nthe secret".getBytes(StandardCharsets.US_ASCII);
    CompletableFuture<Void> server = CompletableFuture.runAsync(() -> {
      try (Socket s = scripted.accept()) {
        s.getInputStream().read(new byte[4096]); // the ClientHello
        s.getOutputStream().write(serverHello);
        s.getOutputStream().flush();
        s.getOutputStream().write(secret);
        s.getOutputStream().flush();
        s.getInputStream().read(); // until Egret cuts
      } catch (IOException e) {
        // the cut
      }
    });
    ByteArrayOutputStream received = new ByteArrayOutputStream();
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(),
        authority(HOST, scripted.getLocalPort()))) {
      c.socket().getOutputStream().write(hello(HOST));
      c.socket().getOutputStream().flush();
      InputStream in = c.socket().getInputStream();
      byte[] buf = new byte[4096];
      try {
        for (int n; (n = in.read(buf)) >= 0; ) {
          received.write(buf, 0, n);
        }
      } catch (IOException reset) {
        // a reset is a close too
      }
    }
    server.get(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(received.toString(StandardCharsets.ISO_8859_1)).doesNotContain("secret");
    Hop hop = cut(authority(HOST, scripted.getLocalPort()), ErrorKind.TLS_PROTOCOL_ERROR,
        "sent bytes in the tunnel that are not well-formed TLS");
    assertThat(hop.tlsVersion).isEqualTo("TLSv1.2");
  }

  @Test
  void anUpstreamResetMidTunnelIsTheHopsFailure() throws Exception {
    byte[] serverHello = record(22, 0x0303,
        handshake(2, serverHelloBody(0x0303, new byte[32], 0xc02f)));
    CompletableFuture<Void> server = CompletableFuture.runAsync(() -> {
      try (Socket s = scripted.accept()) {
        s.getInputStream().read(new byte[4096]); // the ClientHello
        s.getOutputStream().write(serverHello);
        s.getOutputStream().flush();
        s.setSoLinger(true, 0); // close with RST, not FIN
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(),
        authority(HOST, scripted.getLocalPort()))) {
      assertThat(c.status()).isEqualTo(200);
      c.socket().getOutputStream().write(hello(HOST));
      c.socket().getOutputStream().flush();
      try {
        ProxyConnect.readUntilClosed(c.socket().getInputStream());
      } catch (IOException reset) {
        // Egret closes the client's side too
      }
    }
    server.get(WAIT.toSeconds(), TimeUnit.SECONDS);
    Hop hop = telemetry.awaitHop(h -> authority(HOST, scripted.getLocalPort()).equals(h.url)
        && h.error != null && h.error != ErrorKind.TLS_PROTOCOL_ERROR, WAIT);
    assertThat(hop.error).isEqualTo(ErrorKind.DESTINATION_UNAVAILABLE);
    assertThat(hop.outcome()).isEqualTo("failed");
    assertThat(hop.errorDetails).contains(HOST);
    assertThat(hop.tlsVersion).isEqualTo("TLSv1.2"); // the ServerHello got through first
  }

  @Test
  void cutsAnEncryptedClientHelloUnlessTheRuleAllowsIt() throws Exception {
    byte[] ech = clientHelloRecord(serverName(HOST),
        extension(0xfe0d, bytes(0, 0, 1, 0, 1)));
    int before = raw.closedCount();

    tunnel(HOST, ech);

    assertThat(raw.awaitClosed(before, WAIT)).isZero();
    cut(authority(HOST, raw.port()), ErrorKind.REQUEST_DENIED, "ech: allow");

    byte[] allowed = clientHelloRecord(serverName(ECH_HOST),
        extension(0xfe0d, bytes(0, 0, 1, 0, 1)));
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(ECH_HOST, raw.port()))) {
      c.socket().getOutputStream().write(allowed);
      c.socket().getOutputStream().flush();
      c.socket().shutdownOutput();
      ProxyConnect.readUntilClosed(c.socket().getInputStream());
    }
    // Connections of earlier tests may still be closing: find this one by its byte count (no
    // other test sends this hello), waiting for it with a deadline.
    long deadline = System.nanoTime() + WAIT.toNanos();
    boolean relayed = false;
    while (!relayed && System.nanoTime() < deadline) {
      relayed = raw.awaitClosedConnections(raw.closedCount(), WAIT)
          .contains((long) allowed.length);
      if (!relayed) {
        java.util.concurrent.locks.LockSupport.parkNanos(5_000_000); // polls a list, bounded
      }
    }
    assertThat(relayed).as("the upstream received the whole allowed ECH hello").isTrue();
  }

  @ParameterizedTest(name = "extension 0x{0}")
  @ValueSource(strings = {"fe0a", "fe0c", "ffce"})
  void cutsTheDraftEncryptedClientHelloAndEsniExtensionsLikeTheFinalOne(String type)
      throws Exception {
    byte[] draft = clientHelloRecord(serverName(HOST),
        extension(Integer.parseInt(type, 16), bytes(0, 0, 1, 0, 1)));
    int before = raw.closedCount();

    tunnel(HOST, draft);

    assertThat(raw.awaitClosed(before, WAIT)).as("bytes the upstream received").isZero();
    Hop hop = telemetry.awaitHop(h -> authority(HOST, raw.port()).equals(h.url)
        && h.error == ErrorKind.REQUEST_DENIED && h.errorDetails.contains("0x" + type), WAIT);
    assertThat(hop.errorDetails).contains("ech: allow");
    assertThat(hop.outcome()).isEqualTo("denied");
  }

  @Test
  void everyTunnelGivesItsConnectionSlotBack() throws Exception {
    // maxConnections is 4: forty tunnels that end in every way must leave all four slots free.
    for (int i = 0; i < 10; i++) {
      tunnel(HOST, hello(HOST)); // relayed, then the upstream drains and the client leaves
      tunnel(HOST, concat(hello(HOST), PLAIN)); // cut by Egret
      try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(HOST, raw.port()))) {
        c.socket().setSoLinger(true, 0); // the client resets
      }
      try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(HOST, raw.port()))) {
        assertThat(c.status()).isEqualTo(200); // and one that never sends a byte
      }
    }
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (egret.server().downstreamConnections() > 0 && System.nanoTime() < deadline) {
      java.util.concurrent.locks.LockSupport.parkNanos(5_000_000); // polls a count, bounded
    }
    assertThat(egret.server().downstreamConnections()).isZero();
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority(HOST, raw.port()))) {
      assertThat(c.status()).isEqualTo(200);
    }
  }
}
