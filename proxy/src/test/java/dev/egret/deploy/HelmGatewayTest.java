package dev.egret.deploy;

import static dev.egret.deploy.DeployFiles.named;
import static dev.egret.deploy.DeployFiles.strings;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mode: gateway} in the chart, rendered from {@code helm/egret/ci/gateway-values.yaml}:
 * Egret alone in a Deployment with the gateway JVM profile, listening on every interface, a
 * Service for the proxy port, an autoscaler on CPU, a disruption budget, spread over zones, a
 * NetworkPolicy that admits only client namespaces and Prometheus, a termination grace that
 * outlasts the drain, token hashes projected from Secrets and never written into the config, and
 * the combinations refused. Renders with the helm binary that .ci/deploy-checks.sh installs
 * under .tools/ (skipped, saying so, without it).
 */
class HelmGatewayTest {
  @TempDir static Path dir;
  private static Path helm;
  private static List<JsonNode> docs;

  @BeforeAll
  static void renderTheGatewayScenario() throws Exception {
    helm = Helm.find("HelmGatewayTest");
    Helm.Rendered r = template("-f", DeployFiles.file("helm/egret/ci/gateway-values.yaml").toString());
    assertThat(r.code()).as(r.text()).isZero();
    docs = docs(r.out());
  }

  /** helm template of the chart with these extra arguments (-f FILE, --set K=V, --kube-version V). */
  private static Helm.Rendered template(String... args) throws Exception {
    List<String> all = new ArrayList<>(List.of("--namespace", "egress"));
    List<String> extra = List.of(args);
    if (!extra.contains("--kube-version")) {
      all.addAll(List.of("--kube-version", "1.31.0"));
    }
    all.addAll(extra);
    return Helm.template(helm, dir, "gw", all);
  }

  private static List<JsonNode> docs(String yaml) throws IOException {
    return new Helm.Rendered(0, yaml, "").docs();
  }

  private static List<JsonNode> all(String kind) {
    return docs.stream().filter(d -> d.path("kind").asText().equals(kind)).toList();
  }

  private static JsonNode one(String kind) {
    List<JsonNode> found = all(kind);
    assertThat(found).as("%s objects", kind).hasSize(1);
    return found.get(0);
  }

  private static JsonNode pod() {
    return one("Deployment").path("spec").path("template").path("spec");
  }

  private static JsonNode egret() {
    JsonNode containers = pod().path("containers");
    assertThat(containers).as("containers of the gateway pod").hasSize(1);
    assertThat(containers.get(0).path("name").asText()).isEqualTo("egret");
    return containers.get(0);
  }

  private static String env(JsonNode container, String name) {
    return named(container.path("env"), "name", name).path("value").asText(null);
  }

  private static JsonNode config() {
    JsonNode cm = all("ConfigMap").stream().filter(c -> c.path("data").has("egret.yaml")).findFirst().orElseThrow();
    return DeployFiles.yaml(cm.path("data").path("egret.yaml").asText());
  }

  @Test
  void runsEgretAloneWithTheGatewayProfileListeningOnEveryInterface() {
    assertThat(all("Job")).isEmpty();
    assertThat(pod().path("initContainers").isMissingNode() || pod().path("initContainers").isEmpty()).isTrue();
    JsonNode egret = egret();
    assertThat(env(egret, "EGRET_JVM_PROFILE")).isEqualTo("gateway");
    assertThat(egret.path("restartPolicy").isMissingNode()).as("an ordinary container, not a native sidecar").isTrue();
    assertThat(egret.path("lifecycle").isMissingNode()).as("no app to hold").isTrue();
    // The gateway profile is sized for 512 MiB and refuses to start below it.
    assertThat(egret.path("resources").path("limits").path("memory").asText()).isEqualTo("768Mi");
    assertThat(egret.path("resources").path("requests").path("cpu").asText()).as("the autoscaler's base").isNotBlank();
    JsonNode listen = config().path("listen");
    assertThat(listen.path("proxy").asText()).isEqualTo("0.0.0.0:3128");
    assertThat(listen.path("admin").asText()).isEqualTo("0.0.0.0:9901");
    assertThat(named(egret.path("ports"), "name", "egret-proxy").path("containerPort").asInt()).isEqualTo(3128);
  }

