package dev.egret.telemetry;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.Gauge;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

/**
 * Micrometer's warning about a gauge registered twice is dropped for Vert.x's pool gauges,
 * which do that by design, and kept for every other gauge.
 */
class GaugeWarningTest {
  private static final class Recorder extends Handler {
    final List<String> messages = new ArrayList<>();

    @Override
    public synchronized void publish(LogRecord r) {
      messages.add(r.getMessage()); // the logger's filter has passed it
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
  }

  private static List<String> warningsWhenRegisteredTwice(String name) {
    Logger log = Metrics.MICROMETER_REGISTRY_LOG;
    Recorder recorder = new Recorder();
    log.addHandler(recorder);
    // Micrometer warns once per JVM and logs later repeats at debug level (FINE here): let
    // those through too, so the test does not depend on which test registered a gauge first.
    java.util.logging.Level level = log.getLevel();
    log.setLevel(java.util.logging.Level.ALL);
    try (Metrics metrics = new Metrics()) {
      for (int i = 0; i < 2; i++) {
        Gauge.builder(name, new AtomicLong(i), AtomicLong::get).tag("pool_type", "worker")
            .register(metrics.registry());
      }
    } finally {
      log.removeHandler(recorder);
      log.setLevel(level);
    }
    synchronized (recorder) {
      return List.copyOf(recorder.messages);
    }
  }

  @Test
  void vertxPoolGaugesRegisteredTwiceWarnNothing() {
    assertThat(warningsWhenRegisteredTwice("vertx.pool.queue.pending")).isEmpty();
  }

  @Test
  void anyOtherGaugeRegisteredTwiceStillWarns() {
    assertThat(warningsWhenRegisteredTwice("egret.test.gauge"))
        .anySatisfy(m -> assertThat(m).startsWith("This Gauge has been already registered")
            .contains("egret.test.gauge"));
  }
}
