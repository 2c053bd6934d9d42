package dev.egret.deploy;

import static dev.egret.deploy.DeployFiles.named;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tracing.enabled} in the chart beside the other pod shapes: with egret.enforce's init
 * containers, as an ordinary container on clusters without native sidecars, and the
 * combinations refused. (HelmRenderTest checks the ci/tracing-values.yaml scenario itself.)
 * Renders with the helm binary that .ci/deploy-checks.sh installs under .tools/ (skipped,
 * saying so, without it).
 */
class HelmTracingTest {
  @TempDir static Path dir;
  private static Path helm;

  private static final String REGION = "tracing.collector.region=eu-west-1";

  @BeforeAll
  static void findHelm() throws IOException {
    helm = Helm.find("HelmTracingTest");
  }

  /** The Deployment's pod spec, failing with the render when there is none. */
  private static JsonNode pod(Helm.Rendered r) throws IOException {
    return r.docs().stream().filter(n -> n.path("kind").asText().equals("Deployment")).findFirst()
        .map(n -> n.path("spec").path("template").path("spec"))
        .orElseThrow(() -> new AssertionError("no Deployment in\n" + r.text()));
  }

  private static Helm.Rendered template(String kubeVersion, String... sets) throws Exception {
    List<String> args = new ArrayList<>(List.of("--kube-version", kubeVersion));
    for (String s : sets) {
      args.add("--set");
      args.add(s);
    }
    return helm(args);
  }

  private static Helm.Rendered helm(List<String> args) throws Exception {
    return Helm.template(helm, dir, "t", args);
  }

  private static List<String> names(JsonNode containers) {
    List<String> n = new ArrayList<>();
    containers.forEach(c -> n.add(c.path("name").asText()));
    return n;
  }

  @Test
  void withEnforceTheCollectorRunsAsEgretsUidAfterTheRulesAndBeforeEgret() throws Exception {
    Helm.Rendered r = template("1.31.0", "tracing.enabled=true", REGION, "egret.enforce=true",
        "app.securityContext.runAsUser=10002");
    assertThat(r.code()).as(r.text()).isZero();
    JsonNode pod = pod(r);
    assertThat(names(pod.path("initContainers")))
        .containsExactly("egret-rules", "egret-iptables", "egret-ip6tables", "otel-collector", "egret");
    // The rules exempt Egret's uid only; the collector inherits the pod's, which is Egret's.
    JsonNode collector = named(pod.path("initContainers"), "name", "otel-collector");
    assertThat(collector.path("securityContext").has("runAsUser")).isFalse();
    assertThat(pod.path("securityContext").path("runAsUser").asInt()).isEqualTo(10001);
    assertThat(r.out()).contains("--uid 10001");
  }

  @Test
  void onOlderClustersTheCollectorIsAnOrdinaryContainerBeforeEgret() throws Exception {
    Helm.Rendered r = template("1.27.0", "tracing.enabled=true", REGION, "egret.nativeSidecar=false");
    assertThat(r.code()).as(r.text()).isZero();
    JsonNode pod = pod(r);
    assertThat(pod.has("initContainers")).isFalse();
    assertThat(names(pod.path("containers"))).containsExactly("otel-collector", "egret", "app");
    assertThat(named(pod.path("containers"), "name", "otel-collector").has("restartPolicy")).isFalse();
  }

  @Test
  void withoutTracingNothingOfItIsRendered() throws Exception {
    Helm.Rendered r = template("1.31.0", REGION);
    assertThat(r.code()).as(r.text()).isZero();
    assertThat(r.out()).doesNotContain("otel").doesNotContain("tracing:").doesNotContain("aws-otel-collector");
  }

  /**
   * A values file gives a number (Go prints a small one as 1e-05); `--set` gives the string
   * "0.25", which the schema accepts. Either must reach Egret as the number meant.
   */
  @Test
  void passesTheSampleRatioToEgretAsTheNumberMeant() throws Exception {
    for (List<String> ratio : List.of(List.of("--set-json", "tracing.sampleRatio=0.00001"),
        List.of("--set", "tracing.sampleRatio=0.25"), List.of("--set-json", "tracing.sampleRatio=1"))) {
      List<String> args = new ArrayList<>(List.of("--kube-version", "1.31.0", "--set", "tracing.enabled=true", "--set", REGION));
      args.addAll(ratio);
      Helm.Rendered r = helm(args);
      assertThat(r.code()).as(r.text()).isZero();
      String yaml = null;
      try (MappingIterator<JsonNode> it = DeployFiles.YAML.readerFor(JsonNode.class).readValues(r.out())) {
        while (it.hasNext()) {
          JsonNode n = it.next();
          if (n != null && n.path("data").has("egret.yaml")) {
            yaml = n.path("data").path("egret.yaml").asText();
          }
        }
      }
      Path file = Files.writeString(dir.resolve("egret.yaml"), yaml);
      double expected = Double.parseDouble(ratio.get(1).substring(ratio.get(1).indexOf('=') + 1));
      assertThat(dev.egret.config.ConfigCompiler.load(file).tracing().sampleRatio()).as("%s", ratio).isEqualTo(expected);
    }
  }

  @Test
  void refusesTracingWithoutARegion() throws Exception {
    Helm.Rendered r = template("1.31.0", "tracing.enabled=true");
    assertThat(r.code()).isNotZero();
    assertThat(r.text()).contains("tracing.enabled=true needs tracing.collector.region");
  }

  @Test
  void refusesACollectorUidThatEnforceWouldRedirectIntoEgret() throws Exception {
    Helm.Rendered r = template("1.31.0", "tracing.enabled=true", REGION, "egret.enforce=true",
        "app.securityContext.runAsUser=10002", "tracing.collector.securityContext.runAsUser=4317");
    assertThat(r.code()).isNotZero();
    assertThat(r.text()).contains("tracing.enabled=true with egret.enforce=true needs the collector to run as"
        + " Egret's uid (10001)");
  }

  @Test
  void refusesAnUnknownTracingKey() throws Exception {
    Helm.Rendered r = template("1.31.0", "tracing.sampleRatoi=0.5");
    assertThat(r.code()).isNotZero();
    assertThat(r.text()).contains("sampleRatoi");
  }
}
