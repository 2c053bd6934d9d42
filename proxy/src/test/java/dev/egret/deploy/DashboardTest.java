package dev.egret.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;

/**
 * The Grafana dashboard in deploy/grafana/egret.json: importable anywhere (stable uid, a
 * datasource variable instead of a fixed datasource) and querying only the documented metrics.
 */
class DashboardTest {

  private static final Path DASHBOARD = MetricNames.repoFile("deploy/grafana/egret.json");
  private static final String DATASOURCE_REF = "${datasource}";
  private static final String XRAY = "grafana-x-ray-datasource";

  private final JsonNode dashboard = MetricNames.read(DASHBOARD);

  @Test
  void keepsItsStableUid() {
    assertThat(dashboard.path("uid").asText()).isEqualTo("egret-overview");
    assertThat(dashboard.path("schemaVersion").asInt()).isGreaterThanOrEqualTo(36);
  }

  @Test
  void choosesItsPrometheusThroughAVariable() {
    JsonNode datasource = variable("datasource");
    assertThat(datasource.path("type").asText()).isEqualTo("datasource");
    assertThat(datasource.path("query").asText()).isEqualTo("prometheus");
  }

  /** Egret's spans go to X-Ray (docs/tracing.md); the links open the one chosen here. */
  @Test
  void choosesItsTraceSourceThroughAVariable() {
    JsonNode traces = variable("traces");
    assertThat(traces.path("type").asText()).isEqualTo("datasource");
    assertThat(traces.path("query").asText()).isEqualTo(XRAY);
  }

  /**
   * Each latency panel (and the failures panel) links a clicked series to its destination's
   * traces: Explore on the Traces variable's X-Ray, filtered on the annotation the collector
   * makes of the span attribute egret.destination, over the dashboard's time range.
   */
  @Test
  void latencyPanelsLinkEachDestinationToItsTracesInExplore() throws Exception {
    List<String> linked = new ArrayList<>();
    for (JsonNode panel : queryPanels()) {
      String title = panel.path("title").asText();
      // Latency of a destination; the upstream-proxy histogram is per proxy, not per destination.
      String targets = panel.path("targets").toString();
      boolean latency = targets.contains("_duration_seconds_bucket")
          && !targets.contains("egret_upstream_proxy_connect_duration_seconds_bucket");
      JsonNode links = panel.path("fieldConfig").path("defaults").path("links");
      if (!latency && links.isEmpty()) {
        continue;
      }
      assertThat(links).as("trace links of %s", title).hasSize(1);
      linked.add(title);
      // Every series of the panel carries the destination label the link fills in.
      for (JsonNode target : panel.path("targets")) {
        assertThat(target.path("expr").asText()).as(title).containsPattern("sum by \\(destination\\b");
      }
      String url = links.get(0).path("url").asText();
      assertThat(url).as(title).startsWith("/explore?schemaVersion=1&panes=");
      String panes = URLDecoder.decode(url.substring(url.indexOf("panes=") + 6), StandardCharsets.UTF_8);
      JsonNode pane = DeployFiles.JSON.readTree(panes).elements().next();
      assertThat(pane.path("datasource").asText()).as(title).isEqualTo("${traces}");
      JsonNode query = pane.path("queries").get(0);
      assertThat(query.path("datasource").path("type").asText()).as(title).isEqualTo(XRAY);
      assertThat(query.path("datasource").path("uid").asText()).as(title).isEqualTo("${traces}");
      assertThat(query.path("queryType").asText()).as(title).isEqualTo("getTraceSummaries");
      assertThat(query.path("query").asText()).as(title)
          .startsWith("annotation.egret_destination = \"${__field.labels.destination:percentencode}\"");
      assertThat(pane.path("range").path("from").asText()).isEqualTo("${__from}");
      assertThat(pane.path("range").path("to").asText()).isEqualTo("${__to}");
    }
    assertThat(linked).as("panels linking to traces").hasSizeGreaterThanOrEqualTo(3);
  }

  @Test
  void showsDroppedTraceSpansByReason() {
    JsonNode panel = queryPanels().stream()
        .filter(p -> p.path("targets").toString().contains("egret_trace_spans_dropped_total"))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no panel of egret_trace_spans_dropped_total"));
    assertThat(panel.path("targets").get(0).path("expr").asText()).startsWith("sum by (reason) (rate(");
  }

