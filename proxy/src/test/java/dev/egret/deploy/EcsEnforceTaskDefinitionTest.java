package dev.egret.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.EgretConfig;
import dev.egret.enforce.Family;
import dev.egret.enforce.IptablesRules;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * deploy/ecs/task-definition-ec2-enforce.json: the ECS-on-EC2 recipe that installs
 * {@code egret iptables}' rules in the task's network namespace before the app starts, with
 * NET_ADMIN only on the containers that apply them; and deploy/ecs/egret-enforce.yaml, its
 * config with the transparent listeners.
 */
class EcsEnforceTaskDefinitionTest {
  private final JsonNode task = DeployFiles.json(DeployFiles.file("deploy/ecs/task-definition-ec2-enforce.json"));

  private JsonNode container(String name) {
    for (JsonNode c : task.path("containerDefinitions")) {
      if (c.path("name").asText().equals(name)) {
        return c;
      }
    }
    throw new AssertionError("no container " + name);
  }

  private static List<String> strings(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.isObject() ? n.path("containerName").asText() + ":"
        + n.path("condition").asText() : n.asText()));
    return out;
  }

  @Test
  void egretHealthCheckIsTheImagesStaticProbeNotASecondJvm() {
    // A `java -jar egret.jar ready` check costs about 0.4 CPU-seconds and 50 MB every interval,
    // inside the sidecar's own limit; the probe does the same GET in about a millisecond.
    JsonNode hc = container("egret").path("healthCheck");
    List<String> command = new ArrayList<>();
    hc.path("command").forEach(n -> command.add(n.asText()));
    assertThat(command).isNotEmpty();
    assertThat(command.get(0)).isEqualTo("CMD");
    assertThat(command.subList(1, command.size())).isEqualTo(DockerfileFacts.read().healthcheck());
    assertThat(hc.path("interval").asInt()).isBetween(5, 300);
    assertThat(hc.path("timeout").asInt()).isBetween(2, hc.path("interval").asInt());
    assertThat(hc.path("retries").asInt()).isBetween(1, 10);
    for (JsonNode c : task.path("containerDefinitions")) {
      assertThat(c.path("healthCheck").path("command").toString()).as(c.path("name").asText())
          .doesNotContain("java").doesNotContain("egret.jar");
    }
  }

  @Test
  void isAnAwsvpcTaskOnEc2() {
    // awsvpc: one network namespace for the whole task, so the rules hold for every container.
    assertThat(task.path("networkMode").asText()).isEqualTo("awsvpc");
    assertThat(strings(task.path("requiresCompatibilities"))).containsExactly("EC2");
  }

  @Test
  void onlyTheApplyingContainersGetNetAdmin() {
    for (JsonNode c : task.path("containerDefinitions")) {
      String name = c.path("name").asText();
      JsonNode caps = c.path("linuxParameters").path("capabilities");
      assertThat(strings(caps.path("drop"))).as(name).containsExactly("ALL");
      if (name.equals("egret-iptables") || name.equals("egret-ip6tables")) {
        assertThat(strings(caps.path("add"))).as(name).containsExactly("NET_ADMIN", "NET_RAW");
        assertThat(c.path("essential").asBoolean(true)).as(name).isFalse();
        assertThat(c.path("readonlyRootFilesystem").asBoolean()).as(name).isTrue();
        assertThat(c.path("mountPoints").toString()).as(name).contains("\"containerPath\":\"/run\"");
      } else {
        assertThat(caps.path("add").isMissingNode() || caps.path("add").isEmpty()).as(name).isTrue();
      }
    }
  }

  @Test
  void theRulesAreWrittenThenAppliedBeforeTheAppStarts() {
    assertThat(strings(container("egret-rules").path("dependsOn"))).containsExactly("egret-config:SUCCESS");
    assertThat(strings(container("egret-iptables").path("dependsOn"))).containsExactly("egret-rules:SUCCESS");
    assertThat(strings(container("egret-ip6tables").path("dependsOn"))).containsExactly("egret-rules:SUCCESS");
    assertThat(strings(container("app").path("dependsOn")))
        .contains("egret:HEALTHY", "egret-iptables:SUCCESS", "egret-ip6tables:SUCCESS");
    assertThat(strings(container("egret-iptables").path("entryPoint")))
        .containsExactly("iptables-restore", "/egret-rules/rules.v4");
    assertThat(strings(container("egret-ip6tables").path("entryPoint")))
        .containsExactly("ip6tables-restore", "/egret-rules/rules.v6");
  }

  @Test
  void theRulesExemptEgretsUidWhichIsNotTheApps() {
    String egretUser = container("egret").path("user").asText();
    String appUser = container("app").path("user").asText();
    String uid = egretUser.split(":")[0];
    assertThat(appUser.split(":")[0]).isNotEqualTo(uid);
    assertThat(container("egret-rules").path("user").asText()).isEqualTo(egretUser);
    String script = container("egret-rules").path("command").get(0).asText();
    assertThat(script).contains("iptables --config /etc/egret/egret.yaml --uid " + uid + " ")
        .contains("--allow-endpoint 169.254.170.2:80").contains(">/egret-rules/rules.v4")
        .contains("--ipv6 >/egret-rules/rules.v6");
  }

  @Test
  void theConfigHasTransparentListenersAndPrintsRules() throws Exception {
    EgretConfig c = ConfigCompiler.load(DeployFiles.file("deploy/ecs/egret-enforce.yaml"));
    assertThat(c.listen().transparent()).extracting(t -> t.port()).containsExactly(443, 80);
    String rules = IptablesRules.render(c.listen().transparent(), 10001,
        List.of(InetAddress.getByName("10.0.0.2")),
        List.of(new IptablesRules.Endpoint(InetAddress.getByName("169.254.170.2"), 80)),
        Family.IPV4, "egret-enforce.yaml");
    assertThat(rules).contains("--dport 443 -m comment --comment \"egret tls listener 127.0.0.1:3129\"");
    // The same allowlist as the Fargate task's config: only listen differs.
    EgretConfig fargate = ConfigCompiler.load(DeployFiles.file("deploy/ecs/egret.yaml"));
    assertThat(c.allowlist().rules()).hasSameSizeAs(fargate.allowlist().rules());
  }
}
