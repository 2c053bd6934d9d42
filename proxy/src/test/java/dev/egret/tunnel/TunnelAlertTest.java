package dev.egret.tunnel;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.RecordingTelemetry;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A server's alert before its ServerHello. A fatal alert ends the handshake and is passed on so
 * the client sees why; a warning alert is a cut, because what follows it could be any
 * ServerHello, and the version check must not be stepped around.
 */
class TunnelAlertTest {
  private static final String HOST = "alert.partner.test";
  @TempDir Path dir;

  /** An upstream that reads the ClientHello, answers with {@code reply}, and holds the socket. */
  private static ServerSocket answering(byte[] reply) throws Exception {
    ServerSocket server = new ServerSocket(0, 5, InetAddress.getByName("127.0.0.1"));
    Thread t = new Thread(() -> {
      try (Socket s = server.accept()) {
        s.getInputStream().read(new byte[16384]);
        s.getOutputStream().write(reply);
        s.getOutputStream().flush();
        s.getInputStream().read(); // until Egret closes
      } catch (Exception e) {
        // the test asserts what the client saw
      }
    }, "alert-upstream");
    t.setDaemon(true);
    t.start();
    return server;
  }

  /** What the client receives after sending a real ClientHello through the tunnel. */
  private static byte[] exchange(EgretFixture egret, int port) throws Exception {
    try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), HOST + ":" + port)) {
      assertThat(c.status()).isEqualTo(200);
      Socket s = c.socket();
      s.setSoTimeout(10_000);
      s.getOutputStream().write(HelloBytes.jdkClientHello(HOST));
      s.getOutputStream().flush();
      InputStream in = s.getInputStream();
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      byte[] buf = new byte[1024];
      for (int n; (n = in.read(buf)) >= 0; ) {
        got.write(buf, 0, n);
      }
      return got.toByteArray();
    }
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

  @Test
  void cutsATunnelWhoseServerSendsAWarningAlertBeforeItsHello() throws Exception {
    byte[] warning = {21, 3, 3, 0, 2, 1, 112}; // warning, unrecognized_name
    try (ServerSocket upstream = answering(warning)) {
      RecordingTelemetry telemetry = new RecordingTelemetry();
      try (EgretFixture egret = egret(upstream.getLocalPort(), telemetry)) {
        byte[] got = exchange(egret, upstream.getLocalPort());
        assertThat(got).as("nothing of the server's reply is relayed").isEmpty();
        Hop hop = telemetry.awaitHop(h -> h.error == ErrorKind.TLS_PROTOCOL_ERROR,
            Duration.ofSeconds(10));
        assertThat(hop.errorDetails).contains("warning alert").contains("unrecognized_name");
      }
    }
  }

  @Test
  void passesAFatalAlertOnAndEndsTheTunnel() throws Exception {
    byte[] fatal = {21, 3, 3, 0, 2, 2, 40}; // fatal, handshake_failure
    try (ServerSocket upstream = answering(fatal)) {
      RecordingTelemetry telemetry = new RecordingTelemetry();
      try (EgretFixture egret = egret(upstream.getLocalPort(), telemetry)) {
        byte[] got = exchange(egret, upstream.getLocalPort());
        assertThat(got).as("the client sees the server's own refusal").containsExactly(fatal);
        Hop hop = telemetry.awaitHop(h -> h.kind != null, Duration.ofSeconds(10));
        assertThat(hop.error).as("a handshake the server refused is not a tunnel that ended well")
            .isEqualTo(ErrorKind.TLS_PROTOCOL_ERROR);
        assertThat(hop.errorDetails).contains("handshake_failure");
        assertThat(hop.tlsVersion).isEqualTo("none");
      }
    }
  }
}