  @Test
  void filtersByJobInstanceAndDestination() {
    for (String name : List.of("job", "instance", "destination")) {
      JsonNode v = variable(name);
      assertThat(v.path("type").asText()).as(name).isEqualTo("query");
      assertThat(v.path("datasource").path("uid").asText()).as(name).isEqualTo(DATASOURCE_REF);
    }
    assertThat(variable("destination").path("definition").asText())
        .startsWith("label_values(egret_requests_total")
        .endsWith(", destination)");
  }

  /**
   * Gateway mode: a Client variable that keeps a sidecar's series (no client label) under "All",
   * and the panels an operator of a shared gateway looks at first.
   */
  @Test
  void filtersByClientAndShowsTheGatewaysOwnMetrics() {
    JsonNode client = variable("client");
    assertThat(client.path("type").asText()).isEqualTo("query");
    assertThat(client.path("definition").asText())
        .isEqualTo("label_values(egret_requests_total{job=~\"$job\", instance=~\"$instance\"}, client)");
    // ".*" matches a missing label too, so "All" still shows a sidecar's requests.
    assertThat(client.path("includeAll").asBoolean()).isTrue();
    assertThat(client.path("allValue").asText()).isEqualTo(".*");

    assertThat(exprOf("egret_requests_total", "sum by (client, outcome)")).contains("client=~\"$client\"");
    assertThat(exprOf("egret_requests_total", "sum by (client, error)"))
        .contains("client=~\"$client\"").contains("outcome=~\"denied|reported\"");
    assertThat(exprOf("egret_identity_failures_total", "sum by (source, reason)")).isNotBlank();
    assertThat(exprOf("egret_upstream_proxy_connect_duration_seconds_bucket", "histogram_quantile(0.99, sum by (proxy, le)"))
        .isNotBlank();
    assertThat(exprOf("egret_upstream_proxy_failures_total", "sum by (proxy, status)")).isNotBlank();
  }

  /** The one expr that names the metric and starts with the given aggregation. */
  private String exprOf(String metric, String start) {
    List<String> found = MetricNames.queriesIn(dashboard).stream()
        .filter(q -> q.contains(metric + "{") && q.startsWith(start))
        .toList();
    assertThat(found).as("exprs on %s starting with %s", metric, start).hasSize(1);
    return found.get(0);
  }

  @Test
  void everyPanelQueriesThroughTheDatasourceVariable() {
    List<JsonNode> panels = queryPanels();
    assertThat(panels).hasSizeGreaterThanOrEqualTo(10);
    for (JsonNode panel : panels) {
      String title = panel.path("title").asText();
      assertThat(panel.path("datasource").path("type").asText()).as(title).isEqualTo("prometheus");
      assertThat(panel.path("datasource").path("uid").asText()).as(title).isEqualTo(DATASOURCE_REF);
      assertThat(panel.path("targets")).as(title).isNotEmpty();
      for (JsonNode target : panel.path("targets")) {
        assertThat(target.path("expr").asText()).as(title).isNotBlank();
        assertThat(target.path("datasource").path("uid").asText())
            .as(title + " " + target.path("refId").asText())
            .isEqualTo(DATASOURCE_REF);
      }
    }
  }

  @Test
  void panelsHaveUniqueIdsAndFitTheGrid() {
    Set<Integer> ids = new HashSet<>();
    for (JsonNode panel : allPanels()) {
      String title = panel.path("title").asText();
      assertThat(ids.add(panel.path("id").asInt())).as("unique id of " + title).isTrue();
      JsonNode grid = panel.path("gridPos");
      assertThat(grid.path("x").asInt() + grid.path("w").asInt()).as(title).isBetween(1, 24);
      assertThat(grid.path("h").asInt()).as(title).isPositive();
    }
  }

  @Test
  void queriesOnlyMetricsTheSpecNames() {
    assertThat(MetricNames.referencedBy(DASHBOARD)).isNotEmpty().isSubsetOf(MetricNames.DOCUMENTED);
  }

