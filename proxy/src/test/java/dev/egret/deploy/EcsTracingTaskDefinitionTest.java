package dev.egret.deploy;

import static dev.egret.deploy.DeployFiles.named;
import static dev.egret.deploy.DeployFiles.strings;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.EgretConfig;
import java.net.URI;
import java.util.Iterator;
import org.junit.jupiter.api.Test;

/**
 * Tracing on ECS: deploy/ecs/task-definition-tracing.json is task-definition.json (which
 * EcsTaskDefinitionTest holds to its rules) plus an ADOT collector that exports to X-Ray, and
 * deploy/ecs/egret-tracing.yaml is egret.yaml plus the tracing section that points Egret at it.
 * CloudFormation gives the same with Tracing=enabled (.ci/check-aws.mjs compares them).
 */
class EcsTracingTaskDefinitionTest {
  private static final String COLLECTOR = "otel-collector";

  private final JsonNode base = DeployFiles.json(DeployFiles.file("deploy/ecs/task-definition.json"));
  private final JsonNode task = DeployFiles.json(DeployFiles.file("deploy/ecs/task-definition-tracing.json"));
  private final JsonNode collector = named(task.path("containerDefinitions"), "name", COLLECTOR);
  private final JsonNode egret = named(task.path("containerDefinitions"), "name", "egret");

  @Test
  void isTheTaskDefinitionPlusTheCollectorAndNothingElse() {
    assertThat(collector.isMissingNode()).as("container otel-collector").isFalse();
    ObjectNode without = task.deepCopy();
    ArrayNode containers = (ArrayNode) without.path("containerDefinitions");
    for (Iterator<JsonNode> it = containers.elements(); it.hasNext(); ) {
      if (it.next().path("name").asText().equals(COLLECTOR)) {
        it.remove();
      }
    }
    ArrayNode dependsOn = (ArrayNode) named(containers, "name", "egret").path("dependsOn");
    for (Iterator<JsonNode> it = dependsOn.elements(); it.hasNext(); ) {
      if (it.next().path("containerName").asText().equals(COLLECTOR)) {
        it.remove();
      }
    }
    assertThat(without).isEqualTo(base);
  }

  @Test
  void egretStartsAfterTheCollectorSoItStopsBeforeIt() {
    // ECS stops a container's dependents first: Egret flushes its spans on SIGTERM while the
    // collector still runs. START, not HEALTHY: neither Egret nor the app waits for tracing.
    assertThat(named(egret.path("dependsOn"), "containerName", COLLECTOR).path("condition").asText()).isEqualTo("START");
    assertThat(collector.path("essential").asBoolean(true)).as("a failed collector stops no task").isFalse();
    assertThat(collector.path("dependsOn").isMissingNode()).isTrue();
  }

  @Test
  void theCollectorIsPinnedHardenedAndLogged() {
    assertThat(collector.path("image").asText())
        .startsWith("public.ecr.aws/aws-observability/aws-otel-collector:v")
        .doesNotEndWith(":latest");
    assertThat(collector.path("readonlyRootFilesystem").asBoolean()).isTrue();
    assertThat(collector.path("user").asText()).matches("[1-9]\\d*(:\\d+)?");
    assertThat(strings(collector.path("linuxParameters").path("capabilities").path("drop"))).contains("ALL");
    assertThat(collector.path("privileged").asBoolean(false)).isFalse();
    assertThat(collector.path("portMappings").isMissingNode()).as("nothing outside the task reaches it").isTrue();
    assertThat(strings(collector.path("healthCheck").path("command"))).containsExactly("CMD", "/healthcheck");
    JsonNode log = collector.path("logConfiguration");
    assertThat(log.path("logDriver").asText()).isEqualTo("awslogs");
    assertThat(log.path("options").path("awslogs-stream-prefix").asText()).isEqualTo(COLLECTOR);
    assertThat(collector.path("memory").asInt()).isPositive();
    int cpu = 0;
    int memory = 0;
    for (JsonNode c : task.path("containerDefinitions")) {
      cpu += c.path("cpu").asInt();
      memory += c.path("memory").asInt(c.path("memoryReservation").asInt());
    }
    assertThat(cpu).isLessThanOrEqualTo(Integer.parseInt(task.path("cpu").asText()));
    assertThat(memory).isLessThanOrEqualTo(Integer.parseInt(task.path("memory").asText()));
  }

  @Test
  void theCollectorReceivesWhereEgretExportsAndExportsToXRay() throws Exception {
    EgretConfig.Tracing tracing = ConfigCompiler.load(DeployFiles.file("deploy/ecs/egret-tracing.yaml")).tracing();
    assertThat(tracing.on()).isTrue();
    assertThat(tracing.xray()).as("Step Functions and Lambda pass X-Amzn-Trace-Id").isTrue();
    URI endpoint = tracing.endpoint();
    JsonNode config = DeployFiles.yaml(named(collector.path("environment"), "name", "AOT_CONFIG_CONTENT").path("value").asText());
    assertThat(config.path("receivers").path("otlp").path("protocols").path("http").path("endpoint").asText())
        .isEqualTo(endpoint.getHost() + ":" + endpoint.getPort());
    assertThat(endpoint.getHost()).as("the task's loopback (awsvpc)").isEqualTo("127.0.0.1");
    assertThat(config.path("exporters").path("awsxray").path("region").asText())
        .isEqualTo(egret.path("logConfiguration").path("options").path("awslogs-region").asText());
    assertThat(strings(config.path("service").path("pipelines").path("traces").path("exporters"))).containsExactly("awsxray");
  }

  @Test
  void theTracingConfigIsTheAllowlistPlusTheTracingSection() {
    ObjectNode tracing = DeployFiles.yaml(DeployFiles.file("deploy/ecs/egret-tracing.yaml")).deepCopy();
    assertThat(tracing.remove("tracing")).isNotNull();
    assertThat(tracing).isEqualTo(DeployFiles.yaml(DeployFiles.file("deploy/ecs/egret.yaml")));
    assertThat(DeployFiles.yaml(DeployFiles.file("deploy/ecs/egret.yaml")).has("tracing"))
        .as("tracing stays off in the default config").isFalse();
  }

  @Test
  void theTaskRoleMayWriteTracesAndNothingMore() {
    JsonNode policy = DeployFiles.json(DeployFiles.file("deploy/ecs/iam/task-role-xray-policy.json"));
    assertThat(policy.path("Statement")).hasSize(1);
    JsonNode statement = policy.path("Statement").get(0);
    assertThat(statement.path("Effect").asText()).isEqualTo("Allow");
    assertThat(strings(statement.path("Action"))).containsExactlyInAnyOrder("xray:PutTraceSegments", "xray:PutTelemetryRecords");
  }
}
