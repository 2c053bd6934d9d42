package dev.egret.chain;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A reload that changes the route applies to the hops that start after it, on the same kept-alive
 * downstream connection too; and the upstream proxy meters appear only once a proxy carried a hop,
 * so a scrape without proxies in use is unchanged.
 */
class UpstreamProxyReloadTest {
  private static final String CONFIG = """
      version: 1
      listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
      tls: {trust: [%s]}
      addresses: {allow: [127.0.0.1/32]}
      upstreamProxies:
        corp: {url: "http://127.0.0.1:%d"}
      routing: {upstreamProxy: %s}
      allow:
        - host: api.partner.test
          ports: [%d]
      """;
  @TempDir Path dir;

  @Test
  void aReloadRoutesNewHopsThroughTheProxy() throws Exception {
    TestCert root = TestPki.rootCa("Chain Reload Root").issue();
    try (TlsTestServer upstream = TlsTestServer.https(root.leaf("api.partner.test").issue())
            .name("partner").start();
        TestUpstreamProxy corp = TestUpstreamProxy.relaying().start()) {
      String rootPem = root.writePem(dir).cert().getFileName().toString();
      EgretFixture egret = EgretFixture.builder().observed()
          .hosts(Map.of("api.partner.test", "127.0.0.1")).start(dir,
          CONFIG.formatted(rootPem, corp.port(), "none", upstream.port()));
      try {
        HttpClient client = HttpClient.newBuilder()
            .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", egret.proxyPort())))
            .version(HttpClient.Version.HTTP_1_1).build();
        URI url = URI.create("http://api.partner.test:" + upstream.port() + "/x");
        HttpRequest get = HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(20)).build();
        assertThat(client.send(get, HttpResponse.BodyHandlers.ofString()).statusCode())
            .isEqualTo(200);
        assertThat(corp.accepts()).isZero();
        assertThat(egret.scrape()).doesNotContain("egret_upstream_proxy");

        Files.writeString(egret.configFile(),
            CONFIG.formatted(rootPem, corp.port(), "corp", upstream.port()));
        egret.server().reload().await(20, TimeUnit.SECONDS);
        assertThat(client.send(get, HttpResponse.BodyHandlers.ofString()).statusCode())
            .isEqualTo(200);
        assertThat(corp.awaitHeads(1, Duration.ofSeconds(20)).get(0))
            .startsWith("CONNECT api.partner.test:" + upstream.port() + " HTTP/1.1\r\n");
        assertThat(egret.scrape())
            .contains("egret_upstream_proxy_connect_duration_seconds_count{proxy=\"corp\"} 1");
      } finally {
        egret.close();
      }
    }
  }
}
