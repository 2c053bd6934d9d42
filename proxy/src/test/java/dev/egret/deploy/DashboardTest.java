package dev.egret.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;

/**
 * The Grafana dashboard in deploy/grafana/egret.json: importable anywhere (stable uid, a
 * datasource variable instead of a fixed datasource) and querying only the SPEC's metrics.
 */
class DashboardTest {

  private static final Path DASHBOARD = MetricNames.repoFile("deploy/grafana/egret.json");
  private static final String DATASOURCE_REF = "${datasource}";

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
    assertThat(MetricNames.referencedBy(DASHBOARD)).isNotEmpty().isSubsetOf(MetricNames.SPEC);
  }

  @Test
  void showsEveryMetricTheSpecNames() {
    assertThat(MetricNames.referencedBy(DASHBOARD)).containsExactlyInAnyOrderElementsOf(MetricNames.SPEC);
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
