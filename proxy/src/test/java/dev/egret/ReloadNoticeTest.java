package dev.egret;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A reload applies every setting except where the listeners bind; a reload that changed one of
 * those says so, naming each key, and one that changed only live settings (limits, timeouts,
 * listen.proxyProtocol) says nothing of a restart. A real {@code egret run} in a child JVM, reloaded by SIGHUP.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ReloadNoticeTest {
  private static final Duration AWAIT = Duration.ofSeconds(20);
  private static final String YAML = """
      version: 1
      listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
      timeouts: {requestHead: 10s}
      limits: {maxConnections: 100}
      allow:
        - host: a.example
      """;

  @TempDir Path dir;

  @Test
  void namesEachRestartOnlyKeyAndNoLiveOne() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().childJvm("-Xmx64m").start(dir, YAML)) {
      Path file = dir.resolve("egret.yaml");
      Files.writeString(file, YAML
          .replace("admin: 127.0.0.1:0}",
              "admin: 127.0.0.1:0, proxyProtocol: {trustedPeers: [127.0.0.1/32]}}")
          .replace("timeouts: {requestHead: 10s}", "timeouts: {requestHead: 2s, idle: 5s}")
          .replace("limits: {maxConnections: 100}",
              "limits: {maxConnections: 10, maxHeaderBytes: 4096, maxAdminConnections: 8}"));
      egret.signal("HUP");
      egret.awaitMessage(l -> l.startsWith("egret: config reloaded from"), AWAIT);
      assertThat(egret.messages()).noneMatch(l -> l.contains("restart"));

      Files.writeString(file, YAML
          .replace("admin: 127.0.0.1:0", "admin: localhost:0")
          .replace("timeouts: {requestHead: 10s}", "timeouts: {requestHead: 1s}"));
      egret.signal("HUP");
      String notice = egret.awaitMessage(l -> l.contains("take effect only on restart"), AWAIT);
      assertThat(notice).contains(": listen.admin (").doesNotContain("listen.proxy")
          .doesNotContain("timeouts").doesNotContain("limits");
      assertThat(egret.alive()).isTrue();
    }
  }
}
