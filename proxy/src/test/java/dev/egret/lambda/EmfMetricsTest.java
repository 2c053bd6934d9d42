package dev.egret.lambda;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The EMF lines: CloudWatch's {@code _aws} directive, the documented metric names, deltas per interval. */
class EmfMetricsTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final EmfMetrics emf = new EmfMetrics(registry, () -> 1_767_225_600_000L);

  private Counter requests(String destination, String outcome) {
    return Counter.builder("egret.requests").tag("destination", destination).tag("kind", "tls")
        .tag("outcome", outcome).tag("error", "none").register(registry);
  }

  private List<JsonNode> lines(boolean all) throws Exception {
    List<JsonNode> nodes = new ArrayList<>();
    for (String line : emf.lines(all)) {
      assertThat(line).doesNotContain("\n");
      nodes.add(JSON.readTree(line));
    }
    return nodes;
  }

  @Test
  void countersGoOutAsTheIncreaseSinceTheLastLineWithDestinationAsDimension() throws Exception {
    requests("api.stripe.com", "allowed").increment(3);
    List<JsonNode> first = lines(false);
    assertThat(first).hasSize(1);
    JsonNode line = first.get(0);
    JsonNode directive = line.get("_aws").get("CloudWatchMetrics").get(0);
    assertThat(line.get("_aws").get("Timestamp").asLong()).isEqualTo(1_767_225_600_000L);
    assertThat(directive.get("Namespace").asText()).isEqualTo("Egret");
    assertThat(directive.get("Dimensions").toString()).isEqualTo("[[\"destination\"]]");
    assertThat(directive.get("Metrics").toString())
        .isEqualTo("[{\"Name\":\"egret_requests_total\",\"Unit\":\"Count\"}]");
    assertThat(line.get("destination").asText()).isEqualTo("api.stripe.com");
    assertThat(line.get("outcome").asText()).isEqualTo("allowed");
    assertThat(line.get("egret_requests_total").asDouble()).isEqualTo(3.0);

    assertThat(lines(false)).as("nothing changed, nothing written").isEmpty();

    requests("api.stripe.com", "allowed").increment();
    requests("denied", "denied").increment(2);
    List<JsonNode> second = lines(false);
    assertThat(second).extracting(n -> n.get("destination").asText() + "=" + n.get("egret_requests_total").asDouble())
        .containsExactlyInAnyOrder("api.stripe.com=1.0", "denied=2.0");
  }

  @Test
  void timersGoOutAsTheMeanOfTheIntervalAndGaugesWithoutDimensionAtShutdown() throws Exception {
    Timer t = Timer.builder("egret.request.duration").tag("destination", "hooks.slack.com")
        .tag("kind", "upgrade").register(registry);
    t.record(Duration.ofMillis(100));
    t.record(Duration.ofMillis(300));
    AtomicLong tunnels = new AtomicLong(2);
    io.micrometer.core.instrument.Gauge.builder("egret.tunnels.active", tunnels, AtomicLong::get)
        .register(registry);
    Counter.builder("egret.bytes").tag("destination", "hooks.slack.com").tag("direction", "upstream")
        .register(registry).increment(512);

    List<JsonNode> first = lines(false);
    JsonNode duration = first.stream().filter(n -> n.has("egret_request_duration_seconds")).findFirst().orElseThrow();
    assertThat(duration.get("egret_request_duration_seconds").asDouble()).isEqualTo(0.2);
    assertThat(duration.get("_aws").get("CloudWatchMetrics").get(0).get("Metrics").get(0).get("Unit").asText())
        .isEqualTo("Seconds");
    JsonNode bytes = first.stream().filter(n -> n.has("egret_bytes_total")).findFirst().orElseThrow();
    assertThat(bytes.get("egret_bytes_total").asDouble()).isEqualTo(512.0);
    assertThat(bytes.get("direction").asText()).isEqualTo("upstream");
    JsonNode gauge = first.stream().filter(n -> n.has("egret_tunnels_active")).findFirst().orElseThrow();
    assertThat(gauge.get("_aws").get("CloudWatchMetrics").get(0).get("Dimensions").toString()).isEqualTo("[[]]");
    assertThat(gauge.get("egret_tunnels_active").asDouble()).isEqualTo(2.0);

    assertThat(lines(false)).isEmpty();
    List<JsonNode> atShutdown = lines(true);
    assertThat(atShutdown).singleElement()
        .satisfies(n -> assertThat(n.get("egret_tunnels_active").asDouble()).isEqualTo(2.0));
  }

  @Test
  void leavesOutMetersThatAreNotEgretsAndTheConfigHash() throws Exception {
    Counter.builder("jvm.something").register(registry).increment();
    io.micrometer.core.instrument.Gauge.builder("egret.config.info", () -> 1).tag("sha256", "ab")
        .register(registry);
    assertThat(emf.lines(true)).isEmpty();
  }
}
