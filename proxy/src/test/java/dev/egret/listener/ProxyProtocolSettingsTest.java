package dev.egret.listener;

import static dev.egret.listener.ConnectionCapAtAcceptTest.awaitSample;
import static dev.egret.listener.ConnectionCapAtAcceptTest.readToEnd;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.config.ConfigCompiler;
import dev.egret.testing.EgretFixture;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code listen.proxyProtocol} with the other per-connection settings: over {@code
 * limits.maxConnections} a trusted load balancer gets the 503 at once, before its header (and an
 * untrusted peer gets nothing); and the setting is read at each accept, so a reload turns it on
 * for the connections that follow. Real sockets against a real Egret.
 */
@Timeout(value = 1, unit = TimeUnit.MINUTES)
class ProxyProtocolSettingsTest {
  private static final String PLAIN = """
      version: 1
      listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
      timeouts: {requestHead: 10s}
      limits: {maxConnections: 100}
      allow:
        - host: api.partner.test
      """;
  private static final String WITH_HEADER = PLAIN.replace(
      "listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}",
      "listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0, proxyProtocol: {trustedPeers: [127.0.0.1/32]}}");
  private static final byte[] DENIED_GET = ("GET http://denied.example/ HTTP/1.1\r\n"
      + "Host: denied.example\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII);

  @TempDir Path dir;

  @Test
  void answersATrustedPeerOverTheCapAtOnceAndAnUntrustedOneNotAtAll() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir,
        WITH_HEADER.replace("maxConnections: 100", "maxConnections: 1"))) {
      try (Socket held = connect(egret, "127.0.0.1")) {
        awaitSample(egret, "egret_client_connections", 1);
        try (Socket over = connect(egret, "127.0.0.1")) {
          // Nothing written, not even the header: the 503 comes from the accept alone.
          assertThat(readToEnd(over.getInputStream())).startsWith("HTTP/1.1 503 ")
              .contains("connection_limit_reached");
        }
        try (Socket untrusted = connect(egret, "127.0.0.2")) {
          assertThat(readToEnd(untrusted.getInputStream())).isEmpty();
        }
        awaitFailure(egret, "untrusted", 1);
        awaitSample(egret, "egret_client_connections", 1);
        // The held connection, counted before either, is still served once its header comes.
        held.getOutputStream().write(("PROXY TCP4 127.0.0.3 127.0.0.1 40000 3128\r\n")
            .getBytes(StandardCharsets.US_ASCII));
        held.getOutputStream().write(DENIED_GET);
        assertThat(readToEnd(held.getInputStream())).startsWith("HTTP/1.1 403 ");
      }
    }
  }

  @Test
  void aReloadTurnsTheHeaderOnForTheNextConnection() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir, PLAIN)) {
      try (Socket before = connect(egret, "127.0.0.1")) {
        before.getOutputStream().write(DENIED_GET);
        assertThat(readToEnd(before.getInputStream())).startsWith("HTTP/1.1 403 ");
      }
      Files.writeString(egret.configFile(), WITH_HEADER);
      egret.server().reload().await(20, TimeUnit.SECONDS);
      assertThat(egret.server().config().sha256())
          .isEqualTo(ConfigCompiler.sha256(WITH_HEADER.getBytes(StandardCharsets.UTF_8)));
      try (Socket plain = connect(egret, "127.0.0.1")) {
        plain.getOutputStream().write(DENIED_GET);
        assertThat(readToEnd(plain.getInputStream())).isEmpty();
      }
      awaitFailure(egret, "missing", 1);
      try (Socket proxied = connect(egret, "127.0.0.1")) {
        proxied.getOutputStream().write(("PROXY TCP4 127.0.0.3 127.0.0.1 40000 3128\r\n")
            .getBytes(StandardCharsets.US_ASCII));
        proxied.getOutputStream().write(DENIED_GET);
        assertThat(readToEnd(proxied.getInputStream())).startsWith("HTTP/1.1 403 ");
      }
      assertThat(String.join("\n", egret.awaitLogLines(2)))
          .contains("\"client\":\"127.0.0.3:40000\",\"peer\":\"127.0.0.1:");
    }
  }

  private static Socket connect(EgretFixture egret, String from) throws IOException {
    Socket s = new Socket();
    s.bind(new InetSocketAddress(InetAddress.getByName(from), 0));
    s.connect(new InetSocketAddress("127.0.0.1", egret.proxyPort()), 5_000);
    s.setSoTimeout(10_000);
    return s;
  }

  private static void awaitFailure(EgretFixture egret, String reason, double expected)
      throws Exception {
    Pattern p = Pattern.compile("(?m)^egret_identity_failures_total\\{reason=\"" + reason
        + "\",source=\"proxy_protocol\"\\} (\\S+)$");
    long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
    String last = "";
    while (System.nanoTime() < deadline) {
      last = egret.scrape();
      Matcher m = p.matcher(last);
      if (m.find() && Double.parseDouble(m.group(1)) == expected) {
        return;
      }
    }
    throw new AssertionError("proxy_protocol/" + reason + " never reached " + expected + ":\n"
        + last);
  }
}
