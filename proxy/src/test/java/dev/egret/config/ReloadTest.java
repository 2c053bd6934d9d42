package dev.egret.config;

import dev.egret.listener.RequestTargets;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.policy.Verdict;
import dev.egret.telemetry.Telemetry;
import dev.egret.testing.EgretFixture;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Hot reload: the config is one swappable value, replaced only by a config that compiles. */
class ReloadTest {
  @TempDir Path dir;

  /** Completes futures on the reload events, so the test awaits them instead of sleeping. */
  static final class ReloadEvents implements Telemetry {
    volatile CompletableFuture<String> loaded = new CompletableFuture<>();
    volatile CompletableFuture<String> failed = new CompletableFuture<>();

    @Override public void configLoaded(String sha256) {
      loaded.complete(sha256);
    }
    @Override public void configReloadFailed(String reason) {
      failed.complete(reason);
    }
  }

  private static Verdict verdict(EgretFixture egret, String url) {
    return egret.server().config().allowlist()
        .decide(RequestTargets.target("GET", url).target()).verdict();
  }

  private static final String HEAD = "version: 1\nlisten: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}\n";

  @Test
  void swapsInAChangedFileAndKeepsTheLastGoodOneWhenTheNextIsBad() throws Exception {
    ReloadEvents events = new ReloadEvents();
    try (EgretFixture egret = EgretFixture.builder().telemetry(events).start(dir,
        HEAD + "allow:\n  - host: a.example\n")) {
      String first = events.loaded.get(5, TimeUnit.SECONDS);
      assertThat(verdict(egret, "https://b.example/")).isEqualTo(Verdict.DENY);
      events.loaded = new CompletableFuture<>();
      egret.server().watch(50);

      Path file = dir.resolve("egret.yaml");
      String second = HEAD + "allow:\n  - host: b.example\n";
      Files.writeString(file, second);
      String loaded = events.loaded.get(10, TimeUnit.SECONDS);
      assertThat(loaded).isNotEqualTo(first)
          .isEqualTo(ConfigCompiler.sha256(second.getBytes(StandardCharsets.UTF_8)));
      assertThat(verdict(egret, "https://b.example/")).isEqualTo(Verdict.ALLOW);
      assertThat(verdict(egret, "https://a.example/")).isEqualTo(Verdict.DENY);

      Files.writeString(file, HEAD + "allow:\n  - host: \"c*.example\"\n");
      String reason = events.failed.get(10, TimeUnit.SECONDS);
      assertThat(reason).contains("egret.yaml:4:").contains("whole label");
      assertThat(egret.server().config().sha256()).isEqualTo(loaded);
      assertThat(verdict(egret, "https://b.example/")).isEqualTo(Verdict.ALLOW);
    }
  }

  @Test
  void reloadOnDemandReadsTheFileAgain() throws Exception {
    ReloadEvents events = new ReloadEvents();
    try (EgretFixture egret = EgretFixture.builder().telemetry(events).start(dir,
        HEAD + "allow:\n  - host: a.example\n")) {
      events.loaded.get(5, TimeUnit.SECONDS);
      events.loaded = new CompletableFuture<>();
      Files.writeString(dir.resolve("egret.yaml"), HEAD + "mode: report\nallow:\n  - host: a.example\n");
      egret.server().reload().await(10, TimeUnit.SECONDS);
      events.loaded.get(5, TimeUnit.SECONDS);
      assertThat(verdict(egret, "https://z.example/")).isEqualTo(Verdict.REPORT);
    }
  }
}
