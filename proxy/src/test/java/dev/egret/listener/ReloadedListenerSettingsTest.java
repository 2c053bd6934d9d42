package dev.egret.listener;

import static dev.egret.listener.ConnectionCapAtAcceptTest.awaitSample;
import static dev.egret.listener.ConnectionCapAtAcceptTest.readToEnd;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The per-connection settings of the client listeners ({@code timeouts.requestHead}, {@code
 * timeouts.idle}, {@code limits.maxConnections}, {@code limits.maxHeaderBytes}) are read when a
 * connection is accepted, from the config in force: a reload applies them to every connection
 * accepted after it, without a restart. Real sockets against a real Egret.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class ReloadedListenerSettingsTest {
  private static final String BEFORE = """
      version: 1
      listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
      timeouts: {requestHead: 20s, idle: 60s}
      limits: {maxConnections: 100, maxHeaderBytes: 16384}
      allow:
        - host: api.partner.test
      """;

  @TempDir Path dir;

  @Test
  void aReloadedRequestHeadTimeoutCutsASlowHeadOfANewConnection() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir, BEFORE)) {
      reload(egret, BEFORE.replace("requestHead: 20s", "requestHead: 1s"));
      try (Socket slow = new Socket("127.0.0.1", egret.proxyPort())) {
        // Well below the 20 s of the config Egret started with.
        slow.setSoTimeout(10_000);
        slow.getOutputStream().write("GET http://api.partner.test/ HTTP/1.1\r\n"
            .getBytes(StandardCharsets.US_ASCII));
        assertThat(readToEnd(slow.getInputStream())).startsWith("HTTP/1.1 408 ");
      }
    }
  }

  @Test
  void aReloadedIdleTimeoutClosesAnIdleNewConnection() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir, BEFORE)) {
      reload(egret, BEFORE.replace("idle: 60s", "idle: 1s"));
      try (Socket idle = new Socket("127.0.0.1", egret.proxyPort())) {
        idle.setSoTimeout(10_000);
        OutputStream out = idle.getOutputStream();
        out.write("GET http://denied.example/ HTTP/1.1\r\nHost: denied.example\r\n\r\n"
            .getBytes(StandardCharsets.US_ASCII));
        // One answer, then the kept-alive connection is closed after a second without a request.
        assertThat(readToEnd(idle.getInputStream())).startsWith("HTTP/1.1 403 ");
      }
    }
  }

  @Test
  void aReloadedConnectionCapAppliesToTheNextConnection() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir, BEFORE)) {
      awaitSample(egret, "egret_client_connections_limit", 100);
      reload(egret, BEFORE.replace("maxConnections: 100", "maxConnections: 1"));
      awaitSample(egret, "egret_client_connections_limit", 1);
      try (Socket held = new Socket("127.0.0.1", egret.proxyPort())) {
        awaitSample(egret, "egret_client_connections", 1);
        try (Socket over = new Socket("127.0.0.1", egret.proxyPort())) {
          over.setSoTimeout(10_000);
          over.getOutputStream().write("GET http://denied.example/ HTTP/1.1\r\n\r\n"
              .getBytes(StandardCharsets.US_ASCII));
          assertThat(readToEnd(over.getInputStream())).startsWith("HTTP/1.1 503 ")
              .contains("connection_limit_reached");
        }
      }
    }
  }

  @Test
  void aReloadedHeaderLimitRefusesALargerHeadOfANewConnection() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir, BEFORE)) {
      reload(egret, BEFORE.replace("maxHeaderBytes: 16384", "maxHeaderBytes: 1024"));
      try (Socket client = new Socket("127.0.0.1", egret.proxyPort())) {
        client.setSoTimeout(10_000);
        // Small enough to arrive in one read, so Egret closes with nothing unread (a FIN, not a
        // reset that could discard the answer before the test reads it).
        client.getOutputStream().write(("GET http://denied.example/ HTTP/1.1\r\n"
            + "Host: denied.example\r\nX-Filler: " + "a".repeat(1200) + "\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII));
        assertThat(readToEnd(client.getInputStream())).startsWith("HTTP/1.1 431 ");
      }
    }
  }

  private static void reload(EgretFixture egret, String yaml) throws Exception {
    Files.writeString(egret.configFile(), yaml);
    egret.server().reload().await(20, TimeUnit.SECONDS);
    assertThat(egret.server().config().sha256()).isEqualTo(
        dev.egret.config.ConfigCompiler.sha256(yaml.getBytes(StandardCharsets.UTF_8)));
  }
}
