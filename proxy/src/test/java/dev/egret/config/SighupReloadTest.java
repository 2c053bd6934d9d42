package dev.egret.config;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SIGHUP reloads the config always, even unchanged (the operator asked; as nginx and Squid do),
 * in a real {@code egret run} child process: the success counter and the last-success timestamp
 * move, the hash in force stays named. The file never changes here, so only the signal can have
 * caused the reload.
 */
class SighupReloadTest {
  private static final Duration AWAIT = Duration.ofSeconds(20);
  @TempDir Path dir;

  private static String metrics(EgretFixture egret) throws Exception {
    return HttpClient.newHttpClient().send(HttpRequest.newBuilder(
        URI.create("http://127.0.0.1:" + egret.adminPort() + "/metrics")).timeout(AWAIT).build(),
        HttpResponse.BodyHandlers.ofString()).body();
  }

  private static double sample(String text, String series) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(text);
    assertThat(m.find()).as(series + " in " + text).isTrue();
    return Double.parseDouble(m.group(1));
  }

  @Test
  void sighupReloadsEvenAnUnchangedConfig() throws Exception {
    String yaml = "version: 1\nlisten: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}\n"
        + "allow:\n  - host: a.example\n";
    try (EgretFixture egret = EgretFixture.builder().childJvm("-Xmx128m").start(dir, yaml)) {
      String before = metrics(egret);
      assertThat(sample(before, "egret_config_reloads_total{result=\"success\"}")).isZero();
      double loadedAt = sample(before, "egret_config_last_reload_success_timestamp_seconds");
      assertThat(loadedAt).isPositive();
      String sha = egret.awaitMessage(l -> l.contains("sha256 "), AWAIT)
          .replaceAll(".*sha256 ([0-9a-f]{64}).*", "$1");

      egret.signal("HUP");
      egret.awaitMessage(l -> l.startsWith("egret: config reloaded from"), AWAIT);
      String after = metrics(egret);
      assertThat(sample(after, "egret_config_reloads_total{result=\"success\"}")).isEqualTo(1.0);
      assertThat(sample(after, "egret_config_reloads_total{result=\"failure\"}")).isZero();
      assertThat(sample(after, "egret_config_info{sha256=\"" + sha + "\"}")).isEqualTo(1.0);
      assertThat(sample(after, "egret_config_last_reload_success_timestamp_seconds"))
          .isGreaterThanOrEqualTo(loadedAt);
      assertThat(egret.alive()).isTrue();
    }
  }
}