  @Test
  void showsEveryMetricTheSpecNames() {
    assertThat(MetricNames.referencedBy(DASHBOARD)).containsExactlyInAnyOrderElementsOf(MetricNames.DOCUMENTED);
  }

  @Test
  void latencyQuantilesAggregateBucketsByLe() {
    List<String> bucketQueries =
        MetricNames.queriesIn(dashboard).stream().filter(q -> q.contains("_bucket")).toList();
    assertThat(bucketQueries).hasSizeGreaterThanOrEqualTo(9);
    for (String q : bucketQueries) {
      // A quantile over buckets summed without `le` is silently wrong, not an error.
      assertThat(q).startsWith("histogram_quantile(").containsPattern("sum by \\([a-z, ]*\\ble\\)");
    }
  }

  @Test
  void listsCertificatesSoonestExpiryFirst() {
    JsonNode table =
        queryPanels().stream()
            .filter(p -> p.path("type").asText().equals("table"))
            .filter(
                p -> p.path("targets").toString()
                    .contains("egret_upstream_certificate_expiry_timestamp_seconds"))
            .findFirst()
            .orElseThrow(() -> new AssertionError("no certificate expiry table"));
    assertThat(table.path("targets").get(0).path("expr").asText()).endsWith("- time()");
    JsonNode sort =
        StreamSupport.stream(table.path("transformations").spliterator(), false)
            .filter(t -> t.path("id").asText().equals("sortBy"))
            .findFirst()
            .orElseThrow(() -> new AssertionError("certificate table is not sorted"))
            .path("options")
            .path("sort")
            .get(0);
    assertThat(sort.path("field").asText()).isEqualTo("Value");
    assertThat(sort.path("desc").asBoolean(true)).isFalse();
  }

  /**
   * {@code $__interval} can be shorter than the scrape interval (the chart's ServiceMonitor
   * scrapes every 30 s), and a range that holds fewer than two samples makes rate() and
   * increase() empty. {@code $__rate_interval} is at least four scrape intervals.
   */
  @Test
  void rangesAreNeverShorterThanTwoScrapes() {
    for (String q : MetricNames.queriesIn(dashboard)) {
      assertThat(q).as("range selector in %s", q).doesNotContain("[$__interval]");
    }
  }

  /** docs/operations.md, "Metrics": the labels of each Egret metric, and the values of the enumerated ones. */
  private static final Map<String, Set<String>> LABELS = Map.ofEntries(
      // client: gateway mode only (docs/gateway.md); a sidecar's series have none.
      Map.entry("egret_requests_total", Set.of("destination", "kind", "outcome", "error", "client")),
      Map.entry("egret_request_duration_seconds_bucket", Set.of("destination", "kind", "le", "client")),
      Map.entry("egret_upstream_connect_duration_seconds_bucket", Set.of("destination", "le")),
      Map.entry("egret_upstream_tls_handshake_duration_seconds_bucket", Set.of("destination", "version", "le")),
      Map.entry("egret_upstream_tls_handshakes_total", Set.of("destination", "version", "cipher", "result")),
      Map.entry("egret_upstream_certificate_expiry_timestamp_seconds", Set.of("destination", "host")),
      Map.entry("egret_bytes_total", Set.of("destination", "direction", "client")),
      Map.entry("egret_tunnels_active", Set.of()),
      Map.entry("egret_config_reloads_total", Set.of("result")),
      Map.entry("egret_config_info", Set.of("sha256")),
      Map.entry("egret_config_last_reload_success_timestamp_seconds", Set.of()),
      Map.entry("egret_client_connections", Set.of()),
      Map.entry("egret_client_connections_limit", Set.of()),
      Map.entry("egret_client_connections_refused_total", Set.of()),
      Map.entry("egret_shutdown_cut_total", Set.of("kind")),
      Map.entry("egret_access_log_dropped_total", Set.of()),
      Map.entry("egret_trace_spans_dropped_total", Set.of("reason")),
      Map.entry("egret_identity_failures_total", Set.of("source", "reason")),
      Map.entry("egret_upstream_proxy_connect_duration_seconds_bucket", Set.of("proxy", "le")),
      Map.entry("egret_upstream_proxy_failures_total", Set.of("proxy", "status")));
  private static final Map<String, Set<String>> VALUES = Map.of(
      "kind", Set.of("upgrade", "tunnel", "tls"),
      "outcome", Set.of("allowed", "denied", "reported", "failed"),
      "direction", Set.of("upstream", "downstream"),
      "reason", Set.of("queue_full", "export_failed", "rate_limited"),
      "source", Set.of("certificate", "token", "address", "proxy_protocol"));
  private static final Set<String> RESULTS_HANDSHAKE = Set.of("ok", "certificate_error", "protocol_error", "pin_mismatch");
  private static final Set<String> RESULTS_RELOAD = Set.of("success", "failure");

