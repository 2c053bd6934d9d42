package dev.egret.lambda;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Timer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Egret's meters as CloudWatch Embedded Metric Format (EMF) lines, for Lambda, where nothing can
 * scrape {@code /metrics}. Usage: one per registry; call {@link #lines} once per interval (and
 * with {@code all = true} at {@code SHUTDOWN}) and write each line to stdout, where CloudWatch
 * Logs turns it into metrics.
 *
 * <p>Names are the documented Prometheus names ({@code egret_requests_total},
 * {@code egret_bytes_total}, ...), in namespace {@value #NAMESPACE}. Every series with a
 * {@code destination} label has {@code destination} as its one dimension; its other labels
 * ({@code kind}, {@code outcome}, {@code error}, {@code direction}, ...) ride along as
 * properties, searchable in Logs Insights but not dimensions, so the number of CloudWatch metrics
 * stays bounded by the allowlist. Series with no {@code destination} (tunnels active, reloads)
 * go out with no dimension.
 *
 * <p>Values: a counter's increase since the previous line (CloudWatch sums them), a gauge's
 * current value, a timer's mean over the samples since the previous line (in seconds). A line is
 * written for a series only when it changed, except with {@code all}, which also repeats the
 * gauges. {@code egret_config_info} stays out: its value is always 1 and its label is a hash.
 *
 * <p>Thread-safe: {@link #lines} is synchronized; meters are read, never written.
 */
final class EmfMetrics {
  static final String NAMESPACE = "Egret";

  private final MeterRegistry registry;
  private final LongSupplier clock;
  /** Per series, what the previous line reported; only series still in the registry are kept. */
  private Map<Meter.Id, double[]> previous = new HashMap<>();

  EmfMetrics(MeterRegistry registry) {
    this(registry, System::currentTimeMillis);
  }

  EmfMetrics(MeterRegistry registry, LongSupplier clock) {
    this.registry = registry;
    this.clock = clock;
  }

  /** The lines to write now, one JSON object each (no newline); empty when nothing changed. */
  synchronized List<String> lines(boolean all) {
    Map<Meter.Id, double[]> seen = new HashMap<>();
    // One document per label set: series with the same labels (a destination's two byte
    // counters differ by direction, so they do not) share a line.
    Map<Map<String, String>, JsonObject> values = new TreeMap<>(EmfMetrics::compareTags);
    Map<Map<String, String>, JsonArray> definitions = new HashMap<>();
    for (Meter meter : registry.getMeters()) {
      Meter.Id id = meter.getId();
      String name = id.getName();
      if (!name.startsWith("egret.") || name.equals("egret.config.info")) {
        continue;
      }
      double[] before = previous.get(id);
      Double value = null;
      String unit;
      String emfName;
      if (meter instanceof Counter || meter instanceof FunctionCounter) {
        double count = meter instanceof Counter c ? c.count() : ((FunctionCounter) meter).count();
        seen.put(id, new double[] {count});
        double delta = count - (before == null ? 0 : before[0]);
        if (delta > 0) {
          value = delta;
        }
        emfName = prometheusName(name) + "_total";
        unit = name.equals("egret.bytes") ? "Bytes" : "Count";
      } else if (meter instanceof Timer t) {
        double count = t.count();
        double seconds = t.totalTime(TimeUnit.SECONDS);
        seen.put(id, new double[] {count, seconds});
        double dCount = count - (before == null ? 0 : before[0]);
        if (dCount > 0) {
          value = (seconds - (before == null ? 0 : before[1])) / dCount;
        }
        emfName = prometheusName(name) + "_seconds";
        unit = "Seconds";
      } else if (meter instanceof Gauge g) {
        double v = g.value();
        if (!Double.isFinite(v)) {
          continue;
        }
        seen.put(id, new double[] {v});
        if (all || before == null || before[0] != v) {
          value = v;
        }
        emfName = prometheusName(name);
        unit = name.equals("egret.tunnels.active") ? "Count" : "None";
      } else {
        continue;
      }
      if (value == null) {
        continue;
      }
      Map<String, String> tags = new TreeMap<>();
      for (Tag tag : id.getTags()) {
        tags.put(tag.getKey(), tag.getValue());
      }
      values.computeIfAbsent(tags, k -> new JsonObject()).put(emfName, value);
      definitions.computeIfAbsent(tags, k -> new JsonArray())
          .add(new JsonObject().put("Name", emfName).put("Unit", unit));
    }
    previous = seen;
    long now = clock.getAsLong();
    List<String> lines = new ArrayList<>(values.size());
    for (Map.Entry<Map<String, String>, JsonObject> e : values.entrySet()) {
      Map<String, String> tags = e.getKey();
      JsonArray dimensions = new JsonArray().add(tags.containsKey("destination")
          ? new JsonArray().add("destination") : new JsonArray());
      JsonObject line = new JsonObject().put("_aws", new JsonObject()
          .put("Timestamp", now)
          .put("CloudWatchMetrics", new JsonArray().add(new JsonObject()
              .put("Namespace", NAMESPACE)
              .put("Dimensions", dimensions)
              .put("Metrics", definitions.get(tags)))));
      tags.forEach(line::put);
      e.getValue().forEach(m -> line.put(m.getKey(), m.getValue()));
      lines.add(line.encode());
    }
    return lines;
  }

  /** Micrometer's dotted base name as Prometheus writes it, before the type's suffix. */
  private static String prometheusName(String micrometerName) {
    return micrometerName.replace('.', '_');
  }

  private static int compareTags(Map<String, String> a, Map<String, String> b) {
    return a.toString().compareTo(b.toString());
  }
}
