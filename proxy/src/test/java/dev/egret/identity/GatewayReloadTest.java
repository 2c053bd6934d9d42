package dev.egret.identity;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A reload applies changed clients and tokens to the requests after it, and refuses to switch
 * between sidecar and gateway mode (the per-hop metrics' label set would change).
 */
class GatewayReloadTest {
  @TempDir Path dir;

  private static String gateway(String token) throws Exception {
    return """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        allow: []
        clients:
          - name: alpha
            match: {tokens: ["%s"]}
            allow: [{host: a.partner.test}]
        """.formatted(GatewayTest.hash(token));
  }

  /** The status of a CONNECT as alpha to a host alpha may not reach: 403 once identified. */
  private static int connect(int port, String token) throws Exception {
    try (Socket s = new Socket("127.0.0.1", port)) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      String auth = Base64.getEncoder().encodeToString(("alpha:" + token)
          .getBytes(StandardCharsets.UTF_8));
      out.write(("CONNECT elsewhere.test:443 HTTP/1.1\r\nHost: elsewhere.test:443\r\n"
          + "Proxy-Authorization: Basic " + auth + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      out.flush();
      InputStream in = s.getInputStream();
      byte[] head = in.readNBytes(12);
      return Integer.parseInt(new String(head, StandardCharsets.US_ASCII).substring(9, 12));
    }
  }

  @Test
  void aReloadAppliesNewTokensToTheNextRequests() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir, gateway("old-token"))) {
      // Identified, then denied by policy: 403. An unknown token: 407.
      assertThat(connect(egret.proxyPort(), "old-token")).isEqualTo(403);
      assertThat(connect(egret.proxyPort(), "new-token")).isEqualTo(407);
      Files.writeString(egret.configFile(), gateway("new-token"));
      egret.server().reload().await(20, TimeUnit.SECONDS);
      assertThat(connect(egret.proxyPort(), "new-token")).isEqualTo(403);
      assertThat(connect(egret.proxyPort(), "old-token")).isEqualTo(407);
    }
  }

  @Test
  void aReloadMayNotAddOrRemoveClients() throws Exception {
    String sidecar = "version: 1\nlisten: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}\n"
        + "allow: [{host: a.partner.test}]\n";
    try (EgretFixture egret = EgretFixture.builder().observed().start(dir, sidecar)) {
      Files.writeString(egret.configFile(), gateway("t"));
      Throwable refused = null;
      try {
        egret.server().reload().await(20, TimeUnit.SECONDS);
      } catch (Exception e) {
        refused = e;
      }
      assertThat(refused).isNotNull();
      assertThat(String.valueOf(refused.getMessage())).contains("restart Egret to switch");
      assertThat(egret.server().config().clients().gateway()).isFalse();
      assertThat(egret.scrape()).contains("egret_config_reloads_total{result=\"failure\"} 1.0");
    }
  }
}
