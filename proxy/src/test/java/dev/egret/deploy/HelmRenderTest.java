package dev.egret.deploy;

import static dev.egret.deploy.DeployFiles.named;
import static dev.egret.deploy.DeployFiles.strings;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The Helm chart as Kubernetes would receive it: {@code .ci/deploy-checks.sh} runs
 * {@code helm template} once per {@code helm/egret/ci/NAME-values.yaml} into
 * {@code DIR/NAME.yaml}, then runs this test with {@code -Degret.helm.rendered=DIR} (or the
 * environment variable {@code EGRET_HELM_RENDERED}). Without rendered output (no helm on the
 * machine) every test is skipped, saying so.
 */
class HelmRenderTest {
  private static final String PROPERTY = "egret.helm.rendered";
  private static final String ENV = "EGRET_HELM_RENDERED";
  private static final List<String> REQUIRED_SCENARIOS =
      List.of("default", "legacy-sidecar", "monitoring-enabled", "custom-allowlist", "job", "app", "tracing", "gateway");
  /** The OpenTelemetry collector's container name (tracing.enabled; helm/egret-sidecar/templates/_tracing.tpl). */
  private static final String COLLECTOR = "otel-collector";

  private static final String HOW_TO_RENDER =
      "run .ci/deploy-checks.sh, which renders helm/egret with helm template and passes -D"
          + PROPERTY + "=DIR (or set " + ENV + ")";

  private static Path renderedDir;

  @BeforeAll
  static void findRenderedChart() {
    String dir = System.getProperty(PROPERTY, System.getenv(ENV));
    if (dir != null && !dir.isBlank() && Files.isDirectory(Path.of(dir))) {
      renderedDir = Path.of(dir);
    } else {
      renderedDir = null;
      System.err.println("HelmRenderTest SKIPPED: no rendered chart (" + PROPERTY + "=" + dir + "); " + HOW_TO_RENDER);
    }
  }

  @BeforeEach
  void skipWithoutRenderedChart() {
    assumeTrue(renderedDir != null, () -> "no rendered chart: " + HOW_TO_RENDER);
  }

  static Stream<String> scenarios() throws IOException {
    try (Stream<Path> files = Files.list(DeployFiles.file("helm/egret/ci"))) {
      return files
          .map(p -> p.getFileName().toString())
          .filter(n -> n.endsWith("-values.yaml"))
          .map(n -> n.substring(0, n.length() - "-values.yaml".length()))
          .sorted()
          .toList()
          .stream();
    }
  }

  /**
   * The scenarios with an app beside Egret: all but {@code gateway*} ({@code mode: gateway}, Egret
   * alone behind a Service, whose own checks are in HelmGatewayTest).
   */
  static Stream<String> sidecarScenarios() throws IOException {
    return scenarios().filter(s -> !s.startsWith("gateway"));
  }

