package dev.egret.telemetry;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The downstream connection slots on /metrics: a proxy whose every slot is taken
 * answers 503 to everyone while /readyz stays 200, so the gauges of slots in use and of the cap,
 * and the count of refusals at the cap, are what shows it. Real sockets against a real Egret.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class ClientConnectionMetricsTest {
  private static final Duration DEADLINE = Duration.ofSeconds(15);
  @TempDir Path dir;

  @Test
  void exportsSlotsInUseTheCapAndRefusalsAtTheCap() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().observed()
        .hosts(Map.of("api.partner.test", "127.0.0.1")).start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        limits: {maxConnections: 2}
        allow:
          - host: api.partner.test
        """)) {
      assertThat(awaitValue(egret, "egret_client_connections_limit", 2)).isEqualTo(2);
      assertThat(awaitValue(egret, "egret_client_connections", 0)).isEqualTo(0);
      assertThat(egret.metrics().value("egret_client_connections_refused_total", Map.of()))
          .hasValue(0);

      List<Socket> held = new ArrayList<>();
      try {
        for (int i = 0; i < 2; i++) {
          held.add(new Socket("127.0.0.1", egret.proxyPort()));
        }
        assertThat(awaitValue(egret, "egret_client_connections", 2)).isEqualTo(2);

        try (Socket third = new Socket("127.0.0.1", egret.proxyPort())) {
          third.setSoTimeout(10_000);
          OutputStream out = third.getOutputStream();
          out.write("GET http://api.partner.test/ HTTP/1.1\r\nHost: api.partner.test\r\n\r\n"
              .getBytes(StandardCharsets.US_ASCII));
          out.flush();
          String answer = readAll(third.getInputStream());
          assertThat(answer).startsWith("HTTP/1.1 503")
              .contains("error=connection_limit_reached");
        }
        assertThat(awaitValue(egret, "egret_client_connections_refused_total", 1)).isEqualTo(1);
        // The refused connection closed; the two held ones still count.
        assertThat(awaitValue(egret, "egret_client_connections", 2)).isEqualTo(2);
      } finally {
        for (Socket s : held) {
          s.close();
        }
      }
      assertThat(awaitValue(egret, "egret_client_connections", 0)).isEqualTo(0);
      assertThat(egret.metrics().value("egret_client_connections_refused_total", Map.of()))
          .hasValue(1);
    }
  }

  /** Scrapes until the unlabelled sample has {@code expected}, or the deadline; returns the last. */
  private static double awaitValue(EgretFixture egret, String name, double expected)
      throws Exception {
    long deadline = System.nanoTime() + DEADLINE.toNanos();
    double last = Double.NaN;
    while (System.nanoTime() < deadline) {
      last = egret.metrics().value(name, Map.of()).orElse(Double.NaN);
      if (last == expected) {
        return last;
      }
    }
    return last;
  }

  private static String readAll(InputStream in) throws Exception {
    return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
  }
}
