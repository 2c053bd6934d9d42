package dev.egret.tunnel;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.RecordingTelemetry;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A CONNECT tunnel whose TLS handshake ends in the clear, before the server's hello: the hop is
 * a counted, classified failure, never a tunnel that ended well.
 */
class TunnelHandshakeEndTest {
  private static final String HOST = "ending.partner.test";
  private static final Duration WAIT = Duration.ofSeconds(10);
  @TempDir Path dir;

  /** An upstream that reads the ClientHello, writes {@code reply} (maybe empty), and closes. */
  private static ServerSocket answeringThenClosing(byte[] reply) throws Exception {
    ServerSocket server = new ServerSocket(0, 5, InetAddress.getByName("127.0.0.1"));
    Thread t = new Thread(() -> {
      try (Socket s = server.accept()) {
        s.getInputStream().read(new byte[16384]);
        s.getOutputStream().write(reply);
        s.getOutputStream().flush();
        s.shutdownOutput(); // a FIN, not a reset
        s.getInputStream().read(); // until Egret closes
      } catch (Exception e) {
        // the test asserts what Egret logged
      }
    }, "ending-upstream");
    t.setDaemon(true);
    t.start();
    return server;
  }

  private EgretFixture egret(int port, RecordingTelemetry telemetry) throws Exception {
    return EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1")).telemetry(telemetry)
        .start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d]
        """.formatted(HOST, port));
  }

  /** Sends {@code bytes} through a tunnel, then reads until Egret closes (or closes at once). */
  private static void send(EgretFixture egret, int port, byte[] bytes, boolean readToEnd)
      throws Exception {
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), HOST + ":" + port)) {
      assertThat(c.status()).isEqualTo(200);
      Socket s = c.socket();
      s.setSoTimeout(10_000);
      s.getOutputStream().write(bytes);
      s.getOutputStream().flush();
      if (readToEnd) {
        InputStream in = s.getInputStream();
        byte[] buf = new byte[1024];
        while (in.read(buf) >= 0) {
          // drain until Egret closes
        }
      }
    }
  }

  @Test
  void countsAnUpstreamThatAnswersTheHelloWithAFatalAlertAsAProtocolError() throws Exception {
    byte[] fatal = {0x15, 3, 3, 0, 2, 2, 0x28}; // fatal, handshake_failure
    try (ServerSocket upstream = answeringThenClosing(fatal)) {
      RecordingTelemetry telemetry = new RecordingTelemetry();
      try (EgretFixture egret = egret(upstream.getLocalPort(), telemetry)) {
        send(egret, upstream.getLocalPort(), HelloBytes.jdkClientHello(HOST), true);
        Hop hop = telemetry.awaitHop(h -> h.kind != null, WAIT);
        assertThat(hop.error).isEqualTo(ErrorKind.TLS_PROTOCOL_ERROR);
        assertThat(hop.outcome()).isEqualTo("failed");
        assertThat(hop.errorLabel()).isEqualTo("tls_protocol_error");
        assertThat(hop.errorDetails).contains("alert").contains("handshake_failure")
            .contains("40");
        assertThat(hop.tlsVersion).isEqualTo("none");
      }
    }
  }

  @Test
  void countsAnUpstreamThatClosesBeforeItsServerHelloAsUnavailable() throws Exception {
    try (ServerSocket upstream = answeringThenClosing(new byte[0])) {
      RecordingTelemetry telemetry = new RecordingTelemetry();
      try (EgretFixture egret = egret(upstream.getLocalPort(), telemetry)) {
        send(egret, upstream.getLocalPort(), HelloBytes.jdkClientHello(HOST), true);
        Hop hop = telemetry.awaitHop(h -> h.kind != null, WAIT);
        assertThat(hop.error).isEqualTo(ErrorKind.DESTINATION_UNAVAILABLE);
        assertThat(hop.outcome()).isEqualTo("failed");
        assertThat(hop.errorLabel()).isEqualTo("destination_unavailable");
        assertThat(hop.errorDetails).contains("ServerHello");
      }
    }
  }

  @Test
  void countsAClientThatClosesMidHelloAsAborted() throws Exception {
    try (RawUpstream upstream = RawUpstream.start()) {
      RecordingTelemetry telemetry = new RecordingTelemetry();
      try (EgretFixture egret = egret(upstream.port(), telemetry)) {
        byte[] hello = HelloBytes.jdkClientHello(HOST);
        send(egret, upstream.port(), Arrays.copyOf(hello, hello.length / 2), false);
        Hop hop = telemetry.awaitHop(h -> h.kind != null, WAIT);
        assertThat(hop.error).isEqualTo(ErrorKind.DOWNSTREAM_ABORTED);
        assertThat(hop.errorLabel()).isEqualTo(ErrorKind.DOWNSTREAM_ABORTED.proxyStatusError());
        assertThat(hop.errorDetails).contains("ClientHello");
        assertThat(upstream.awaitClosed(0, WAIT)).as("nothing of a half hello is relayed")
            .isZero();
      }
    }
  }
}
