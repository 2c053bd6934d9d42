package dev.egret.admin;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
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
 * The admin listener has its own cap ({@code limits.maxAdminConnections}): a local client that
 * opens connections to it by the thousand gets each one over the cap closed at once, holding no
 * descriptor, and the ones under it are closed when they send no request within {@code
 * timeouts.requestHead}, so they cannot squat the probes' slots either. Meanwhile the proxy
 * answers as before. Real sockets against a real Egret.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class AdminConnectionLimitTest {
  private static final int CAP = 4;
  /** The deadline for a request on an admin connection, from accept or the previous response. */
  private static final int DEADLINE_MS = 8_000;
  /** What "at once" allows: well below the deadline, so a close by the deadline cannot pass. */
  private static final int AT_ONCE_MS = 3_000;

  @TempDir Path dir;

  @Test
  void closesConnectionsOverTheCapAtOnceAndIdleOnesAtTheDeadline() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        timeouts: {requestHead: %dms}
        limits: {maxAdminConnections: %d}
        allow:
          - host: api.partner.test
        """.formatted(DEADLINE_MS, CAP))) {
      List<Socket> idle = new ArrayList<>();
      try {
        for (int i = 0; i < CAP - 1; i++) {
          idle.add(new Socket("127.0.0.1", egret.adminPort()));
        }
        // The scrape's own kept-alive connection is the last slot.
        assertThat(sample(egret.scrape(), "egret_admin_connections")).isEqualTo(CAP);

        for (int i = 0; i < 20; i++) {
          try (Socket over = new Socket("127.0.0.1", egret.adminPort())) {
            over.setSoTimeout(AT_ONCE_MS);
            assertThat(readToEnd(over.getInputStream())).as("connection %d over the cap", i)
                .isEmpty();
          }
        }

        // The admin port is full; the proxy is not touched by it.
        try (Socket client = new Socket("127.0.0.1", egret.proxyPort())) {
          client.setSoTimeout(10_000);
          client.getOutputStream().write(("GET http://denied.example/ HTTP/1.1\r\n"
              + "Host: denied.example\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
          assertThat(readToEnd(client.getInputStream())).startsWith("HTTP/1.1 403 ");
        }

        // The idle ones are cut at the deadline, so a probe gets a slot again.
        for (Socket s : idle) {
          s.setSoTimeout(DEADLINE_MS + 15_000);
          assertThat(readToEnd(s.getInputStream())).isEmpty();
        }
        try (Socket probe = new Socket("127.0.0.1", egret.adminPort())) {
          probe.setSoTimeout(15_000);
          probe.getOutputStream().write(
              "GET /readyz HTTP/1.1\r\nHost: egret\r\nConnection: close\r\n\r\n"
                  .getBytes(StandardCharsets.US_ASCII));
          assertThat(readToEnd(probe.getInputStream())).startsWith("HTTP/1.1 200").endsWith("ready");
        }
      } finally {
        for (Socket s : idle) {
          s.close();
        }
      }
    }
  }

  @Test
  void closesAConnectionWhoseRequestHeadDoesNotArriveByTheDeadline() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        timeouts: {requestHead: 1s}
        allow:
          - host: api.partner.test
        """)) {
      try (Socket slow = new Socket("127.0.0.1", egret.adminPort())) {
        slow.setSoTimeout(15_000);
        long start = System.nanoTime();
        // A head that never ends: without a deadline of its own, each byte would keep it open.
        slow.getOutputStream().write("GET /readyz HTTP/1.1\r\nHost: egret\r\n"
            .getBytes(StandardCharsets.US_ASCII));
        assertThat(readToEnd(slow.getInputStream())).isEmpty();
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(10_000);
      }
      // A prompt client is still served, and the kept-alive scrape connection counts.
      assertThat(sample(egret.scrape(), "egret_admin_connections")).isBetween(1.0, 2.0);
    }
  }

  private static double sample(String metrics, String name) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + " (\\S+)$").matcher(metrics);
    if (!m.find()) {
      throw new AssertionError("no sample " + name + " in:\n" + metrics);
    }
    return Double.parseDouble(m.group(1));
  }

  /** Reads until the server closes; fails if it does not close within the socket's timeout. */
  private static String readToEnd(InputStream in) throws IOException {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    byte[] buf = new byte[4096];
    try {
      for (int n; (n = in.read(buf)) >= 0; ) {
        all.write(buf, 0, n);
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the server did not close the connection in time; it sent: "
          + all.toString(StandardCharsets.ISO_8859_1), e);
    }
    return all.toString(StandardCharsets.ISO_8859_1);
  }
}
