package dev.egret;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What {@link Run#start} has done by the time it returns: part of start-up runs beside the main
 * thread (Vert.x and the registry) or at the first scrape (the JVM's gauges), and none of that may
 * show: the first scrape, taken the moment start returns, holds every series a later one does.
 */
class StartupTest {
  @TempDir Path dir;

  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  @Test
  void theFirstScrapeRightAfterReadyHoldsTheJvmAndProcessGauges() throws Exception {
    Path config = Files.writeString(dir.resolve("egret.yaml"), """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        allow:
          - host: api.stripe.com
        """);
    ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
    PrintStream err = new PrintStream(errBytes, true, StandardCharsets.UTF_8);
    Running running = Run.start(config, err);
    try {
      HttpResponse<String> ready = get(running.adminPort(), "/readyz");
      HttpResponse<String> first = get(running.adminPort(), "/metrics");
      assertThat(ready.statusCode()).isEqualTo(200);
      assertThat(first.statusCode()).isEqualTo(200);
      assertThat(first.body()).contains("jvm_memory_used_bytes{", "jvm_threads_live_threads ",
          "jvm_classes_loaded_classes ", "system_cpu_count ", "process_uptime_seconds ",
          "process_files_open_files ", "egret_config_info{", "egret_tunnels_active ",
          "vertx_pool_");
      // Same series (names and labels) as a scrape taken once everything has settled.
      assertThat(series(get(running.adminPort(), "/metrics").body()))
          .containsAll(series(first.body()));
      assertThat(series(first.body())).containsAll(series(get(running.adminPort(), "/metrics")
          .body()).stream().filter(s -> !s.startsWith("jvm_gc_")).toList());
    } finally {
      running.close();
    }
    assertThat(errBytes.toString(StandardCharsets.UTF_8)).contains("egret: proxy on 127.0.0.1:")
        .doesNotContain("Exception");
  }

  @Test
  void gaugesBoundLaterAppearOnceTheyAreBoundAndOnlyOnce() {
    dev.egret.telemetry.Metrics metrics = dev.egret.telemetry.Metrics.withJvmGaugesLater();
    try {
      assertThat(metrics.jvmGaugesBound()).isNotDone();
      // The GC meters are bound at once: a GC before the gauges must still be counted.
      assertThat(metrics.registry().scrape()).contains("jvm_gc_max_data_size_bytes ")
          .doesNotContain("jvm_memory_used_bytes", "process_uptime_seconds");
      metrics.bindJvmGauges();
      assertThat(metrics.jvmGaugesBound()).isCompleted();
      String once = metrics.registry().scrape();
      assertThat(once).contains("jvm_memory_used_bytes{", "jvm_threads_live_threads ",
          "process_uptime_seconds ", "process_files_open_files ", "system_cpu_count ");
      metrics.bindJvmGauges();
      // A second call adds nothing (a GC in between may add jvm_gc_ series, nothing else).
      assertThat(series(metrics.registry().scrape()).stream()
          .filter(l -> !l.startsWith("jvm_gc_")).toList())
          .isEqualTo(series(once).stream().filter(l -> !l.startsWith("jvm_gc_")).toList());
    } finally {
      metrics.close();
    }
  }

  private HttpResponse<String> get(int port, String path) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
        .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
  }

  /** Each sample line's name and labels, without its value. */
  private static java.util.List<String> series(String scrape) {
    return scrape.lines().filter(l -> !l.startsWith("#") && !l.isBlank())
        .map(l -> l.substring(0, l.lastIndexOf(' '))).toList();
  }
}
