package dev.egret.listener;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Connections refused at {@code limits.maxConnections} can never take the descriptors the admitted
 * ones and the admin port need: one local client that opens a burst of connections and holds
 * them, more than the whole descriptor table, while every slot is taken, leaves Egret alive, its
 * admitted connections served and {@code /readyz} answering; once the burst closes, a new
 * connection is served. A real {@code egret run} in a child JVM with a small {@code ulimit -n},
 * which its own start-up check accepts for these caps.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class RefusalBurstTest {
  private static final int OPEN_FILES = 400;
  private static final int CAP = 20;
  private static final int BURST = 600;
  private static final long DEADLINE_MS = 60_000;
  private static final byte[] DENIED = ("GET http://denied.example/ HTTP/1.1\r\n"
      + "Host: denied.example\r\n\r\n").getBytes(StandardCharsets.US_ASCII);

  @TempDir Path dir;

  @Test
  void aBurstOfRefusedConnectionsLeavesAdmittedConnectionsAndReadinessServing() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().childJvm("-Xmx64m").openFileLimit(OPEN_FILES)
        .start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        timeouts: {requestHead: 120s, idle: 120s}
        limits: {maxConnections: %d, maxAdminConnections: 8}
        allow:
          - host: api.partner.test
        """.formatted(CAP))) {
      assertThat(egret.messages()).as("the start-up check accepts these caps under ulimit -n %d",
          OPEN_FILES).noneMatch(m -> m.contains("descriptor limit"));
      List<Socket> held = new ArrayList<>();
      List<SocketChannel> burst = new ArrayList<>();
      try {
        for (int i = 0; i < CAP; i++) {
          held.add(connect(egret.proxyPort()));
        }
        awaitSample(egret, "egret_client_connections", CAP);
        // All at once, as a client with many threads would: each connect is sent without
        // waiting for the one before it, so Egret accepts them as fast as it can.
        InetSocketAddress proxy = new InetSocketAddress("127.0.0.1", egret.proxyPort());
        for (int i = 0; i < BURST; i++) {
          SocketChannel ch = SocketChannel.open();
          burst.add(ch);
          ch.configureBlocking(false);
          ch.connect(proxy);
        }
        for (int i = 0; i < BURST; i++) {
          SocketChannel ch = burst.get(i);
          ch.configureBlocking(true);
          try {
            ch.finishConnect(); // the kernel's backlog (1,024) completes it, accepted or not
          } catch (IOException e) {
            throw new AssertionError("connection " + i + " of the burst: " + e + "; alive: "
                + egret.alive() + "; egret said " + egret.messages(), e);
          }
        }
        // Every one of the burst has been accepted and refused (Egret outlived the burst).
        awaitSample(egret, "egret_client_connections_refused_total", BURST);
        assertThat(readyz(egret)).as("egret said %s", egret.messages())
            .startsWith("HTTP/1.1 200").endsWith("ready");
        Socket first = held.get(0);
        first.getOutputStream().write(DENIED);
        assertThat(new String(first.getInputStream().readNBytes(12), StandardCharsets.US_ASCII))
            .as("a held connection's request; egret said %s", egret.messages())
            .isEqualTo("HTTP/1.1 403");
        assertThat(egret.alive()).as("egret said %s", egret.messages()).isTrue();
      } finally {
        for (SocketChannel ch : burst) {
          ch.close();
        }
        for (Socket s : held) {
          s.close();
        }
      }
      // The slots come back as Egret sees the closes; until then a new one may still be a 503.
      String answer = "";
      long deadline = System.currentTimeMillis() + DEADLINE_MS;
      while (!answer.startsWith("HTTP/1.1 403") && System.currentTimeMillis() < deadline
          && egret.alive()) {
        try (Socket s = connect(egret.proxyPort())) {
          s.getOutputStream().write(DENIED);
          answer = new String(s.getInputStream().readNBytes(12), StandardCharsets.US_ASCII);
        } catch (IOException e) {
          answer = e.toString();
        }
      }
      assertThat(answer).as("a new connection after the burst; egret said %s", egret.messages())
          .isEqualTo("HTTP/1.1 403");
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

  /** GET /readyz; a try the admin cap closes before its answer is tried again. */
  private static String readyz(EgretFixture egret) {
    String answer = "";
    long deadline = System.currentTimeMillis() + DEADLINE_MS;
    while (!answer.startsWith("HTTP/1.1 200") && System.currentTimeMillis() < deadline
        && egret.alive()) {
      answer = get(egret.adminPort(), "/readyz");
    }
    return answer;
  }

  private static String get(int port, String path) {
    try (Socket s = connect(port)) {
      s.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nHost: egret\r\nConnection: close"
          + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      return readToEnd(s.getInputStream());
    } catch (IOException e) {
      return e.toString();
    }
  }

  /** Scrapes until the sample has the value; fails with the last value once Egret is gone or late. */
  private static void awaitSample(EgretFixture egret, String name, double value) {
    Pattern sample = Pattern.compile("(?m)^" + name + "(?:\\{[^}]*\\})? (\\S+)$");
    String last = "";
    long deadline = System.currentTimeMillis() + DEADLINE_MS;
    while (System.currentTimeMillis() < deadline && egret.alive()) {
      String metrics = get(egret.adminPort(), "/metrics");
      Matcher m = sample.matcher(metrics);
      last = m.find() ? m.group(1) : metrics;
      if (m.find(0) && Double.parseDouble(m.group(1)) == value) {
        return;
      }
    }
    throw new AssertionError(name + " is not " + value + " (last: " + last + "); alive: "
        + egret.alive() + "; egret said " + egret.messages());
  }

  private static String readToEnd(InputStream in) throws IOException {
    return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
  }
}
