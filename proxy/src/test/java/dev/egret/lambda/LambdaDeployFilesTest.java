package dev.egret.lambda;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.egret.config.ConfigCompiler;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * deploy/lambda/template.yaml and deploy/stepfunctions/orders-lambda.asl.json: the function
 * carries the layer and Egret's two settings, the state machine invokes it with Retry and Catch.
 */
class LambdaDeployFilesTest {
  private static final Path ROOT = Path.of("").toAbsolutePath().getParent();
  private static final Path TEMPLATE = ROOT.resolve("deploy/lambda/template.yaml");
  private final JsonNode template = read(new ObjectMapper(new YAMLFactory()), TEMPLATE);
  private final JsonNode resources = template.path("Resources");
  private final JsonNode machine =
      read(new ObjectMapper(), ROOT.resolve("deploy/stepfunctions/orders-lambda.asl.json"));

  private static JsonNode read(ObjectMapper mapper, Path file) {
    try {
      return mapper.readTree(file.toFile());
    } catch (java.io.IOException e) {
      throw new AssertionError("cannot parse " + file, e);
    }
  }

  @Test
  void functionUsesTheLayerTheWrapperAndAConfigThatPassesCheck() throws Exception {
    JsonNode layer = resources.path("EgretLayer");
    assertThat(layer.path("Type").asText()).isEqualTo("AWS::Serverless::LayerVersion");
    Path zip = TEMPLATE.getParent().resolve(layer.path("Properties").path("ContentUri").asText()).normalize();
    assertThat(zip).isEqualTo(ROOT.resolve("proxy/target/egret-lambda-layer.zip"));
    assertThat(layer.path("Properties").path("CompatibleArchitectures").toString()).isEqualTo("[\"x86_64\"]");

    JsonNode function = resources.path("OrdersFunction").path("Properties");
    assertThat(function.path("Layers").get(0).path("Ref").asText()).isEqualTo("EgretLayer");
    assertThat(function.path("Architectures").toString()).isEqualTo("[\"x86_64\"]");
    JsonNode env = function.path("Environment").path("Variables");
    assertThat(env.path("AWS_LAMBDA_EXEC_WRAPPER").asText()).isEqualTo("/opt/egret-wrapper");
    Path code = TEMPLATE.getParent().resolve(function.path("CodeUri").asText());
    Path config = code.resolve(env.path("EGRET_CONFIG").asText());
    assertThat(ConfigCompiler.load(config).listen().proxy().port())
        .as("the port egret-wrapper points HTTP_PROXY at").isEqualTo(3128);
    assertThat(Extension.interval(env.path("EGRET_METRICS_INTERVAL").asText())).hasSeconds(60);
    String handler = function.path("Handler").asText();
    assertThat(code.resolve(handler.substring(0, handler.indexOf('.')) + ".py")).isRegularFile();
  }

  @Test
  void stateMachineInvokesTheTemplatesFunction() {
    JsonNode sm = resources.path("OrdersStateMachine").path("Properties");
    Path definition = TEMPLATE.getParent().resolve(sm.path("DefinitionUri").asText()).normalize();
    assertThat(definition).isEqualTo(ROOT.resolve("deploy/stepfunctions/orders-lambda.asl.json"));
    JsonNode task = machine.path("States").path(machine.path("StartAt").asText());
    assertThat(task.path("Resource").asText()).isEqualTo("arn:aws:states:::lambda:invoke");
    assertThat(task.path("Parameters").path("FunctionName").asText()).isEqualTo("${OrdersFunctionArn}");
    assertThat(sm.path("DefinitionSubstitutions").path("OrdersFunctionArn").path("Fn::GetAtt").toString())
        .isEqualTo("[\"OrdersFunction\",\"Arn\"]");
    assertThat(sm.path("Policies").get(0).path("LambdaInvokePolicy").path("FunctionName").path("Ref").asText())
        .isEqualTo("OrdersFunction");
  }

  @Test
  void retriesLambdasOwnErrorsAndTheTaskWithBackoffThenCatchesIntoAFailState() {
    JsonNode task = machine.path("States").path(machine.path("StartAt").asText());
    List<String> retried = new ArrayList<>();
    for (JsonNode retry : task.path("Retry")) {
      assertThat(retry.path("BackoffRate").asDouble()).isGreaterThan(1.0);
      assertThat(retry.path("MaxAttempts").asInt()).isBetween(1, 10);
      retry.path("ErrorEquals").forEach(e -> retried.add(e.asText()));
    }
    assertThat(retried).contains("Lambda.ServiceException", "Lambda.TooManyRequestsException",
        "Lambda.SdkClientException", "States.TaskFailed").doesNotContain("States.ALL");
    JsonNode catcher = task.path("Catch").get(0);
    assertThat(catcher.path("ErrorEquals").toString()).isEqualTo("[\"States.ALL\"]");
    assertThat(catcher.path("ResultPath").asText()).isEqualTo("$.error");
    assertThat(machine.path("States").path(catcher.path("Next").asText()).path("Type").asText()).isEqualTo("Fail");
    assertThat(machine.path("States").path(task.path("Next").asText()).path("Type").asText()).isEqualTo("Succeed");
  }

  @Test
  void layerSourcesAreExecutableScripts() throws Exception {
    for (String script : List.of("extensions/egret", "egret-wrapper")) {
      Path file = ROOT.resolve("proxy/src/main/lambda").resolve(script);
      assertThat(Files.readString(file)).startsWith("#!/bin/sh\n");
      assertThat(Files.isExecutable(file)).as(script).isTrue();
    }
  }
}
