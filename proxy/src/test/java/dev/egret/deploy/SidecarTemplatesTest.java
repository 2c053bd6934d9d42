package dev.egret.deploy;

import static dev.egret.deploy.DeployFiles.named;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Egret added to workloads a team already has, two ways, rendered by {@code .ci/deploy-checks.sh}
 * into {@code -Degret.sidecar.rendered=DIR}: {@code team-chart.yaml} (helm/examples/crm-sync,
 * which includes the egret-sidecar library's named templates) and {@code kustomize.yaml}
 * (deploy/kustomize/example, which uses the egret-sidecar component). Both must give the very
 * Egret container the egret chart renders ({@code -Degret.helm.rendered}, scenario default), so
 * the three ways cannot drift apart.
 */
class SidecarTemplatesTest {
  private static Path sidecarDir;
  private static Path chartDir;

  @BeforeAll
  static void findRendered() {
    String s = System.getProperty("egret.sidecar.rendered");
    String c = System.getProperty("egret.helm.rendered");
    sidecarDir = s != null && Files.isDirectory(Path.of(s)) ? Path.of(s) : null;
    chartDir = c != null && Files.isDirectory(Path.of(c)) ? Path.of(c) : null;
    if (sidecarDir == null || chartDir == null) {
      System.err.println("SidecarTemplatesTest SKIPPED: run .ci/deploy-checks.sh (needs -Degret.sidecar.rendered and -Degret.helm.rendered)");
    }
  }

  @BeforeEach
  void skipWithoutRendered() {
    assumeTrue(sidecarDir != null && chartDir != null, "no rendered examples: run .ci/deploy-checks.sh");
  }

  private static List<JsonNode> docs(Path file) {
    return DeployFiles.yamlDocuments(file);
  }

  private static JsonNode find(List<JsonNode> docs, String kind, String name) {
    return docs.stream()
        .filter(d -> d.path("kind").asText().equals(kind) && d.path("metadata").path("name").asText().equals(name))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no " + kind + "/" + name));
  }

  private static JsonNode podSpec(JsonNode workload) {
    JsonNode spec = workload.path("spec");
    return workload.path("kind").asText().equals("CronJob")
        ? spec.path("jobTemplate").path("spec").path("template").path("spec")
        : spec.path("template").path("spec");
  }

  /** The chart's Egret container, image aside (each deployment names its own registry). */
  private static JsonNode withoutImage(JsonNode container) {
    ObjectNode copy = container.deepCopy();
    copy.remove("image");
    return copy;
  }

  private static JsonNode chartEgret() {
    JsonNode deployment = docs(chartDir.resolve("default.yaml")).stream()
        .filter(d -> d.path("kind").asText().equals("Deployment")).findFirst().orElseThrow();
    return named(podSpec(deployment).path("initContainers"), "name", "egret");
  }

  private static void assertEgretAdded(List<JsonNode> docs, JsonNode workload, String app) {
    String what = workload.path("kind").asText() + "/" + workload.path("metadata").path("name").asText();
    JsonNode pod = podSpec(workload);
    JsonNode egret = named(pod.path("initContainers"), "name", "egret");
    assertThat(egret.isMissingNode()).as("egret in %s", what).isFalse();
    assertThat(withoutImage(egret)).as("egret container of %s", what).isEqualTo(withoutImage(chartEgret()));
    assertThat(egret.path("image").asText()).as(what).startsWith("123456789012.dkr.ecr.eu-west-1.amazonaws.com/egret:");
    // Its volumes exist, and the config volume projects a ConfigMap of the output.
    JsonNode config = named(pod.path("volumes"), "name", "egret-config");
    String cm = config.path("projected").path("sources").get(0).path("configMap").path("name").asText();
    JsonNode configMap = find(docs, "ConfigMap", cm);
    JsonNode egretYaml = DeployFiles.yaml(configMap.path("data").path("egret.yaml").asText());
    assertThat(egretYaml.path("listen").path("proxy").asText()).isEqualTo("127.0.0.1:3128");
    assertThat(egretYaml.path("listen").path("admin").asText()).isEqualTo("0.0.0.0:9901");
    assertThat(egretYaml.path("allow").size()).isPositive();
    assertThat(named(pod.path("volumes"), "name", "egret-tmp").path("emptyDir").isObject()).isTrue();
    // The app still runs, with the proxy variables.
    JsonNode appContainer = named(pod.path("containers"), "name", app);
    assertThat(appContainer.isMissingNode()).as("%s in %s", app, what).isFalse();
    assertThat(proxyVariable(docs, appContainer, "HTTPS_PROXY")).as("HTTPS_PROXY of %s", what).isEqualTo("http://127.0.0.1:3128");
    assertThat(proxyVariable(docs, appContainer, "HTTP_PROXY")).isEqualTo("http://127.0.0.1:3128");
    assertThat(List.of(proxyVariable(docs, appContainer, "NO_PROXY").split(",")))
        .contains("localhost", "127.0.0.1", "169.254.169.254", "169.254.170.2");
  }

  /** A variable of the container: from env, or from a ConfigMap its envFrom names. */
  private static String proxyVariable(List<JsonNode> docs, JsonNode container, String name) {
    JsonNode env = named(container.path("env"), "name", name);
    if (!env.isMissingNode()) {
      return env.path("value").asText();
    }
    for (JsonNode from : container.path("envFrom")) {
      String cm = from.path("configMapRef").path("name").asText(null);
      if (cm != null) {
        JsonNode value = find(docs, "ConfigMap", cm).path("data").path(name);
        if (value.isTextual()) {
          return value.asText();
        }
      }
    }
    throw new AssertionError(name + " reaches " + container.path("name").asText() + " neither by env nor by envFrom");
  }

  @Test
  void theLibraryAddsEgretToATeamsDeploymentAndCronJob() {
    List<JsonNode> docs = docs(sidecarDir.resolve("team-chart.yaml"));
    assertEgretAdded(docs, find(docs, "Deployment", "crm-sync"), "crm-sync");
    assertEgretAdded(docs, find(docs, "CronJob", "crm-sync-nightly"), "nightly");
    JsonNode app = named(podSpec(find(docs, "Deployment", "crm-sync")).path("containers"), "name", "crm-sync");
    assertThat(named(app.path("env"), "name", "LOG_LEVEL").path("value").asText()).as("the team's own env stays").isEqualTo("info");
  }

  @Test
  void theKustomizeComponentPatchesOnlyTheLabelledWorkloads() {
    List<JsonNode> docs = docs(sidecarDir.resolve("kustomize.yaml"));
    JsonNode deployment = find(docs, "Deployment", "crm-sync");
    assertEgretAdded(docs, deployment, "crm-sync");
    assertEgretAdded(docs, find(docs, "CronJob", "crm-nightly"), "nightly");
    JsonNode app = named(podSpec(deployment).path("containers"), "name", "crm-sync");
    // The team's envFrom, env, ports, probes and volumes are all still there.
    assertThat(app.path("envFrom").get(0).path("secretRef").path("name").asText()).isEqualTo("crm-sync-secrets");
    assertThat(named(app.path("env"), "name", "LOG_LEVEL").isMissingNode()).isFalse();
    assertThat(app.path("readinessProbe").path("httpGet").path("path").asText()).isEqualTo("/ready");
    assertThat(named(podSpec(deployment).path("volumes"), "name", "tmp").isMissingNode()).isFalse();
    assertThat(podSpec(deployment).path("containers").size()).isEqualTo(1);
    // Not labelled egret.dev/sidecar: left alone.
    JsonNode ui = podSpec(find(docs, "Deployment", "crm-ui"));
    assertThat(ui.has("initContainers")).isFalse();
    assertThat(ui.has("volumes")).isFalse();
  }

  @Test
  void theComponentsProxyVariablesAreTheChartDefaults() {
    List<JsonNode> kustomize = docs(sidecarDir.resolve("kustomize.yaml"));
    JsonNode chartApp = null;
    for (JsonNode d : docs(chartDir.resolve("default.yaml"))) {
      if (d.path("kind").asText().equals("Deployment")) {
        chartApp = named(podSpec(d).path("containers"), "name", "app");
      }
    }
    JsonNode app = named(podSpec(find(kustomize, "Deployment", "crm-sync")).path("containers"), "name", "crm-sync");
    List<String> names = new ArrayList<>();
    chartApp.path("env").forEach(e -> names.add(e.path("name").asText()));
    assertThat(names).contains("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy");
    for (String name : names) {
      assertThat(proxyVariable(kustomize, app, name)).as(name).isEqualTo(named(chartApp.path("env"), "name", name).path("value").asText());
    }
  }
}
