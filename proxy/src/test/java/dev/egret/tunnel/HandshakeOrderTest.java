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
import static dev.egret.tunnel.HelloBytes.u16;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every clear handshake record is judged before any byte of it reaches the other side, also
 * later in the handshake: the ClientHello a client sends again after a HelloRetryRequest, and a
 * clear ClientHello sent behind a change_cipher_spec that would claim the rest is encrypted. A
 * scripted upstream answers the first hello and counts every byte that arrives after it.
 */
class HandshakeOrderTest {
  private static final String HOST = "api.partner.test";
  private static final Duration WAIT = Duration.ofSeconds(10);
  /** The random of every HelloRetryRequest (RFC 8446 4.1.3). */
  private static final byte[] HRR_RANDOM = bytes(
      0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8,
      0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8,
      0x33, 0x9c);
  private static final byte[] CHANGE_CIPHER_SPEC = bytes(20, 3, 3, 0, 1, 1);

  @TempDir static Path dir;
  static ServerSocket scripted;
  static RecordingTelemetry telemetry;
  static EgretFixture egret;

  @BeforeAll
  static void start() throws Exception {
    scripted = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
    telemetry = new RecordingTelemetry();
    egret = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1")).telemetry(telemetry)
        .start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        addresses: {allow: [127.0.0.1/32]}
        timeouts: {handshake: 5s, idle: 10s}
        tls: {minVersion: TLSv1.2}
        allow:
          - host: %s
            ports: [%d]
        """.formatted(HOST, scripted.getLocalPort()));
  }

  @AfterAll
  static void stop() throws Exception {
    egret.close();
    scripted.close();
  }

  private static String authority() {
    return HOST + ":" + scripted.getLocalPort();
  }

  private static byte[] hello(String host) {
    return clientHelloRecord(serverName(host), HelloBytes.clientSupportedVersions(0x0304, 0x0303));
  }

  /**
   * Accepts one tunnel, reads exactly the first hello, answers with {@code answer}, then counts
   * what else arrives until Egret closes.
   */
  private static CompletableFuture<Long> upstream(int helloLength, byte[] answer) {
    return CompletableFuture.supplyAsync(() -> {
      try (Socket s = scripted.accept()) {
        s.setSoTimeout(15_000);
        InputStream in = s.getInputStream();
        in.readNBytes(helloLength);
        s.getOutputStream().write(answer);
        s.getOutputStream().flush();
        return ProxyConnect.readUntilClosed(in);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
  }

  /** Sends the first hello, waits for the upstream's answer, then sends {@code next}. */
  private static void client(byte[] first, int answerLength, byte[] next) throws Exception {
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority())) {
      assertThat(c.status()).isEqualTo(200);
      OutputStream out = c.socket().getOutputStream();
      out.write(first);
      out.flush();
      assertThat(c.socket().getInputStream().readNBytes(answerLength)).hasSize(answerLength);
      out.write(next);
      out.flush();
      ProxyConnect.readUntilClosed(c.socket().getInputStream());
    }
  }

  @Test
  void judgesTheClientHelloSentAfterAHelloRetryRequestBeforeRelayingAnyOfIt() throws Exception {
    byte[] first = hello(HOST);
    byte[] retry = record(22, 0x0303, handshake(2, serverHelloBody(0x0303, HRR_RANDOM, 0x1301,
        extension(43, u16(0x0304)))));
    CompletableFuture<Long> afterHello = upstream(first.length, retry);

    client(first, retry.length, hello("other.example"));

    assertThat(afterHello.get(WAIT.toSeconds(), TimeUnit.SECONDS))
        .as("bytes of the second ClientHello the upstream received").isZero();
    Hop hop = telemetry.awaitHop(h -> authority().equals(h.url) && h.error != null
        && h.errorDetails.contains("other.example"), WAIT);
    assertThat(hop.error).isEqualTo(ErrorKind.REQUEST_DENIED);
    assertThat(hop.outcome()).isEqualTo("denied");
  }

  @Test
  void relaysTheSecondClientHelloAfterAHelloRetryRequestWhenItNamesTheSameHost() throws Exception {
    byte[] first = hello(HOST);
    byte[] retry = concat(record(22, 0x0303, handshake(2, serverHelloBody(0x0303, HRR_RANDOM,
        0x1301, extension(43, u16(0x0304))))), CHANGE_CIPHER_SPEC);
    byte[] second = concat(CHANGE_CIPHER_SPEC, hello(HOST));
    CompletableFuture<Long> afterHello = upstream(first.length, retry);

    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), authority())) {
      OutputStream out = c.socket().getOutputStream();
      out.write(first);
      out.flush();
      assertThat(c.socket().getInputStream().readNBytes(retry.length)).hasSize(retry.length);
      out.write(second);
      out.flush();
      c.socket().shutdownOutput(); // the tunnel ends once the retry hello went through
      ProxyConnect.readUntilClosed(c.socket().getInputStream());
    }

    assertThat(afterHello.get(WAIT.toSeconds(), TimeUnit.SECONDS)).isEqualTo(second.length);
  }

  @Test
  void neverRelaysAClearClientHelloBehindAChangeCipherSpec() throws Exception {
    byte[] first = hello(HOST);
    // A TLS 1.2 server's whole first flight, as short as it can be: ServerHello, ServerHelloDone.
    byte[] flight = record(22, 0x0303, concat(
        handshake(2, serverHelloBody(0x0303, new byte[32], 0xc02f)), handshake(14, new byte[0])));
    CompletableFuture<Long> afterHello = upstream(first.length, flight);

    client(first, flight.length, concat(CHANGE_CIPHER_SPEC, hello("other.example")));

    assertThat(afterHello.get(WAIT.toSeconds(), TimeUnit.SECONDS))
        .as("bytes the upstream received after the first hello").isZero();
    Hop hop = telemetry.awaitHop(h -> authority().equals(h.url) && h.error != null
        && h.errorDetails.contains("change_cipher_spec"), WAIT);
    assertThat(hop.error).isEqualTo(ErrorKind.TLS_PROTOCOL_ERROR);
    assertThat(hop.outcome()).isEqualTo("failed");
  }
}
