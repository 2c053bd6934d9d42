package dev.egret.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code tracing:}: its defaults, and an error with line and column for every bad value. */
class TracingConfigTest {
  @TempDir Path dir;

  private EgretConfig load(String tracing) throws Exception {
    Path f = dir.resolve("egret.yaml");
    Files.writeString(f, "version: 1\nallow:\n  - host: a.example\n" + tracing);
    return ConfigCompiler.load(f);
  }

  private List<String> errors(String tracing) throws Exception {
    Path f = dir.resolve("egret.yaml");
    Files.writeString(f, "version: 1\nallow:\n  - host: a.example\n" + tracing);
    try {
      ConfigCompiler.load(f);
    } catch (ConfigException e) {
      return e.errors().stream().map(ConfigError::toString)
          .map(s -> s.substring(f.toString().length() + 1)).toList();
    }
    throw new AssertionError("config was accepted: " + tracing);
  }

  @Test
  void isOffUnlessTheExporterIsOtlp() throws Exception {
    assertThat(load("").tracing()).isEqualTo(EgretConfig.Tracing.OFF);
    assertThat(load("tracing: {sampleRatio: 0.5}\n").tracing().on()).isFalse();
    EgretConfig.Tracing t = load("tracing: {exporter: otlp}\n").tracing();
    assertThat(t.on()).isTrue();
    assertThat(t.endpoint()).hasToString("http://127.0.0.1:4318/v1/traces");
    assertThat(t.sampleRatio()).isZero();
    assertThat(t.propagate()).isEqualTo(EgretConfig.Propagation.PASSTHROUGH);
    assertThat(t.xray()).isFalse();
  }

  @Test
  void readsEveryKey() throws Exception {
    EgretConfig.Tracing t = load("""
        tracing:
          exporter: otlp
          endpoint: https://collector.example:4318/v1/traces
          sampleRatio: 0.25
          propagate: restart
          xray: true
        """).tracing();
    assertThat(t.endpoint()).hasToString("https://collector.example:4318/v1/traces");
    assertThat(t.sampleRatio()).isEqualTo(0.25);
    assertThat(t.propagate()).isEqualTo(EgretConfig.Propagation.RESTART);
    assertThat(t.xray()).isTrue();
  }

  @Test
  void namesEachBadValueWithItsLineAndColumn() throws Exception {
    assertThat(errors("""
        tracing:
          exporter: zipkin
          endpoint: ftp://collector/v1/traces
          sampleRatio: 1.5
          propagate: forward
          xray: yes please
          sampler: always
        """)).containsExactlyInAnyOrder(
        "10:3: unknown key 'sampler' in tracing; accepted keys: exporter, endpoint, sampleRatio, "
            + "propagate, xray",
        "5:13: tracing.exporter is 'zipkin'; use one of: none, otlp",
        "6:13: tracing.endpoint: not an http:// or https:// URL with a host and no user name or "
            + "query; write the collector's OTLP/HTTP traces URL, such as "
            + "http://127.0.0.1:4318/v1/traces",
        "7:16: tracing.sampleRatio must be a number from 0.0 to 1.0, not the number 1.5",
        "8:14: tracing.propagate is 'forward'; use one of: passthrough, propagate, restart",
        "9:9: tracing.xray must be true or false, not the text 'yes please'");
  }
}