  @Test
  void aServiceExposesTheProxyPortToTheGatewayPods() {
    JsonNode service = all("Service").stream()
        .filter(s -> s.path("metadata").path("labels").path("app.kubernetes.io/component").asText().equals("gateway"))
        .findFirst().orElseThrow(() -> new AssertionError("no gateway Service"));
    JsonNode port = service.path("spec").path("ports").get(0);
    assertThat(service.path("spec").path("ports")).hasSize(1);
    assertThat(port.path("port").asInt()).isEqualTo(3128);
    assertThat(port.path("targetPort").asText()).isEqualTo("egret-proxy");
    JsonNode podLabels = one("Deployment").path("spec").path("template").path("metadata").path("labels");
    service.path("spec").path("selector").properties()
        .forEach(e -> assertThat(podLabels.path(e.getKey()).asText()).as(e.getKey()).isEqualTo(e.getValue().asText()));
  }

  @Test
  void scalesOnCpuAndLeavesTheReplicaCountToTheAutoscaler() {
    JsonNode hpa = one("HorizontalPodAutoscaler");
    assertThat(hpa.path("apiVersion").asText()).isEqualTo("autoscaling/v2");
    assertThat(hpa.path("spec").path("scaleTargetRef").path("kind").asText()).isEqualTo("Deployment");
    assertThat(hpa.path("spec").path("scaleTargetRef").path("name").asText())
        .isEqualTo(one("Deployment").path("metadata").path("name").asText());
    assertThat(hpa.path("spec").path("minReplicas").asInt()).isEqualTo(3);
    assertThat(hpa.path("spec").path("maxReplicas").asInt()).isEqualTo(12);
    JsonNode metric = hpa.path("spec").path("metrics").get(0);
    assertThat(metric.path("resource").path("name").asText()).isEqualTo("cpu");
    assertThat(metric.path("resource").path("target").path("type").asText()).isEqualTo("Utilization");
    assertThat(one("Deployment").path("spec").has("replicas"))
        .as("helm upgrade must not reset what the autoscaler chose").isFalse();
    assertThat(one("Deployment").path("spec").path("strategy").path("rollingUpdate").path("maxUnavailable").asInt())
        .isZero();
  }

  @Test
  void survivesDrainsAndSpreadsOverZonesAndNodes() {
    JsonNode pdb = one("PodDisruptionBudget");
    assertThat(pdb.path("spec").path("maxUnavailable").asInt()).isEqualTo(1);
    JsonNode podLabels = one("Deployment").path("spec").path("template").path("metadata").path("labels");
    pdb.path("spec").path("selector").path("matchLabels").properties()
        .forEach(e -> assertThat(podLabels.path(e.getKey()).asText()).isEqualTo(e.getValue().asText()));
    List<String> keys = new ArrayList<>();
    for (JsonNode c : pod().path("topologySpreadConstraints")) {
      keys.add(c.path("topologyKey").asText());
      c.path("labelSelector").path("matchLabels").properties()
          .forEach(e -> assertThat(podLabels.path(e.getKey()).asText()).isEqualTo(e.getValue().asText()));
    }
    assertThat(keys).containsExactly("topology.kubernetes.io/zone", "kubernetes.io/hostname");
  }

  @Test
  void letsInOnlyClientNamespacesOnTheProxyPortAndPrometheusOnTheAdminPort() {
    JsonNode policy = one("NetworkPolicy").path("spec");
    assertThat(strings(policy.path("policyTypes"))).containsExactly("Ingress");
    JsonNode podLabels = one("Deployment").path("spec").path("template").path("metadata").path("labels");
    policy.path("podSelector").path("matchLabels").properties()
        .forEach(e -> assertThat(podLabels.path(e.getKey()).asText()).isEqualTo(e.getValue().asText()));
    JsonNode ingress = policy.path("ingress");
    assertThat(ingress).hasSize(2);

    JsonNode clients = ingress.get(0);
    assertThat(clients.path("ports")).hasSize(1);
    assertThat(clients.path("ports").get(0).path("port").asText()).isEqualTo("egret-proxy");
    JsonNode from = clients.path("from").get(0);
    assertThat(from.path("namespaceSelector").path("matchLabels").path("egret.dev/egress-gateway").asText())
        .isEqualTo("allowed");
    assertThat(from.has("ipBlock")).isFalse();

    JsonNode prometheus = ingress.get(1);
    assertThat(prometheus.path("ports").get(0).path("port").asText()).isEqualTo("egret-admin");
    JsonNode prom = prometheus.path("from").get(0);
    assertThat(prom.path("namespaceSelector").path("matchLabels").path("kubernetes.io/metadata.name").asText())
        .isEqualTo("monitoring");
    assertThat(prom.path("podSelector").path("matchLabels").isEmpty()).as("Prometheus's pods, not the whole namespace").isFalse();
    // Each named port exists on the container, or the rule would admit nothing.
    for (JsonNode rule : ingress) {
      String port = rule.path("ports").get(0).path("port").asText();
      assertThat(named(egret().path("ports"), "name", port).isMissingNode()).as(port).isFalse();
    }
  }

