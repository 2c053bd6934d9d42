package dev.egret.chain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Egret chained to a real Squid (Debian's, when installed): an upgrade and a tunnel through it.
 * Squid resolves the destination from its own hosts file, as a corporate proxy resolves names
 * Egret asks for by name.
 */
class SquidChainTest {
  private static final Path SQUID = Path.of("/usr/sbin/squid");
  @TempDir Path dir;

  @Test
  void upgradesAndTunnelsThroughSquid() throws Exception {
    assumeTrue(Files.isExecutable(SQUID), "squid is not installed");
    TestCert root = TestPki.rootCa("Squid Chain Root").issue();
    try (TlsTestServer upstream = TlsTestServer.https(root.leaf("api.partner.test").issue())
        .name("partner").start()) {
      int squidPort;
      try (ServerSocket s = new ServerSocket(0)) {
        squidPort = s.getLocalPort();
      }
      // Squid reads its files as "nobody" once it dropped root: a folder of its own in /tmp that
      // anyone may read, not the test's private temporary folder.
      Path squidDir = Files.createTempDirectory("egret-squid", java.nio.file.attribute
          .PosixFilePermissions.asFileAttribute(java.nio.file.attribute.PosixFilePermissions
              .fromString("rwxr-xr-x")));
      Files.writeString(squidDir.resolve("hosts"), "127.0.0.1 api.partner.test\n");
      Files.writeString(squidDir.resolve("squid.conf"), """
          http_port 127.0.0.1:%d
          http_access allow all
          cache deny all
          hosts_file %s
          dns_nameservers 127.0.0.1
          pid_filename none
          access_log none
          cache_log /dev/null
          cache_effective_user nobody
          shutdown_lifetime 0 seconds
          """.formatted(squidPort, squidDir.resolve("hosts")));
      squidDir.resolve("hosts").toFile().setReadable(true, false);
      squidDir.resolve("squid.conf").toFile().setReadable(true, false);
      // -n: a service name of its own, so its shared-memory segments meet no other Squid's.
      Process squid = new ProcessBuilder(SQUID.toString(), "-N", "-d", "1", "-n",
          "egretTest" + squidPort, "-f", squidDir.resolve("squid.conf").toString())
          .redirectErrorStream(true).start();
      try {
        awaitAccepting(squid);
        String rootPem = root.writePem(dir).cert().getFileName().toString();
        EgretFixture egret = EgretFixture.builder().observed()
            .hosts(Map.of("api.partner.test", "127.0.0.1")).start(dir, """
            version: 1
            listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
            tls: {trust: [%s]}
            addresses: {allow: [127.0.0.1/32]}
            upstreamProxies:
              squid: {url: "http://127.0.0.1:%d"}
            routing: {upstreamProxy: squid}
            allow:
              - host: api.partner.test
                ports: [%d]
            """.formatted(rootPem, squidPort, upstream.port()));
        try {
          String up = curl(egret, dir.resolve(rootPem),
              "http://api.partner.test:" + upstream.port() + "/via-squid");
          assertThat(up).startsWith("HTTP/1.1 200").contains("hello from partner");
          String tunnel = curl(egret, dir.resolve(rootPem),
              "https://api.partner.test:" + upstream.port() + "/tunnel-via-squid");
          assertThat(tunnel).startsWith("HTTP/1.1 200").contains("hello from partner");
          assertThat(upstream.requests()).extracting(r -> r.target())
              .contains("/via-squid", "/tunnel-via-squid");
          assertThat(egret.awaitLogLines(2)).allSatisfy(l ->
              assertThat(l).contains("\"upstream_proxy\":\"squid\""));
        } finally {
          egret.close();
        }
      } finally {
        squid.destroy();
        squid.waitFor(10, TimeUnit.SECONDS);
        try (var files = Files.list(squidDir)) {
          for (Path f : files.toList()) {
            Files.deleteIfExists(f);
          }
        }
        Files.deleteIfExists(squidDir);
      }
    }
  }

  /** Waits for Squid's "Accepting HTTP Socket connections" line on its output. */
  private static void awaitAccepting(Process squid) throws InterruptedException {
    CountDownLatch ready = new CountDownLatch(1);
    List<String> seen = new ArrayList<>();
    Thread reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(squid.getInputStream(),
          StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          synchronized (seen) {
            seen.add(line);
          }
          if (line.contains("Accepting HTTP Socket connections")) {
            ready.countDown();
          }
        }
      } catch (java.io.IOException e) {
        // squid exited
      }
    }, "squid-output");
    reader.setDaemon(true);
    reader.start();
    if (!ready.await(20, TimeUnit.SECONDS)) {
      synchronized (seen) {
        throw new AssertionError("squid did not start: " + seen);
      }
    }
  }

  private static String curl(EgretFixture egret, Path rootPem, String url) throws Exception {
    Process p = new ProcessBuilder("curl", "-sS", "--max-time", "15", "-x",
        "http://127.0.0.1:" + egret.proxyPort(), "--cacert", rootPem.toString(), "-D", "-", url)
        .redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
    return out;
  }
}
