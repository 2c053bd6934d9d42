package dev.egret.deploy;

import static dev.egret.deploy.DeployFiles.named;
import static dev.egret.deploy.DeployFiles.strings;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * deploy/ecs/task-definition.json: an awsvpc task whose app reaches the internet only through
 * the Egret sidecar, and deploy/ecs/egret.yaml, the allowlist it is given.
 */
class EcsTaskDefinitionTest {
  private static final String PROXY = "http://127.0.0.1:3128";

  private final JsonNode task = DeployFiles.json(DeployFiles.file("deploy/ecs/task-definition.json"));
  private final JsonNode containers = task.path("containerDefinitions");
  private final JsonNode egret = named(containers, "name", "egret");
  private final JsonNode app = named(containers, "name", "app");
  private final JsonNode configWriter = named(containers, "name", "egret-config");

  @Test
  void isAnAwsvpcFargateTask() {
    assertThat(task.path("family").asText()).isEqualTo("crm-sync");
    assertThat(task.path("networkMode").asText()).isEqualTo("awsvpc");
    assertThat(strings(task.path("requiresCompatibilities"))).contains("FARGATE");
    assertThat(task.path("cpu").asText()).isNotBlank();
    assertThat(task.path("memory").asText()).isNotBlank();
    assertThat(task.path("executionRoleArn").asText()).startsWith("arn:aws:iam::");
    assertThat(task.path("taskRoleArn").asText()).startsWith("arn:aws:iam::");
    assertThat(egret.isMissingNode()).as("container egret").isFalse();
    assertThat(app.isMissingNode()).as("container app").isFalse();
  }

  @Test
  void appStartsOnlyOnceEgretIsHealthy() {
    assertThat(named(app.path("dependsOn"), "containerName", "egret").path("condition").asText())
        .isEqualTo("HEALTHY");
    assertThat(app.path("essential").asBoolean()).isTrue();
    assertThat(egret.path("essential").asBoolean()).isTrue();
  }

  @Test
  void egretHealthCheckIsTheImagesEgretReady() {
    List<String> command = strings(egret.path("healthCheck").path("command"));
    assertThat(command.get(0)).isEqualTo("CMD");
    assertThat(command.subList(1, command.size())).isEqualTo(DockerfileFacts.read().healthcheck());
    JsonNode hc = egret.path("healthCheck");
    assertThat(hc.path("interval").asInt()).isBetween(5, 300);
    assertThat(hc.path("timeout").asInt()).isBetween(2, hc.path("interval").asInt());
    assertThat(hc.path("retries").asInt()).isBetween(1, 10);
    assertThat(hc.path("startPeriod").asInt()).isBetween(0, 300);
  }

  @Test
  void appSendsTrafficThroughEgretButNotPlatformEndpoints() {
    for (String name : List.of("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")) {
      assertThat(env(app, name)).as(name).isEqualTo(PROXY);
    }
    for (String name : List.of("NO_PROXY", "no_proxy")) {
      assertThat(Arrays.asList(env(app, name).split(",")))
          .as(name)
          .contains("169.254.170.2", "169.254.169.254", "localhost", "127.0.0.1");
    }
  }

  @Test
  void proxyStaysOnLoopbackAndAdminIsReachableForPrometheus() {
    JsonNode config = DeployFiles.yaml(DeployFiles.file("deploy/ecs/egret.yaml"));
    assertThat(config.path("listen").path("proxy").asText()).isEqualTo("127.0.0.1:3128");
    assertThat(config.path("listen").path("admin").asText()).isEqualTo("0.0.0.0:9901");
    assertThat(config.path("allow").size()).isPositive();
    Set<Integer> mapped = new HashSet<>();
    egret.path("portMappings").forEach(p -> mapped.add(p.path("containerPort").asInt()));
    assertThat(mapped).contains(9901).doesNotContain(3128);
    assertThat(app.path("portMappings").size()).isZero();
  }