  /** Kubernetes sends SIGKILL at terminationGracePeriodSeconds; Egret may drain until shutdown.deadline. */
  @Test
  void terminationGraceOutlastsTheShutdownDeadline() throws Exception {
    JsonNode shutdown = config().path("shutdown");
    assertThat(shutdown.path("deadline").asText()).isEqualTo("45s");
    assertThat(shutdown.path("grace").asText()).isEqualTo("10s");
    assertThat(pod().path("terminationGracePeriodSeconds").asInt()).isEqualTo(50);

    Helm.Rendered minutes = template("-f", DeployFiles.file("helm/egret/ci/gateway-values.yaml").toString(),
        "--set", "gateway.shutdown.deadline=2m");
    assertThat(minutes.code()).as(minutes.text()).isZero();
    JsonNode deployment = docsOf(minutes).stream().filter(d -> d.path("kind").asText().equals("Deployment")).findFirst().orElseThrow();
    assertThat(deployment.path("spec").path("template").path("spec").path("terminationGracePeriodSeconds").asInt())
        .isEqualTo(125);
  }

  @Test
  void tokenHashesComeFromSecretsAndNeverFromTheConfigMap() {
    JsonNode clients = config().path("clients");
    assertThat(clients).hasSize(2);
    JsonNode crm = named(clients, "name", "crm-sync");
    assertThat(strings(crm.path("match").path("tokens"))).containsExactly("${file:tokens/crm-sync-0.sha256}");
    JsonNode batch = named(clients, "name", "orders-batch");
    assertThat(strings(batch.path("match").path("tokens")))
        .containsExactly("${file:tokens/orders-batch-0.sha256}", "${file:tokens/orders-batch-1.sha256}");
    assertThat(batch.path("mode").asText()).isEqualTo("report");
    assertThat(crm.path("allow").get(0).path("host").asText()).isEqualTo("**.salesforce.com");

    // Each file the config names is an item of a Secret projected into /etc/egret.
    JsonNode egret = egret();
    JsonNode mount = named(egret.path("volumeMounts"), "mountPath", "/etc/egret");
    JsonNode volume = named(pod().path("volumes"), "name", mount.path("name").asText());
    List<String> fromSecrets = new ArrayList<>();
    for (JsonNode source : volume.path("projected").path("sources")) {
      source.path("secret").path("items").forEach(i -> fromSecrets.add(source.path("secret").path("name").asText()
          + "/" + i.path("key").asText() + " -> " + i.path("path").asText()));
    }
    assertThat(fromSecrets).contains(
        "egret-gateway-tokens/crm-sync -> tokens/crm-sync-0.sha256",
        "egret-gateway-tokens/orders-batch -> tokens/orders-batch-0.sha256",
        "egret-gateway-tokens/orders-batch-next -> tokens/orders-batch-1.sha256",
        "corp-proxy/password -> secrets/corp-proxy");
    // Nothing that looks like a token hash anywhere in what helm renders.
    for (JsonNode d : docs) {
      assertThat(d.toString()).as(d.path("kind").asText()).doesNotContainPattern("sha256:[0-9a-f]{8}");
    }
  }

  @Test
  void refusesTokenHashesWrittenIntoTheValues() throws Exception {
    assertRefused("a token hash in the values", "tokens", gatewayWith("""
        gateway:
          clients:
            - name: crm-sync
              match:
                tokens: ["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
              allow: [{host: api.example-crm.com}]
        """));
  }

  @Test
  void routesThroughTheCorporateProxyExceptTheDirectHosts() {
    JsonNode config = config();
    assertThat(config.path("upstreamProxies").path("corp").path("url").asText()).isEqualTo("https://proxy.corp.example:8443");
    assertThat(config.path("upstreamProxies").path("corp").path("auth").path("password").asText())
        .isEqualTo("${file:secrets/corp-proxy}");
    assertThat(config.path("routing").path("upstreamProxy").asText()).isEqualTo("corp");
    assertThat(strings(config.path("routing").path("direct"))).containsExactly("**.corp.example");
    assertThat(config.path("identity").path("onMissing").asText()).isEqualTo("deny");
    assertThat(config.path("allow").isArray()).isTrue();
    assertThat(config.path("allow")).isEmpty();
  }