  @Test
  void everyScenarioWasRendered() throws IOException {
    List<String> declared = scenarios().toList();
    assertThat(declared).containsAll(REQUIRED_SCENARIOS);
    for (String s : declared) {
      assertThat(renderedDir.resolve(s + ".yaml")).as("rendered scenario %s", s).isNotEmptyFile();
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("scenarios")
  void everyObjectIsWellFormedAndLabelled(String scenario) {
    List<JsonNode> docs = Rendered.of(scenario).docs;
    assertThat(docs).isNotEmpty();
    for (JsonNode doc : docs) {
      String what = scenario + ": " + doc.path("kind").asText() + "/" + doc.path("metadata").path("name").asText();
      assertThat(doc.path("apiVersion").asText()).as(what).isNotBlank();
      assertThat(doc.path("kind").asText()).as(what).isNotBlank();
      assertThat(doc.path("metadata").path("name").asText()).as(what).matches("[a-z0-9]([-a-z0-9.]*[a-z0-9])?");
      assertThat(doc.path("metadata").path("name").asText().length()).as(what).isLessThanOrEqualTo(63);
      JsonNode labels = doc.path("metadata").path("labels");
      assertThat(labels.path("app.kubernetes.io/name").asText()).as(what).isEqualTo("egret");
      assertThat(labels.path("app.kubernetes.io/managed-by").asText()).as(what).isEqualTo("Helm");
    }
    assertThat(Rendered.of(scenario).kinds()).contains("ConfigMap", "ServiceAccount");
    assertThat(Rendered.of(scenario).kinds()).containsAnyOf("Deployment", "Job");
  }

  @Test
  void defaultRunsEgretAsANativeSidecarBeforeTheApp() {
    JsonNode pod = Rendered.of("default").podSpec();
    JsonNode egret = named(pod.path("initContainers"), "name", "egret");
    assertThat(egret.path("restartPolicy").asText()).isEqualTo("Always");
    assertThat(named(pod.path("containers"), "name", "egret").isMissingNode()).isTrue();
    assertThat(named(pod.path("containers"), "name", "app").isMissingNode()).isFalse();
    // kubelet starts the app only after a native sidecar's startup probe succeeds.
    assertThat(egret.path("startupProbe").path("httpGet").path("path").asText()).isEqualTo("/readyz");
  }

  @Test
  void legacySidecarIsAnOrdinaryContainerThatHoldsTheApp() {
    JsonNode pod = Rendered.of("legacy-sidecar").podSpec();
    assertThat(named(pod.path("initContainers"), "name", "egret").isMissingNode()).isTrue();
    JsonNode first = pod.path("containers").get(0);
    assertThat(first.path("name").asText()).isEqualTo("egret");
    assertThat(first.has("restartPolicy")).isFalse();
    List<String> hook = strings(first.path("lifecycle").path("postStart").path("exec").path("command"));
    // The image's HEALTHCHECK probe, waiting a bounded time, aimed at the configured admin port:
    // no shell and no second JVM.
    assertThat(hook).containsExactly(DockerfileFacts.read().healthcheck().get(0), "--wait", "60", "127.0.0.1:9901", "/readyz");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("scenarios")
  void probesUseTheAdminPort(String scenario) {
    Rendered r = Rendered.of(scenario);
    JsonNode egret = r.egret();
    // "egret-" names, so they cannot clash with the ports of the app beside it.
    JsonNode admin = named(egret.path("ports"), "name", "egret-admin");
    assertThat(admin.path("containerPort").asInt()).isEqualTo(r.listenPort("admin"));
    assertThat(named(egret.path("ports"), "name", "egret-proxy").path("containerPort").asInt()).isEqualTo(r.listenPort("proxy"));
    assertThat(probe(egret, "readinessProbe")).isEqualTo("/readyz@egret-admin");
    assertThat(probe(egret, "livenessProbe")).isEqualTo("/healthz@egret-admin");
    assertThat(probe(egret, "startupProbe")).isEqualTo("/readyz@egret-admin");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("scenarios")
  void everyContainerIsHardened(String scenario) {
    JsonNode pod = Rendered.of(scenario).podSpec();
    JsonNode podSec = pod.path("securityContext");
    assertThat(podSec.path("runAsNonRoot").asBoolean()).isTrue();
    assertThat(podSec.path("seccompProfile").path("type").asText()).isEqualTo("RuntimeDefault");
    assertThat(pod.path("automountServiceAccountToken").asBoolean(true)).isFalse();
    List<JsonNode> all = new ArrayList<>();
    pod.path("initContainers").forEach(all::add);
    pod.path("containers").forEach(all::add);
    for (JsonNode c : all) {
      String name = scenario + "/" + c.path("name").asText();
      JsonNode sec = c.path("securityContext");
      if (c.path("name").asText().matches("egret-ip6?tables")) {
        // egret.enforce's rule-applying init containers (HelmEnforceTest): root with NET_ADMIN
        // and NET_RAW, the only exception, and otherwise as locked down as the rest.
        assertThat(sec.path("runAsUser").asInt(-1)).as(name).isZero();
        assertThat(strings(sec.path("capabilities").path("add"))).as(name)
            .containsExactly("NET_ADMIN", "NET_RAW");
      } else {
        assertThat(sec.path("runAsNonRoot").asBoolean()).as(name).isTrue();
        assertThat(sec.path("capabilities").path("add").isEmpty()).as(name).isTrue();
      }
      assertThat(sec.path("readOnlyRootFilesystem").asBoolean()).as(name).isTrue();
      assertThat(sec.path("allowPrivilegeEscalation").asBoolean(true)).as(name).isFalse();
      assertThat(strings(sec.path("capabilities").path("drop"))).as(name).contains("ALL");
      assertThat(sec.path("seccompProfile").path("type").asText()).as(name).isEqualTo("RuntimeDefault");
      assertThat(c.path("resources").path("limits").path("memory").asText()).as(name).isNotBlank();
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("sidecarScenarios")
  void appSendsTrafficThroughEgretButNotPlatformEndpoints(String scenario) {
    Rendered r = Rendered.of(scenario);
    JsonNode app = r.app();
    String proxy = "http://127.0.0.1:" + r.listenPort("proxy");
    assertThat(env(app, "HTTP_PROXY")).isEqualTo(proxy);
    assertThat(env(app, "HTTPS_PROXY")).isEqualTo(proxy);
    assertThat(Arrays.asList(env(app, "NO_PROXY").split(",")))
        .contains("localhost", "127.0.0.1", "169.254.169.254", "169.254.170.2");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("sidecarScenarios")
  void proxyListensOnLoopbackAndAdminOnEveryInterface(String scenario) {
    JsonNode listen = Rendered.of(scenario).config().path("listen");
    assertThat(listen.path("proxy").asText()).startsWith("127.0.0.1:");
    assertThat(listen.path("admin").asText()).startsWith("0.0.0.0:");
    assertThat(Rendered.of(scenario).config().path("version").asInt()).isEqualTo(1);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("scenarios")
  void configMapIsMountedAsADirectorySoEditsReachEgret(String scenario) {
    Rendered r = Rendered.of(scenario);
    JsonNode egret = r.egret();
    String configPath = env(egret, "EGRET_CONFIG");
    int slash = configPath.lastIndexOf('/');
    JsonNode mount = named(egret.path("volumeMounts"), "mountPath", configPath.substring(0, slash));
    assertThat(mount.path("readOnly").asBoolean()).isTrue();
    assertThat(mount.has("subPath")).as("a subPath mount never sees ConfigMap updates").isFalse();
    JsonNode volume = named(r.podSpec().path("volumes"), "name", mount.path("name").asText());
    // A projected volume (the ConfigMap plus any configSources) is updated in place like a
    // ConfigMap volume.
    assertThat(volume.path("projected").path("sources").get(0).path("configMap").path("name").asText())
        .isEqualTo(r.configMap().path("metadata").path("name").asText());
    assertThat(r.configMap().path("data").has(configPath.substring(slash + 1))).isTrue();
    assertThat(named(egret.path("volumeMounts"), "mountPath", "/tmp").isMissingNode()).as("writable /tmp").isFalse();
  }

  @Test
  void checksumAnnotationFollowsTheAllowlistOnly() {
    String base = Rendered.of("default").checksum();
    assertThat(base).matches("[0-9a-f]{64}");
    assertThat(Rendered.of("monitoring-enabled").checksum()).as("same config, same checksum").isEqualTo(base);
    assertThat(Rendered.of("custom-allowlist").checksum()).as("new allowlist rolls the pods").isNotEqualTo(base);
  }

  @Test
  void customAllowlistReachesTheConfigFile() {
    JsonNode config = Rendered.of("custom-allowlist").config();
    List<String> hosts = new ArrayList<>();
    config.path("allow").forEach(rule -> hosts.add(rule.path("host").asText()));
    assertThat(hosts).containsExactly(
        "**.salesforce.com", "api.stripe.com", "hooks.slack.com", "legacy.partner.example", "crm.internal.example");
    assertThat(config.path("mode").asText()).isEqualTo("report");
    assertThat(config.path("listen").path("proxy").asText()).isEqualTo("127.0.0.1:3129");
    assertThat(named(config.path("allow"), "host", "hooks.slack.com").path("upgradePort").asInt()).isEqualTo(8443);
    assertThat(Rendered.of("custom-allowlist").egret().path("image").asText()).contains("@sha256:");
  }

  @Test
  void monitoringScenarioScrapesAlertsAndShipsTheDashboard() throws IOException {
    Rendered r = Rendered.of("monitoring-enabled");
    JsonNode service = r.one("Service");
    JsonNode monitor = r.one("ServiceMonitor");
    assertThat(monitor.path("apiVersion").asText()).isEqualTo("monitoring.coreos.com/v1");
    JsonNode endpoint = monitor.path("spec").path("endpoints").get(0);
    assertThat(endpoint.path("port").asText()).isEqualTo("admin");
    assertThat(endpoint.path("path").asText()).isEqualTo("/metrics");
    monitor.path("spec").path("selector").path("matchLabels").fields().forEachRemaining(l ->
        assertThat(service.path("metadata").path("labels").path(l.getKey()).asText())
            .as("Service carries selector label %s", l.getKey())
            .isEqualTo(l.getValue().asText()));
    assertThat(named(service.path("spec").path("ports"), "name", "admin").path("targetPort").asText())
        .isEqualTo(named(r.egret().path("ports"), "name", "egret-admin").path("name").asText());
    service.path("spec").path("selector").fields().forEachRemaining(l ->
        assertThat(r.podLabels().path(l.getKey()).asText()).isEqualTo(l.getValue().asText()));

    JsonNode rule = r.one("PrometheusRule");
    JsonNode alerts = DeployFiles.yaml(DeployFiles.file("helm/egret/files/egret-alerts.yaml"));
    assertThat(rule.path("spec").path("groups")).isEqualTo(alerts.path("groups"));
    assertThat(rule.path("spec").path("groups").size()).isPositive();

    JsonNode dashboard = null;
    for (JsonNode cm : r.all("ConfigMap")) {
      if (cm.path("metadata").path("labels").path("grafana_dashboard").asText().equals("1")) {
        dashboard = cm;
      }
    }
    assertThat(dashboard).as("ConfigMap labelled grafana_dashboard=1").isNotNull();
    JsonNode json = DeployFiles.JSON.readTree(dashboard.path("data").path("egret.json").asText());
    assertThat(json).isEqualTo(DeployFiles.json(DeployFiles.file("helm/egret/files/egret.json")));
  }

  /**
   * The Prometheus Operator labels a ServiceMonitor's series with {@code job} = the value of the
   * Service label that {@code spec.jobLabel} names, or the Service's name when there is none.
   * Every selector on {@code job} in the chart's rules must match that, or the alerts never fire
   * (and EgretTargetMissing fires forever).
   */
  @Test
  void everyAlertSelectsTheJobTheOperatorGivesTheScrapedSeries() {
    Rendered r = Rendered.of("monitoring-enabled");
    JsonNode service = r.one("Service");
    JsonNode monitor = r.one("ServiceMonitor");
    String jobLabel = monitor.path("spec").path("jobLabel").asText("");
    JsonNode fromLabel = service.path("metadata").path("labels").path(jobLabel);
    String job = !jobLabel.isEmpty() && fromLabel.isTextual()
        ? fromLabel.asText()
        : service.path("metadata").path("name").asText();
    java.util.Map<String, String> series = Selectors.labels("job", job);
    int jobSelectors = 0;
    for (JsonNode group : r.one("PrometheusRule").path("spec").path("groups")) {
      for (JsonNode rule : group.path("rules")) {
        for (Selectors.Selector s : Selectors.in(rule.path("expr").asText()).all()) {
          for (Selectors.LabelMatcher m : s.on("job")) {
            jobSelectors++;
            assertThat(m.matches(series))
                .as("%s selects %s, but the operator labels the series job=\"%s\"", rule.path("alert").asText(), s.text(), job)
                .isTrue();
          }
        }
      }
    }
    assertThat(jobSelectors).as("job selectors in the rules").isPositive();
  }

  @Test
  void theAppGetsItsPortsProbesEnvFromVolumesAndAWritableTmp() {
    Rendered r = Rendered.of("app");
    JsonNode app = r.app();
    assertThat(app.path("name").asText()).isEqualTo("crm-sync");
    assertThat(named(app.path("ports"), "name", "http").path("containerPort").asInt()).isEqualTo(8080);
    assertThat(app.path("readinessProbe").path("httpGet").path("path").asText()).isEqualTo("/ready");
    assertThat(app.path("livenessProbe").path("httpGet").path("port").asText()).isEqualTo("http");
    assertThat(app.path("startupProbe").path("failureThreshold").asInt()).isEqualTo(30);
    assertThat(app.path("envFrom").get(0).path("secretRef").path("name").asText()).isEqualTo("crm-sync-secrets");
    assertThat(app.has("command")).as("the image's own command").isFalse();
    JsonNode pod = r.podSpec();
    for (JsonNode mount : app.path("volumeMounts")) {
      assertThat(named(pod.path("volumes"), "name", mount.path("name").asText()).isMissingNode())
          .as("volume of mount %s", mount.path("mountPath").asText()).isFalse();
    }
    JsonNode tmp = named(app.path("volumeMounts"), "mountPath", "/tmp");
    assertThat(named(pod.path("volumes"), "name", tmp.path("name").asText()).path("emptyDir").path("sizeLimit").asText()).isEqualTo("128Mi");
    assertThat(named(app.path("volumeMounts"), "mountPath", "/var/lib/crm-sync").isMissingNode()).isFalse();
    // Egret's own extra mount, and no port of the app's named like Egret's.
    assertThat(named(r.egret().path("volumeMounts"), "mountPath", "/etc/egret-partner").path("readOnly").asBoolean()).isTrue();
    for (JsonNode port : app.path("ports")) {
      assertThat(named(r.egret().path("ports"), "name", port.path("name").asText()).isMissingNode()).isTrue();
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("scenarios")
  void everyMountNamesAVolumeOfThePodAndNoVolumeIsDeclaredTwice(String scenario) {
    JsonNode pod = Rendered.of(scenario).podSpec();
    List<String> names = new ArrayList<>();
    pod.path("volumes").forEach(v -> names.add(v.path("name").asText()));
    assertThat(names).doesNotHaveDuplicates();
    List<JsonNode> all = new ArrayList<>();
    pod.path("initContainers").forEach(all::add);
    pod.path("containers").forEach(all::add);
    for (JsonNode c : all) {
      List<String> paths = new ArrayList<>();
      for (JsonNode m : c.path("volumeMounts")) {
        assertThat(names).as("%s mounts %s", c.path("name").asText(), m.path("name").asText()).contains(m.path("name").asText());
        paths.add(m.path("mountPath").asText());
      }
      assertThat(paths).as("mount paths of %s", c.path("name").asText()).doesNotHaveDuplicates();
    }
  }

  @Test
  void defaultScenarioNeedsNoMonitoringCrds() {
    assertThat(Rendered.of("default").kinds()).doesNotContain("ServiceMonitor", "PrometheusRule");
  }

  /** tracing.enabled, and only it, adds the collector, its config and Egret's tracing section. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("scenarios")
  void theCollectorRunsBesideEgretExactlyWhenEgretsConfigTraces(String scenario) {
    Rendered r = Rendered.of(scenario);
    boolean traces = r.config().has("tracing");
    JsonNode pod = r.podSpec();
    assertThat(r.collector().isMissingNode()).as("collector in %s", scenario).isEqualTo(!traces);
    assertThat(named(pod.path("volumes"), "name", "egret-otel-config").isMissingNode()).as(scenario).isEqualTo(!traces);
    assertThat(r.all("ConfigMap").stream().anyMatch(cm -> cm.path("data").has("collector.yaml"))).as(scenario).isEqualTo(traces);
    assertThat(scenario.equals("tracing")).as("only the tracing scenario traces").isEqualTo(traces);
  }

  @Test
  void tracingStartsTheCollectorBeforeEgretAndStopsItAfter() {
    JsonNode pod = Rendered.of("tracing").podSpec();
    List<String> init = new ArrayList<>();
    pod.path("initContainers").forEach(c -> init.add(c.path("name").asText()));
    // Native sidecars start in order and stop in reverse: the collector is up before Egret's
    // first span and still up when Egret flushes its last ones on SIGTERM.
    assertThat(init).containsExactly(COLLECTOR, "egret");
    JsonNode collector = Rendered.of("tracing").collector();
    assertThat(collector.path("restartPolicy").asText()).isEqualTo("Always");
    assertThat(collector.path("image").asText())
        .startsWith("public.ecr.aws/aws-observability/aws-otel-collector:v")
        .doesNotEndWith(":latest");
    // The image's own health check, which asks the health_check extension on loopback.
    assertThat(strings(collector.path("livenessProbe").path("exec").path("command"))).containsExactly("/healthcheck");
    assertThat(collector.path("readinessProbe").isMissingNode()).as("the pod is ready without tracing").isTrue();
    assertThat(collector.path("ports").isMissingNode()).as("nothing outside the pod reaches it").isTrue();
  }

  @Test
  void tracingPointsEgretAtTheCollectorsReceiverAndTheCollectorAtXRay() throws Exception {
    Rendered r = Rendered.of("tracing");
    JsonNode tracing = r.config().path("tracing");
    assertThat(tracing.path("exporter").asText()).isEqualTo("otlp");
    java.net.URI endpoint = java.net.URI.create(tracing.path("endpoint").asText());
    // Egret itself accepts the section: the scenario's values, compiled.
    Path file = Files.createTempFile("egret-tracing", ".yaml");
    try {
      Files.writeString(file, r.configMap().path("data").path("egret.yaml").asText());
      dev.egret.config.EgretConfig.Tracing compiled = dev.egret.config.ConfigCompiler.load(file).tracing();
      assertThat(compiled.on()).isTrue();
      assertThat(compiled.endpoint()).isEqualTo(endpoint);
      assertThat(compiled.sampleRatio()).isEqualTo(0.05);
      assertThat(compiled.propagate()).isEqualTo(dev.egret.config.EgretConfig.Propagation.PROPAGATE);
      assertThat(compiled.xray()).isTrue();
    } finally {
      Files.deleteIfExists(file);
    }

    JsonNode collector = r.collectorConfig();
    JsonNode otlp = collector.path("receivers").path("otlp").path("protocols").path("http");
    assertThat(otlp.path("endpoint").asText()).isEqualTo(endpoint.getHost() + ":" + endpoint.getPort());
    assertThat(endpoint.getHost()).as("the pod's loopback").isEqualTo("127.0.0.1");
    assertThat(endpoint.getPath()).isEqualTo("/v1/traces");
    assertThat(collector.path("exporters").path("awsxray").path("region").asText()).isEqualTo("eu-west-1");
    assertThat(collector.path("extensions").path("health_check").path("endpoint").asText()).isEqualTo("127.0.0.1:13133");
    // Every component a pipeline names is configured (the collector refuses to start otherwise).
    JsonNode service = collector.path("service");
    for (String ext : strings(service.path("extensions"))) {
      assertThat(collector.path("extensions").has(ext)).as("extension %s", ext).isTrue();
    }
    JsonNode traces = service.path("pipelines").path("traces");
    for (String kind : List.of("receivers", "processors", "exporters")) {
      assertThat(traces.path(kind)).as(kind).isNotEmpty();
      for (String name : strings(traces.path(kind))) {
        assertThat(collector.path(kind).has(name)).as("%s %s", kind, name).isTrue();
      }
    }
    assertThat(strings(traces.path("exporters"))).containsExactly("awsxray");
    // The ECS collector (deploy/ecs/task-definition-tracing.json) runs the very same config.
    JsonNode ecs = named(DeployFiles.json(DeployFiles.file("deploy/ecs/task-definition-tracing.json"))
        .path("containerDefinitions"), "name", COLLECTOR);
    JsonNode ecsConfig = DeployFiles.yaml(named(ecs.path("environment"), "name", "AOT_CONFIG_CONTENT").path("value").asText());
    assertThat(ecsConfig).isEqualTo(collector);
  }

  @Test
  void tracingRollsThePodsAndLeavesTheOtherScenariosAlone() {
    assertThat(Rendered.of("tracing").checksum()).isNotEqualTo(Rendered.of("default").checksum());
    assertThat(Rendered.of("tracing").config().path("allow"))
        .as("the same allowlist as the default").isEqualTo(Rendered.of("default").config().path("allow"));
  }

  @Test
  void jobScenarioCompletesBecauseEgretIsANativeSidecar() {
    Rendered r = Rendered.of("job");
    JsonNode job = r.one("Job");
    assertThat(job.path("apiVersion").asText()).isEqualTo("batch/v1");
    JsonNode pod = r.podSpec();
    assertThat(pod.path("restartPolicy").asText()).isIn("Never", "OnFailure");
    assertThat(named(pod.path("initContainers"), "name", "egret").path("restartPolicy").asText()).isEqualTo("Always");
    assertThat(job.path("spec").path("backoffLimit").isInt()).isTrue();
  }

  private static String probe(JsonNode container, String probe) {
    JsonNode get = container.path(probe).path("httpGet");
    return get.path("path").asText() + "@" + get.path("port").asText();
  }

  private static String env(JsonNode container, String name) {
    JsonNode var = named(container.path("env"), "name", name);
    assertThat(var.isMissingNode()).as("env %s of %s", name, container.path("name").asText()).isFalse();
    return var.path("value").asText();
  }

  /** One rendered scenario, with finders for the objects the tests look at. */
  private record Rendered(String scenario, List<JsonNode> docs) {
    static Rendered of(String scenario) {
      return new Rendered(scenario, DeployFiles.yamlDocuments(renderedDir.resolve(scenario + ".yaml")));
    }

    List<String> kinds() {
      return docs.stream().map(d -> d.path("kind").asText()).toList();
    }

    List<JsonNode> all(String kind) {
      return docs.stream().filter(d -> d.path("kind").asText().equals(kind)).toList();
    }

    JsonNode one(String kind) {
      List<JsonNode> found = all(kind);
      assertThat(found).as("%s objects in %s", kind, scenario).hasSize(1);
      return found.get(0);
    }

    JsonNode workload() {
      List<JsonNode> found = new ArrayList<>(all("Deployment"));
      found.addAll(all("Job"));
      assertThat(found).as("workloads in %s", scenario).hasSize(1);
      return found.get(0);
    }

    JsonNode podSpec() {
      return workload().path("spec").path("template").path("spec");
    }

    JsonNode podLabels() {
      return workload().path("spec").path("template").path("metadata").path("labels");
    }

    String checksum() {
      return workload().path("spec").path("template").path("metadata").path("annotations").path("checksum/config").asText();
    }

    /** The app: the pod's one container that is neither Egret nor the collector. */
    JsonNode app() {
      List<JsonNode> apps = new ArrayList<>();
      podSpec().path("containers").forEach(c -> {
        if (!c.path("name").asText().equals("egret") && !c.path("name").asText().equals(COLLECTOR)) {
          apps.add(c);
        }
      });
      assertThat(apps).as("app containers in %s", scenario).hasSize(1);
      return apps.get(0);
    }

    JsonNode egret() {
      JsonNode pod = podSpec();
      JsonNode egret = named(pod.path("initContainers"), "name", "egret");
      if (egret.isMissingNode()) {
        egret = named(pod.path("containers"), "name", "egret");
      }
      assertThat(egret.isMissingNode()).as("egret container in %s", scenario).isFalse();
      return egret;
    }

    /** The OpenTelemetry collector's container, or a missing node when tracing is off. */
    JsonNode collector() {
      JsonNode pod = podSpec();
      JsonNode c = named(pod.path("initContainers"), "name", COLLECTOR);
      return c.isMissingNode() ? named(pod.path("containers"), "name", COLLECTOR) : c;
    }

    /** The collector's config: the file its --config names, from the volume mounted there. */
    JsonNode collectorConfig() {
      JsonNode c = collector();
      String arg = strings(c.path("args")).stream().filter(a -> a.startsWith("--config=")).findFirst()
          .orElseThrow(() -> new AssertionError("the collector has no --config"));
      String path = arg.substring("--config=".length());
      int slash = path.lastIndexOf('/');
      JsonNode mount = named(c.path("volumeMounts"), "mountPath", path.substring(0, slash));
      assertThat(mount.path("readOnly").asBoolean()).isTrue();
      String cm = named(podSpec().path("volumes"), "name", mount.path("name").asText()).path("configMap").path("name").asText();
      JsonNode configMap = all("ConfigMap").stream().filter(d -> d.path("metadata").path("name").asText().equals(cm))
          .findFirst().orElseThrow(() -> new AssertionError("no ConfigMap " + cm + " in " + scenario));
      return DeployFiles.yaml(configMap.path("data").path(path.substring(slash + 1)).asText());
    }

    /** Egret's own ConfigMap (the one the pod mounts), not the dashboard's. */
    JsonNode configMap() {
      return all("ConfigMap").stream()
          .filter(cm -> cm.path("data").has("egret.yaml"))
          .findFirst()
          .orElseThrow(() -> new AssertionError("no ConfigMap with egret.yaml in " + scenario));
    }

    JsonNode config() {
      return DeployFiles.yaml(configMap().path("data").path("egret.yaml").asText());
    }

    int listenPort(String listener) {
      String hostPort = config().path("listen").path(listener).asText();
      return Integer.parseInt(hostPort.substring(hostPort.lastIndexOf(':') + 1));
    }
  }
}
