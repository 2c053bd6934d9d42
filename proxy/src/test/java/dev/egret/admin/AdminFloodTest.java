package dev.egret.admin;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * One local client opening idle connections to the admin port by the hundred, more than the
 * descriptors Egret has, takes nothing from the proxy: each one over {@code
 * limits.maxAdminConnections} is closed as it is accepted, so the table never fills, and the
 * proxy and {@code /readyz} keep answering. A real {@code egret run} in a child JVM with a small
 * {@code ulimit -n}.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class AdminFloodTest {
  private static final int OPEN_FILES = 400;

  @TempDir Path dir;

  @Test
  void aFloodOfIdleAdminConnectionsLeavesTheProxyAndReadinessServing() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().childJvm("-Xmx64m").openFileLimit(OPEN_FILES)
        .start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        timeouts: {requestHead: 2s}
        limits: {maxConnections: 64, maxAdminConnections: 16}
        allow:
          - host: api.partner.test
        """)) {
      List<Socket> flood = new ArrayList<>();
      try {
        for (int i = 0; i < OPEN_FILES + 200; i++) {
          try {
            flood.add(new Socket("127.0.0.1", egret.adminPort()));
          } catch (IOException e) {
            throw new AssertionError("connection " + i + " to the admin port: " + e
                + "; egret said " + egret.messages(), e);
          }
        }
        assertThat(egret.alive()).as("egret said %s", egret.messages()).isTrue();
        try (Socket client = new Socket("127.0.0.1", egret.proxyPort())) {
          client.setSoTimeout(15_000);
          client.getOutputStream().write(("GET http://denied.example/ HTTP/1.1\r\n"
              + "Host: denied.example\r\nConnection: close\r\n\r\n")
              .getBytes(StandardCharsets.US_ASCII));
          assertThat(readToEnd(client.getInputStream())).as("egret said %s", egret.messages())
              .startsWith("HTTP/1.1 403 ");
        }
        // The first ones took the admin slots; they are closed at the request deadline.
        flood.get(0).setSoTimeout(15_000);
        assertThat(readToEnd(flood.get(0).getInputStream())).isEmpty();
      } finally {
        for (Socket s : flood) {
          s.close();
        }
      }
      String readyz = "";
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      // A probe may still meet the last slots held; each try is answered or closed at once.
      while (!readyz.startsWith("HTTP/1.1 200") && System.nanoTime() < deadline) {
        try (Socket probe = new Socket("127.0.0.1", egret.adminPort())) {
          probe.setSoTimeout(15_000);
          probe.getOutputStream().write(
              "GET /readyz HTTP/1.1\r\nHost: egret\r\nConnection: close\r\n\r\n"
                  .getBytes(StandardCharsets.US_ASCII));
          readyz = readToEnd(probe.getInputStream());
        } catch (IOException e) {
          readyz = e.toString(); // closed as over the cap before the answer: try again
        }
      }
      assertThat(readyz).startsWith("HTTP/1.1 200").endsWith("ready");
      assertThat(egret.alive()).isTrue();
    }
  }

  private static String readToEnd(InputStream in) {
    try {
      return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
    } catch (IOException e) {
      return e.toString();
    }
  }
}
