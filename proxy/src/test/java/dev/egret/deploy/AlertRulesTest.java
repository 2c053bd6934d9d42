package dev.egret.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The Prometheus files in deploy/prometheus: the alert rules query only the documented metrics,
 * every alert tells the operator what to do, and every alert has promtool unit tests that see
 * it fire and see it stay quiet. promtool itself runs them in .ci/observability-checks.sh.
 */
class AlertRulesTest {

  private static final Path RULES = MetricNames.repoFile("deploy/prometheus/egret-alerts.yaml");
  private static final Path RULE_TESTS =
      MetricNames.repoFile("deploy/prometheus/egret-alerts.test.yaml");
  private static final Path SCRAPE_CONFIG = MetricNames.repoFile("deploy/prometheus/prometheus.yml");

  @Test
  void queriesOnlyMetricsTheSpecNames() {
    assertThat(MetricNames.referencedBy(RULES)).isNotEmpty().isSubsetOf(MetricNames.DOCUMENTED);
  }

  @Test
  void unitTestsFeedOnlyMetricsTheSpecNames() {
    assertThat(MetricNames.referencedBy(RULE_TESTS)).isNotEmpty().isSubsetOf(MetricNames.DOCUMENTED);
  }

  @Test
  void definesTheAlertsOperatorsNeed() {
    assertThat(alerts().stream().map(a -> a.path("alert").asText()))
        .containsExactlyInAnyOrder(
            "EgretUpstreamCertificateExpiringSoon",
            "EgretUpstreamCertificateExpiryCritical",
            "EgretDenialSurge",
            "EgretUpstreamTlsFailures",
            "EgretConfigReloadFailed",
            "EgretDown",
            "EgretTargetMissing",
            "EgretClientConnectionsAtLimit",
            "EgretTraceSpansDropped",
            "EgretIdentityFailuresHigh",
            "EgretUpstreamProxyFailing");
  }

  @Test
  void everyAlertHasASeverityAndTellsWhatToDo() {
    for (JsonNode alert : alerts()) {
      String name = alert.path("alert").asText();
      assertThat(alert.path("labels").path("severity").asText())
          .as(name)
          .isIn("warning", "critical");
      assertThat(alert.path("annotations").path("summary").asText()).as(name).isNotBlank();
      assertThat(alert.path("annotations").path("description").asText().length())
          .as("description of " + name)
          .isGreaterThan(80);
    }
  }

  @Test
  void everyAlertIsTestedFiringAndQuiet() {
    Set<String> fires = new HashSet<>();
    Set<String> staysQuiet = new HashSet<>();
    for (JsonNode test : MetricNames.read(RULE_TESTS).path("tests")) {
      for (JsonNode check : test.path("alert_rule_test")) {
        String name = check.path("alertname").asText();
        (check.path("exp_alerts").isEmpty() ? staysQuiet : fires).add(name);
      }
    }
    List<String> names = alerts().stream().map(a -> a.path("alert").asText()).toList();
    assertThat(fires).as("alerts seen firing").containsAll(names);
    assertThat(staysQuiet).as("alerts seen quiet").containsAll(names);
  }

  @Test
  void unitTestsLoadTheRuleFile() {
    assertThat(MetricNames.read(RULE_TESTS).path("rule_files").toString())
        .contains("egret-alerts.yaml");
  }

  @Test
  void scrapeJobIsTheOneTheRulesSelect() {
    JsonNode config = MetricNames.read(SCRAPE_CONFIG);
    assertThat(config.path("rule_files").toString()).contains("egret-alerts.yaml");
    List<String> jobs = new ArrayList<>();
    config.path("scrape_configs").forEach(job -> jobs.add(job.path("job_name").asText()));
    assertThat(jobs).contains("egret");
    JsonNode egret = config.path("scrape_configs").get(jobs.indexOf("egret"));
    assertThat(egret.path("static_configs").toString()).contains(":9901");
    // Without the operator, Prometheus labels the series with job = the scrape job's name.
    java.util.Map<String, String> series = Selectors.labels("job", egret.path("job_name").asText());
    for (JsonNode alert : alerts()) {
      List<Selectors.LabelMatcher> matchers = new ArrayList<>();
      Selectors.in(alert.path("expr").asText()).all().forEach(sel -> matchers.addAll(sel.on("job")));
      assertThat(matchers).as("%s selects a job", alert.path("alert").asText()).isNotEmpty();
      for (Selectors.LabelMatcher m : matchers) {
        assertThat(m.matches(series)).as("%s: %s against the scrape job", alert.path("alert").asText(), m).isTrue();
      }
    }
  }

  private List<JsonNode> alerts() {
    List<JsonNode> alerts = new ArrayList<>();
    for (JsonNode group : MetricNames.read(RULES).path("groups")) {
      for (JsonNode rule : group.path("rules")) {
        if (rule.has("alert")) {
          alerts.add(rule);
        }
      }
    }
    return alerts;
  }
}
