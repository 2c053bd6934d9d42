package dev.egret.listener;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Admitted connections that fill the descriptor table (caps above what {@code ulimit -n} can
 * hold, which Egret warns of at start) pause accepting rather than end the process: the
 * connections already admitted keep being served, and once they close, Egret accepts and serves
 * again by itself, so it is never alive serving nothing. A real {@code egret run} in a child JVM
 * with a small {@code ulimit -n}.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class AcceptPauseTest {
  private static final int OPEN_FILES = 400;
  private static final Duration DEADLINE = Duration.ofSeconds(60);
  private static final byte[] DENIED = ("GET http://denied.example/ HTTP/1.1\r\n"
      + "Host: denied.example\r\n\r\n").getBytes(StandardCharsets.US_ASCII);

  @TempDir Path dir;

  @Test
  void connectionsThatFillTheTablePauseAcceptingAndEgretServesAgainOnceTheyClose()
      throws Exception {
    try (EgretFixture egret = EgretFixture.builder().childJvm("-Xmx64m").openFileLimit(OPEN_FILES)
        .start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        timeouts: {requestHead: 120s, idle: 120s}
        allow:
          - host: api.partner.test
        """)) {
      // Foretold at start: the default caps need more descriptors than the limit gives.
      assertThat(egret.messages()).anySatisfy(m -> assertThat(m)
          .contains("the descriptor limit (ulimit -n) is " + OPEN_FILES));
      List<Socket> flood = new ArrayList<>();
      try {
        // Idle connections under limits.maxConnections (4096), each a descriptor in Egret, past
        // the table's size; the kernel's backlog completes the handshakes Egret cannot accept.
        Socket first = connect(egret.proxyPort());
        flood.add(first);
        // Served once before the table fills, as a running Egret has been: the test runs Egret
        // from a class directory, where loading a class Egret has not used yet opens a file.
        first.getOutputStream().write(DENIED);
        assertThat(new String(first.getInputStream().readNBytes(12), StandardCharsets.US_ASCII))
            .isEqualTo("HTTP/1.1 403");
        readToEmptyLine(first.getInputStream());
        for (int i = 0; i < OPEN_FILES + 50; i++) {
          flood.add(connect(egret.proxyPort()));
        }
        egret.awaitMessage(m -> m.startsWith("egret: the descriptor table is full")
            && m.contains("is paused"), DEADLINE);
        first.getOutputStream().write(DENIED);
        assertThat(new String(first.getInputStream().readNBytes(12), StandardCharsets.US_ASCII))
            .as("an admitted connection's request; egret said %s", egret.messages())
            .isEqualTo("HTTP/1.1 403");
        assertThat(egret.alive()).as("egret said %s", egret.messages()).isTrue();
      } finally {
        for (Socket s : flood) {
          s.close();
        }
      }
      egret.awaitMessage(m -> m.startsWith("egret: accepting again after"), DEADLINE);
      String answer = "";
      long deadline = System.nanoTime() + DEADLINE.toNanos();
      while (!answer.startsWith("HTTP/1.1 403") && System.nanoTime() < deadline
          && egret.alive()) {
        try (Socket s = connect(egret.proxyPort())) {
          s.getOutputStream().write(DENIED);
          answer = new String(s.getInputStream().readNBytes(12), StandardCharsets.US_ASCII);
        } catch (IOException e) {
          answer = e.toString(); // the backlog's last connections may still hold descriptors
        }
      }
      assertThat(answer).as("a new connection; egret said %s", egret.messages())
          .isEqualTo("HTTP/1.1 403");
      String readyz = "";
      while (!readyz.startsWith("HTTP/1.1 200") && System.nanoTime() < deadline
          && egret.alive()) {
        try (Socket s = connect(egret.adminPort())) {
          s.getOutputStream().write("GET /readyz HTTP/1.1\r\nHost: egret\r\nConnection: close\r\n\r\n"
              .getBytes(StandardCharsets.US_ASCII));
          readyz = readToEnd(s.getInputStream());
        } catch (IOException e) {
          readyz = e.toString();
        }
      }
      assertThat(readyz).startsWith("HTTP/1.1 200").endsWith("ready");
      assertThat(egret.alive()).isTrue();
      assertThat(egret.messages()).noneMatch(m -> m.startsWith("egret: fatal"));
    }
  }

  private static Socket connect(int port) throws IOException {
    Socket s = new Socket();
    s.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
    s.setSoTimeout(15_000);
    return s;
  }

  /** Reads a response's head and its body, which ends where its Content-Length says. */
  private static void readToEmptyLine(InputStream in) throws IOException {
    StringBuilder head = new StringBuilder();
    while (!head.toString().endsWith("\r\n\r\n")) {
      int b = in.read();
      if (b < 0) {
        throw new IOException("closed within the head: " + head);
      }
      head.append((char) b);
    }
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?i)content-length: *(\\d+)")
        .matcher(head);
    if (m.find()) {
      in.readNBytes(Integer.parseInt(m.group(1)));
    }
  }

  private static String readToEnd(InputStream in) throws IOException {
    return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
  }
}