  /**
   * Grafana's variables set as a user picks them: one destination (a rule's host pattern), every
   * job and instance. Then each selector is checked against the series Egret exports: label
   * names that exist on its metric, label values the docs list, and, for selectors about
   * refusals, the series of a request that no rule allowed, whose destination is "denied".
   */
  @Test
  void everySelectorMatchesTheSeriesEgretExportsForAChosenDestination() {
    String chosen = "api.example-crm.com";
    int refusalSelectors = 0;
    for (String q : MetricNames.queriesIn(dashboard)) {
      String expr = q.replace("$job", ".*").replace("$instance", ".*").replace("$client", ".*")
          .replace("$destination", chosen);
      if (expr.startsWith("label_values(")) {
        continue;
      }
      for (Selectors.Selector s : Selectors.in(expr).all()) {
        Set<String> known = LABELS.get(s.metric());
        assertThat(known).as("metric of %s in %s", s.text(), q).isNotNull();
        for (Selectors.LabelMatcher m : s.matchers()) {
          if (m.label().equals("job") || m.label().equals("instance")) {
            continue;
          }
          assertThat(known).as("label %s of %s in %s", m.label(), s.metric(), q).contains(m.label());
          Set<String> values = m.label().equals("result")
              ? (s.metric().startsWith("egret_config") ? RESULTS_RELOAD : RESULTS_HANDSHAKE)
              : VALUES.get(m.label());
          if (values != null) {
            assertThat(values.stream().anyMatch(v -> m.matches(Selectors.labels(m.label(), v))))
                .as("%s in %s matches a value Egret exports (%s)", m, q, values)
                .isTrue();
          }
        }
        for (String outcome : List.of("denied", "reported")) {
          boolean wantsOutcome = !s.on("outcome").isEmpty()
              && s.on("outcome").stream().allMatch(m -> m.matches(Selectors.labels("outcome", outcome)));
          if (wantsOutcome) {
            refusalSelectors++;
            var refused = Selectors.labels("job", "egret", "instance", "10.0.0.7:9901",
                "destination", "denied", "kind", "tunnel", "outcome", outcome, "error", "destination_denied");
            assertThat(s.matches(s.metric(), refused))
                .as("%s (destination %s chosen) must show a request no rule allowed: %s", q, chosen, refused)
                .isTrue();
          }
        }
        if (s.on("outcome").stream().anyMatch(m -> m.matches(Selectors.labels("outcome", "failed")))) {
          var failed = Selectors.labels("job", "egret", "instance", "10.0.0.7:9901",
              "destination", chosen, "kind", "upgrade", "outcome", "failed", "error", "connection_timeout");
          assertThat(s.matches(s.metric(), failed)).as("%s shows failures of the chosen destination", q).isTrue();
        }
      }
    }
    assertThat(refusalSelectors).as("selectors about refusals").isGreaterThanOrEqualTo(2);
  }

  private JsonNode variable(String name) {
    for (JsonNode v : dashboard.path("templating").path("list")) {
      if (v.path("name").asText().equals(name)) {
        return v;
      }
    }
    throw new AssertionError("no template variable " + name);
  }

  /** Panels that run queries: every panel but rows, including those inside collapsed rows. */
  private List<JsonNode> queryPanels() {
    return allPanels().stream().filter(p -> !p.path("type").asText().equals("row")).toList();
  }

  private List<JsonNode> allPanels() {
    List<JsonNode> panels = new ArrayList<>();
    for (JsonNode panel : dashboard.path("panels")) {
      panels.add(panel);
      panel.path("panels").forEach(panels::add);
    }
    return panels;
  }
}