  @Test
  void allowlistReachesEgretThroughTheConfigWriter() {
    assertThat(configWriter.path("essential").asBoolean(true)).isFalse();
    assertThat(named(egret.path("dependsOn"), "containerName", "egret-config").path("condition").asText())
        .isEqualTo("SUCCESS");
    JsonNode secret = named(configWriter.path("secrets"), "name", "EGRET_CONFIG_YAML");
    assertThat(secret.path("valueFrom").asText()).startsWith("arn:aws:ssm:");
    String script = String.join(" ", strings(configWriter.path("command")));
    assertThat(script).contains("$EGRET_CONFIG_YAML", "> " + env(egret, "EGRET_CONFIG"),
        "exec /app/egret check " + env(egret, "EGRET_CONFIG"));

    JsonNode egretMount = named(egret.path("mountPoints"), "containerPath", "/etc/egret");
    JsonNode writerMount = named(configWriter.path("mountPoints"), "containerPath", "/etc/egret");
    assertThat(egretMount.path("readOnly").asBoolean()).isTrue();
    assertThat(writerMount.path("readOnly").asBoolean(true)).isFalse();
    assertThat(egretMount.path("sourceVolume").asText()).isEqualTo(writerMount.path("sourceVolume").asText());
    assertThat(env(egret, "EGRET_CONFIG")).isEqualTo(DockerfileFacts.read().env("EGRET_CONFIG"));
  }

  @Test
  void containersAreHardened() {
    for (JsonNode c : containers) {
      String name = c.path("name").asText();
      assertThat(c.path("readonlyRootFilesystem").asBoolean()).as("%s readonlyRootFilesystem", name).isTrue();
      assertThat(c.path("user").asText()).as("%s user", name).matches("[1-9]\\d*(:\\d+)?");
      assertThat(strings(c.path("linuxParameters").path("capabilities").path("drop")))
          .as("%s drops capabilities", name)
          .contains("ALL");
      assertThat(c.path("privileged").asBoolean(false)).isFalse();
    }
    assertThat(named(egret.path("mountPoints"), "containerPath", "/tmp").isMissingNode())
        .as("egret has a writable /tmp")
        .isFalse();
  }

  @Test
  void containersFitTheTaskSize() {
    int cpu = 0;
    int memory = 0;
    for (JsonNode c : containers) {
      cpu += c.path("cpu").asInt();
      memory += c.path("memory").asInt(c.path("memoryReservation").asInt());
    }
    assertThat(cpu).isLessThanOrEqualTo(Integer.parseInt(task.path("cpu").asText()));
    assertThat(memory).isLessThanOrEqualTo(Integer.parseInt(task.path("memory").asText()));
    // Heap is 40% of the limit, direct buffers up to 128 MiB (the health check is the static probe).
    assertThat(egret.path("memory").asInt()).isGreaterThanOrEqualTo(384);
  }

  @Test
  void everyContainerLogsToCloudWatch() {
    for (JsonNode c : containers) {
      JsonNode log = c.path("logConfiguration");
      assertThat(log.path("logDriver").asText()).as(c.path("name").asText()).isEqualTo("awslogs");
      assertThat(log.path("options").path("awslogs-group").asText()).isNotBlank();
      assertThat(log.path("options").path("awslogs-region").asText()).isNotBlank();
      assertThat(log.path("options").path("awslogs-stream-prefix").asText()).isNotBlank();
    }
  }

  @Test
  void referencesOnlyDeclaredVolumesAndContainers() {
    Set<String> volumes = new HashSet<>();
    task.path("volumes").forEach(v -> volumes.add(v.path("name").asText()));
    Set<String> names = new HashSet<>();
    containers.forEach(c -> names.add(c.path("name").asText()));
    for (JsonNode c : containers) {
      c.path("mountPoints").forEach(m -> assertThat(volumes).contains(m.path("sourceVolume").asText()));
      c.path("dependsOn").forEach(d -> assertThat(names).contains(d.path("containerName").asText()));
    }
  }

  private static String env(JsonNode container, String name) {
    return named(container.path("environment"), "name", name).path("value").asText(null);
  }
}