  @Test
  void aNewClientListRollsThePods() throws Exception {
    String base = checksum(docs);
    Helm.Rendered more = template(gatewayWith("""
        gateway:
          clients:
            - name: crm-sync
              tokenSecrets: [{name: egret-gateway-tokens, key: crm-sync}]
              allow: [{host: "**.salesforce.com"}]
        """));
    assertThat(more.code()).as(more.text()).isZero();
    assertThat(checksum(docsOf(more))).matches("[0-9a-f]{64}").isNotEqualTo(base);
  }

  @Test
  void refusesWhatAGatewayCannotRun() throws Exception {
    assertRefused("a Job", "needs workload.kind=Deployment", gatewayWith("--set", "workload.kind=Job"));
    assertRefused("iptables enforcement", "egret.enforce=true",
        gatewayWith("--set", "egret.enforce=true", "--set", "app.securityContext.runAsUser=10002"));
    assertRefused("a drain grace above the deadline", "must not be longer than",
        gatewayWith("--set", "gateway.shutdown.grace=60s"));
    assertRefused("a client listed twice", "\"crm-sync\" is listed twice", gatewayWith("""
        gateway:
          clients:
            - {name: crm-sync, allow: [{host: a.example}]}
            - {name: crm-sync, allow: [{host: b.example}]}
        """));
    assertRefused("onMissing naming no client", "neither deny nor a client",
        gatewayWith("--set", "gateway.identity.onMissing=nobody"));
    assertRefused("a client name outside [a-z0-9-]", "name", gatewayWith("""
        gateway:
          clients:
            - {name: CRM_Sync, allow: [{host: a.example}]}
        """));
    assertRefused("a gateway with nothing allowed", "every request would be denied",
        new String[] {"--set", "mode=gateway", "--set-json", "config.allow=[]"});
    assertRefused("a NetworkPolicy that admits every namespace", "selects every namespace",
        gatewayWith("--set", "gateway.networkPolicy.clientNamespaceSelector.matchLabels=null"));
    assertRefused("an upstream proxy password in the values", "password",
        gatewayWith("--set", "gateway.upstreamProxies.corp.auth.password=hunter2"));
  }

  /** helm arguments: the gateway scenario, then these --set arguments. */
  private static String[] gatewayWith(String first, String... more) throws IOException {
    List<String> args = new ArrayList<>(List.of("-f", DeployFiles.file("helm/egret/ci/gateway-values.yaml").toString()));
    if (first.startsWith("--")) {
      args.add(first);
      args.addAll(List.of(more));
    } else {
      // A values file laid over the scenario (lists in it replace the scenario's lists).
      Path over = Files.createTempFile(dir, "values", ".yaml");
      Files.writeString(over, first);
      args.addAll(List.of("-f", over.toString()));
    }
    return args.toArray(String[]::new);
  }

  /**
   * Without clients a gateway serves one anonymous client, as a sidecar does: no identity
   * section, which would otherwise deny every connection that no client matches.
   */
  @Test
  void aGatewayWithoutClientsHasNoIdentitySection() throws Exception {
    Helm.Rendered r = template("--set", "mode=gateway");
    assertThat(r.code()).as(r.text()).isZero();
    JsonNode cm = docsOf(r).stream().filter(d -> d.path("data").has("egret.yaml")).findFirst().orElseThrow();
    JsonNode config = DeployFiles.yaml(cm.path("data").path("egret.yaml").asText());
    assertThat(config.has("clients")).isFalse();
    assertThat(config.has("identity")).isFalse();
    assertThat(config.path("listen").path("proxy").asText()).isEqualTo("0.0.0.0:3128");
    assertThat(config.path("allow")).hasSize(1);
    assertThat(config.path("allow").get(0).path("host").asText()).isEqualTo("api.example-crm.com");
  }

  /** A gateway runs no native sidecar, so it renders on clusters older than 1.29 too. */
  @Test
  void rendersOnClustersWithoutNativeSidecars() throws Exception {
    Helm.Rendered r = template("-f", DeployFiles.file("helm/egret/ci/gateway-values.yaml").toString(),
        "--kube-version", "1.27.0");
    assertThat(r.code()).as(r.text()).isZero();
  }

  private static void assertRefused(String what, String message, String[] args) throws Exception {
    Helm.Rendered r = template(args);
    assertThat(r.code()).as("the chart accepted %s", what).isNotZero();
    assertThat(r.err()).as("refusing %s", what).contains(message);
  }

  private static List<JsonNode> docsOf(Helm.Rendered r) {
    try {
      return docs(r.out());
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  private static String checksum(List<JsonNode> rendered) {
    return rendered.stream().filter(d -> d.path("kind").asText().equals("Deployment")).findFirst().orElseThrow()
        .path("spec").path("template").path("metadata").path("annotations").path("checksum/config").asText();
  }
}
