package dev.egret.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.EgretConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code egret.enforce: true} in the chart: the init containers that write and apply the
 * iptables rules, NET_ADMIN on the applying container only, the transparent listeners in the
 * rendered config, and the combinations refused. Renders with the helm binary that
 * .ci/deploy-checks.sh installs under .tools/ (skipped, saying so, without it).
 */
class HelmEnforceTest {
  @TempDir static Path dir;
  private static Path helm;

  @BeforeAll
  static void findHelm() throws IOException {
    helm = Helm.find("HelmEnforceTest");
  }

  private static Helm.Rendered template(String... sets) throws Exception {
    List<String> args = new ArrayList<>(List.of("--kube-version", "1.31.0"));
    for (String s : sets) {
      args.add("--set");
      args.add(s);
    }
    return Helm.template(helm, dir, "t", args);
  }

  private static List<JsonNode> docs(String yaml) throws IOException {
    return new Helm.Rendered(0, yaml, "").docs();
  }

  private static JsonNode kind(List<JsonNode> docs, String kind) {
    return docs.stream().filter(d -> d.path("kind").asText().equals(kind)).findFirst().orElseThrow();
  }

  private static List<String> names(JsonNode containers) {
    List<String> n = new ArrayList<>();
    containers.forEach(c -> n.add(c.path("name").asText()));
    return n;
  }

  @Test
  void enforceAddsInitContainersThatWriteAndApplyTheRules() throws Exception {
    Helm.Rendered r = template("egret.enforce=true", "app.securityContext.runAsUser=10002",
        "egret.enforcement.allowEndpoints[0]=169.254.170.23:80");
    assertThat(r.code()).as(r.text()).isZero();
    List<JsonNode> docs = docs(r.out());
    JsonNode pod = kind(docs, "Deployment").path("spec").path("template").path("spec");
    assertThat(names(pod.path("initContainers")))
        .containsExactly("egret-rules", "egret-iptables", "egret-ip6tables", "egret");

    JsonNode rules = pod.path("initContainers").get(0);
    String script = rules.path("command").get(2).asText();
    assertThat(script).contains("/app/egret iptables --config /etc/egret/egret.yaml --uid 10001"
        + " --allow-endpoint 169.254.170.23:80 >/egret-rules/rules.v4")
        .contains("--ipv6 >/egret-rules/rules.v6");
    assertThat(rules.path("securityContext").path("runAsUser").asInt()).isEqualTo(10001);
    assertThat(rules.path("securityContext").path("capabilities").path("add").isMissingNode()).isTrue();

    JsonNode v4 = pod.path("initContainers").get(1);
    assertThat(v4.path("image").asText()).startsWith("registry.k8s.io/build-image/distroless-iptables:");
    assertThat(v4.path("command").toString()).isEqualTo("[\"iptables-restore\",\"/egret-rules/rules.v4\"]");
    assertThat(pod.path("initContainers").get(2).path("command").toString())
        .isEqualTo("[\"ip6tables-restore\",\"/egret-rules/rules.v6\"]");

    // NET_ADMIN (and NET_RAW) on the two applying containers, and nowhere else in the pod.
    List<JsonNode> all = new ArrayList<>();
    pod.path("initContainers").forEach(all::add);
    pod.path("containers").forEach(all::add);
    for (JsonNode c : all) {
      JsonNode add = c.path("securityContext").path("capabilities").path("add");
      if (c.path("name").asText().matches("egret-ip6?tables")) {
        assertThat(add.toString()).isEqualTo("[\"NET_ADMIN\",\"NET_RAW\"]");
        assertThat(c.path("securityContext").path("runAsUser").asInt()).isZero();
        assertThat(c.path("securityContext").path("readOnlyRootFilesystem").asBoolean()).isTrue();
        // iptables' lock file lives in /run, which must be writable on a read-only root.
        assertThat(c.path("volumeMounts").toString()).contains("\"mountPath\":\"/run\"");
      } else {
        assertThat(add.isMissingNode() || add.isEmpty()).as(c.path("name").asText()).isTrue();
      }
    }
    assertThat(names(pod.path("volumes"))).contains("egret-rules", "egret-xtables-run");
  }

  @Test
  void theRenderedConfigHasTheTransparentListenersEgretIptablesNeeds() throws Exception {
    Helm.Rendered r = template("egret.enforce=true", "app.securityContext.runAsUser=10002");
    String yaml = kind(docs(r.out()), "ConfigMap").path("data").path("egret.yaml").asText();
    Path f = Files.writeString(dir.resolve("egret.yaml"), yaml);
    EgretConfig c = ConfigCompiler.load(f);
    assertThat(c.listen().transparent()).hasSize(2);
    assertThat(c.listen().transparent().get(0).address().toString()).isEqualTo("127.0.0.1:3129");
    assertThat(c.listen().transparent().get(0).port()).isEqualTo(443);
    assertThat(c.listen().transparent().get(1).address().toString()).isEqualTo("127.0.0.1:3130");
    assertThat(c.listen().transparent().get(1).port()).isEqualTo(80);
  }

  @Test
  void withoutEnforceNothingChanges() throws Exception {
    Helm.Rendered r = template();
    assertThat(r.code()).as(r.text()).isZero();
    assertThat(r.text()).doesNotContain("egret-rules").doesNotContain("NET_ADMIN")
        .doesNotContain("transparent");
  }

  @Test
  void enforceWorksWithAnOrdinarySidecarToo() throws Exception {
    Helm.Rendered r = template("egret.enforce=true", "app.securityContext.runAsUser=10002",
        "egret.nativeSidecar=false", "egret.enforcement.ipv6=false");
    assertThat(r.code()).as(r.text()).isZero();
    JsonNode pod = kind(docs(r.out()), "Deployment").path("spec").path("template").path("spec");
    assertThat(names(pod.path("initContainers"))).containsExactly("egret-rules", "egret-iptables");
    assertThat(names(pod.path("containers"))).contains("egret");
  }

  @Test
  void refusesAnAppRunningAsEgretsUid() throws Exception {
    Helm.Rendered r = template("egret.enforce=true");
    assertThat(r.code()).isNotZero();
    assertThat(r.text()).contains("egret.enforce=true needs the app to run as another uid than"
        + " Egret's (both are 10001)");
  }

  @Test
  void refusesTransparentPortsOnTheProxyPort() throws Exception {
    Helm.Rendered r = template("egret.enforce=true", "app.securityContext.runAsUser=10002",
        "egret.enforcement.ports.tls=3128");
    assertThat(r.code()).isNotZero();
    assertThat(r.text()).contains("egret.enforcement.ports: 3128 is already Egret's proxy or admin port");
  }
}
