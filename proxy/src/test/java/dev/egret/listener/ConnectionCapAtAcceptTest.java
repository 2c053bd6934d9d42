package dev.egret.listener;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A connection over {@code limits.maxConnections} is refused when it is accepted: it holds no
 * descriptor while the client waits to send, or sends nothing at all. On the proxy port it gets
 * the usual 503 {@code connection_limit_reached} before it has sent a byte; on a transparent TLS
 * listener, where an HTTP answer means nothing to a TLS client, it is closed at once. Both are
 * counted as refusals at the cap. Real sockets against a real Egret.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class ConnectionCapAtAcceptTest {
  /**
   * Far below {@code timeouts.requestHead} (10 s in the configs below), the longest an over-cap
   * connection used to be held when its client sent nothing.
   */
  private static final int AT_ONCE_MS = 4_000;

  @TempDir Path dir;

  @Test
  void answersAConnectionOverTheCap503BeforeItSendsAByteAndCloses() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        timeouts: {requestHead: 10s}
        limits: {maxConnections: 1}
        allow:
          - host: api.partner.test
        """)) {
      try (Socket held = new Socket("127.0.0.1", egret.proxyPort())) {
        awaitSample(egret, "egret_client_connections", 1);
        try (Socket over = new Socket("127.0.0.1", egret.proxyPort())) {
          over.setSoTimeout(AT_ONCE_MS);
          // Nothing is written: the answer and the close come from the accept alone.
          String answer = readToEnd(over.getInputStream());
          assertThat(answer).startsWith("HTTP/1.1 503 ")
              .containsPattern("(?i)proxy-status: [^\\r\\n]*error=connection_limit_reached")
              .contains("\"error\":\"connection_limit_reached\"")
              .contains("limits.maxConnections");
          awaitSample(egret, "egret_client_connections_refused_total", 1);
          // Egret let go of it although this client still holds its end open.
          awaitSample(egret, "egret_client_connections", 1);
        }
        // The held one still counts and is still served.
        held.getOutputStream().write(
            "GET http://denied.example/ HTTP/1.1\r\nHost: denied.example\r\n\r\n"
                .getBytes(StandardCharsets.US_ASCII));
        held.setSoTimeout(10_000);
        assertThat(new String(held.getInputStream().readNBytes(12), StandardCharsets.US_ASCII))
            .isEqualTo("HTTP/1.1 403");
      }
    }
  }

  @Test
  void closesATransparentTlsConnectionOverTheCapAtOnceWithoutAnHttpAnswer() throws Exception {
    int transparent = freePort();
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir, """
        version: 1
        listen:
          proxy: 127.0.0.1:0
          admin: 127.0.0.1:0
          transparent:
            - {address: 127.0.0.1:%d, port: 443, protocol: tls}
        timeouts: {requestHead: 10s}
        limits: {maxConnections: 1}
        allow:
          - host: api.partner.test
        """.formatted(transparent))) {
      try (Socket held = new Socket("127.0.0.1", egret.proxyPort())) {
        awaitSample(egret, "egret_client_connections", 1);
        try (Socket over = new Socket("127.0.0.1", transparent)) {
          over.setSoTimeout(AT_ONCE_MS);
          assertThat(readToEnd(over.getInputStream())).isEmpty();
        }
        awaitSample(egret, "egret_client_connections_refused_total", 1);
        awaitSample(egret, "egret_client_connections", 1);
      }
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** Reads until the server closes; fails if it does not close within the socket's timeout. */
  static String readToEnd(InputStream in) throws IOException {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    byte[] buf = new byte[4096];
    try {
      for (int n; (n = in.read(buf)) >= 0; ) {
        all.write(buf, 0, n);
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the server did not close the connection at once; it sent: "
          + all.toString(StandardCharsets.ISO_8859_1), e);
    }
    return all.toString(StandardCharsets.ISO_8859_1);
  }

  /** Scrapes until the unlabelled sample {@code name} equals {@code expected}, for 15 s. */
  static void awaitSample(EgretFixture egret, String name, double expected) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
    Pattern line = Pattern.compile("(?m)^" + Pattern.quote(name) + " (\\S+)$");
    String last = "";
    while (System.nanoTime() < deadline) {
      last = egret.scrape();
      Matcher m = line.matcher(last);
      if (m.find() && Double.parseDouble(m.group(1)) == expected) {
        return;
      }
    }
    throw new AssertionError(name + " never reached " + expected + ":\n" + last);
  }
}
