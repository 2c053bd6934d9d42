package dev.egret.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The fixture refuses options that do not go together, and says which option a method needs. */
class EgretFixtureTest {
  private static final String YAML = """
      version: 1
      listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
      allow:
        - host: a.example
      """;

  @TempDir Path dir;

  @Test
  void refusesInProcessOptionsForAChildJvmBeforeStartingAnything() {
    assertThatThrownBy(() -> EgretFixture.builder().childJvm()
        .hosts(Map.of("a.example", "127.0.0.1")).start(dir, YAML))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("hosts(), telemetry() and observed() are for an in-process Egret");
    assertThat(Files.exists(dir.resolve("egret.yaml"))).isFalse();
    assertThatThrownBy(() -> EgretFixture.builder().openFileLimit(64).start(dir, YAML))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("childJvm()");
    assertThatThrownBy(() -> EgretFixture.builder().observed()
        .telemetry(new RecordingTelemetry()).start(dir, YAML))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("observed()");
  }

  @Test
  void aPlainInProcessEgretNamesTheOptionForWhatItLacks() throws Exception {
    try (EgretFixture egret = EgretFixture.builder().start(dir, YAML)) {
      assertThat(egret.mode()).isEqualTo(EgretFixture.Mode.IN_PROCESS);
      assertThat(egret.proxyPort()).isPositive();
      assertThat(egret.server().config()).isNotNull();
      assertThatThrownBy(egret::adminPort).isInstanceOf(IllegalStateException.class)
          .hasMessage("the admin port needs observed() or childJvm() in the builder; "
              + "this Egret runs IN_PROCESS");
      assertThatThrownBy(egret::logLines).isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("observed() or childJvm()");
      assertThatThrownBy(egret::alive).isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("childJvm()");
    }
  }
}
