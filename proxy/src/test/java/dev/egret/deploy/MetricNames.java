package dev.egret.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Use {@code MetricNames.referencedBy(MetricNames.repoFile("deploy/grafana/egret.json"))} to get
 * the Egret metric names a deploy file queries, and compare them with {@link #DOCUMENTED} or with what
 * {@code /metrics} really exports (after {@link #family} on each sample name).
 *
 * <p>Names are compared as Prometheus exports them from Micrometer: counters carry {@code _total}
 * as part of their name, histograms are named by their family, and the {@code _bucket}, {@code
 * _sum} and {@code _count} samples are stripped back to it.
 */
public final class MetricNames {

  /** docs/operations.md, "Metrics": every Egret metric, as Prometheus names it. */
  public static final Set<String> DOCUMENTED =
      Set.of(
          "egret_requests_total",
          "egret_request_duration_seconds",
          "egret_upstream_connect_duration_seconds",
          "egret_upstream_tls_handshake_duration_seconds",
          "egret_upstream_tls_handshakes_total",
          "egret_upstream_certificate_expiry_timestamp_seconds",
          "egret_bytes_total",
          "egret_tunnels_active",
          "egret_config_reloads_total",
          "egret_config_info",
          "egret_client_connections",
          "egret_client_connections_limit",
          "egret_config_last_reload_success_timestamp_seconds",
          // Tracing (docs/tracing.md): spans not exported, by reason.
          "egret_trace_spans_dropped_total",
          // Gateway mode (docs/gateway.md): identity refusals and upstream proxies.
          "egret_identity_failures_total",
          "egret_upstream_proxy_connect_duration_seconds",
          "egret_upstream_proxy_failures_total");

  /**
   * The documented families a process exports only in gateway mode: identity failures from the
   * first refusal on, the upstream-proxy ones only when {@code upstreamProxies} names a proxy. A
   * sidecar's scrape has none of them, so a check against one sidecar's {@code /metrics} leaves
   * these out.
   */
  public static final Set<String> GATEWAY_ONLY =
      Set.of(
          "egret_identity_failures_total",
          "egret_upstream_proxy_connect_duration_seconds",
          "egret_upstream_proxy_failures_total");

  private static final Pattern NAME = Pattern.compile("egret_[a-z_]+");
  private static final Pattern HISTOGRAM_SAMPLE = Pattern.compile("_(bucket|sum|count)$");

  /**
   * Fields that hold PromQL or series selectors: {@code expr} (Grafana targets and annotations,
   * alert rules, promtool tests), {@code query} (Grafana template variables) and {@code series}
   * (promtool input series).
   */
  private static final Set<String> QUERY_FIELDS = Set.of("expr", "query", "series");

  private MetricNames() {}

  /** The Egret metric families that a Grafana dashboard (JSON) or a Prometheus file (YAML) names. */
  public static SortedSet<String> referencedBy(Path file) {
    SortedSet<String> names = new TreeSet<>();
    for (String query : queriesIn(read(file))) {
      Matcher m = NAME.matcher(query);
      while (m.find()) {
        names.add(family(m.group()));
      }
    }
    return names;
  }

  /** The family a sample belongs to: {@code egret_x_seconds_bucket} is {@code egret_x_seconds}. */
  public static String family(String sampleName) {
    return HISTOGRAM_SAMPLE.matcher(sampleName).replaceFirst("");
  }

  /** Every PromQL text in a parsed deploy file, in document order. */
  public static List<String> queriesIn(JsonNode root) {
    List<String> queries = new ArrayList<>();
    collect(root, queries);
    return queries;
  }

  private static void collect(JsonNode node, List<String> queries) {
    if (node.isObject()) {
      for (Map.Entry<String, JsonNode> field : node.properties()) {
        if (QUERY_FIELDS.contains(field.getKey()) && field.getValue().isTextual()) {
          queries.add(field.getValue().asText());
        } else {
          collect(field.getValue(), queries);
        }
      }
    } else if (node.isArray()) {
      node.forEach(child -> collect(child, queries));
    }
  }

  /** Parses a deploy file: JSON for {@code .json}, YAML otherwise. */
  public static JsonNode read(Path file) {
    ObjectMapper mapper = file.toString().endsWith(".json") ? new ObjectMapper() : new YAMLMapper();
    try {
      return mapper.readTree(file.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot parse " + file, e);
    }
  }

  /**
   * A file by its path from the repository root. Maven runs the tests in {@code proxy/}, an IDE
   * may run them at the root, so look upwards from the working directory.
   */
  public static Path repoFile(String relative) {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      Path candidate = dir.resolve(relative);
      if (Files.exists(candidate)) {
        return candidate;
      }
    }
    throw new IllegalStateException(relative + " not found above " + Path.of("").toAbsolutePath());
  }
}
