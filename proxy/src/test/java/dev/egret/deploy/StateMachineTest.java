package dev.egret.deploy;

import static dev.egret.deploy.DeployFiles.named;
import static dev.egret.deploy.DeployFiles.strings;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * deploy/stepfunctions/crm-sync.asl.json: a workflow step that runs the crm-sync ECS task
 * (app + Egret) synchronously, retries with backoff and catches what is left.
 */
class StateMachineTest {
  private static final String RUN_TASK_SYNC = "arn:aws:states:::ecs:runTask.sync";

  private final JsonNode machine = DeployFiles.json(DeployFiles.file("deploy/stepfunctions/crm-sync.asl.json"));
  private final JsonNode states = machine.path("States");
  private final JsonNode task = DeployFiles.json(DeployFiles.file("deploy/ecs/task-definition.json"));

  @Test
  void everyTransitionNamesAState() {
    assertThat(states.has(machine.path("StartAt").asText())).as("StartAt").isTrue();
    states.fields().forEachRemaining(e -> {
      for (String next : successors(e.getValue())) {
        assertThat(states.has(next)).as("%s -> %s", e.getKey(), next).isTrue();
      }
      String type = e.getValue().path("Type").asText();
      if (!List.of("Succeed", "Fail", "Choice").contains(type)) {
        assertThat(e.getValue().has("Next") ^ e.getValue().path("End").asBoolean())
            .as("%s has exactly one of Next and End", e.getKey())
            .isTrue();
      }
    });
  }

  @Test
  void everyStateIsReachable() {
    Set<String> seen = new HashSet<>();
    Deque<String> todo = new ArrayDeque<>(List.of(machine.path("StartAt").asText()));
    while (!todo.isEmpty()) {
      String s = todo.pop();
      if (seen.add(s)) {
        todo.addAll(successors(states.path(s)));
      }
    }
    List<String> all = new ArrayList<>();
    states.fieldNames().forEachRemaining(all::add);
    assertThat(seen).containsExactlyInAnyOrderElementsOf(all);
  }

  @Test
  void runsTheEgretTaskAndWaitsForIt() {
    JsonNode run = runTaskState();
    JsonNode params = run.path("Parameters");
    assertThat(params.path("LaunchType").asText()).isEqualTo("FARGATE");
    assertThat(params.path("Cluster").asText()).startsWith("arn:aws:ecs:");
    assertThat(params.path("TaskDefinition").asText()).isEqualTo(task.path("family").asText());
    JsonNode vpc = params.path("NetworkConfiguration").path("AwsvpcConfiguration");
    assertThat(vpc.path("Subnets").size()).isPositive();
    assertThat(vpc.path("SecurityGroups").size()).isPositive();
    for (JsonNode override : params.path("Overrides").path("ContainerOverrides")) {
      String name = override.path("Name").asText();
      assertThat(named(task.path("containerDefinitions"), "name", name).isMissingNode())
          .as("override of container %s, which the task definition declares", name)
          .isFalse();
    }
    assertThat(run.path("TimeoutSeconds").asInt()).isPositive();
  }

  @Test
  void retriesWithExponentialBackoff() {
    JsonNode retry = runTaskState().path("Retry");
    assertThat(retry.size()).isPositive();
    Set<String> retried = new HashSet<>();
    for (JsonNode r : retry) {
      retried.addAll(strings(r.path("ErrorEquals")));
      assertThat(r.path("IntervalSeconds").asInt()).isPositive();
      assertThat(r.path("MaxAttempts").asInt()).isBetween(1, 10);
      assertThat(r.path("BackoffRate").asDouble()).isGreaterThan(1.0);
    }
    assertThat(retried).contains("ECS.AmazonECSException");
    // A task that ran and failed is retried only when its Cause says it may succeed (below).
    assertThat(retried).as("errors retried blindly").doesNotContain("States.TaskFailed", "States.ALL");
  }

  /** The Cause text of States.TaskFailed: the stopped task, as the ECS integration reports it. */
  private static String stoppedTask(String stopCode, int appExit) {
    return "{\"Attachments\":[],\"ClusterArn\":\"arn:aws:ecs:eu-west-1:123456789012:cluster/workflows\","
        + "\"Containers\":[{\"ContainerArn\":\"arn:aws:ecs:eu-west-1:123456789012:container/workflows/1/2\","
        + "\"ExitCode\":" + appExit + ",\"LastStatus\":\"STOPPED\",\"Name\":\"app\"},"
        + "{\"ExitCode\":0,\"LastStatus\":\"STOPPED\",\"Name\":\"egret\"}],"
        + "\"LastStatus\":\"STOPPED\",\"StopCode\":\"" + stopCode + "\","
        + "\"StoppedReason\":\"Essential container in task exited\"}";
  }

  private String afterTaskFailure(int attempt, String cause) {
    JsonNode input = DeployFiles.JSON.createObjectNode()
        .put("accountId", "acct-1")
        .put("attempt", attempt)
        .put("backoffSeconds", 30)
        .set("error", DeployFiles.JSON.createObjectNode().put("Error", "States.TaskFailed").put("Cause", cause));
    String next = catcherFor("States.TaskFailed").path("Next").asText();
    // Follow Choice states until a state that does work.
    while (states.path(next).path("Type").asText().equals("Choice")) {
      next = Asl.choose(states.path(next), input);
    }
    return next;
  }

  @Test
  void anAllowlistDenialIsReportedAtOnceNotRetried() {
    // The app exits 1 because Egret answered 403: the same call would be refused again.
    assertThat(afterTaskFailure(1, stoppedTask("EssentialContainerExited", 1))).isEqualTo("ReportFailure");
  }

  @Test
  void aTaskFargateFailedToStartOrATransientAppFailureIsRetriedTwiceAtMost() {
    String retry = afterTaskFailure(1, stoppedTask("TaskFailedToStart", 0));
    assertThat(states.path(retry).path("Type").asText()).isEqualTo("Wait");
    assertThat(afterTaskFailure(2, stoppedTask("EssentialContainerExited", 75))).isEqualTo(retry);
    assertThat(afterTaskFailure(3, stoppedTask("EssentialContainerExited", 75))).isEqualTo("ReportFailure");
    assertThat(afterTaskFailure(1, stoppedTask("EssentialContainerExited", 7))).as("exit 7 is not 75").isEqualTo("ReportFailure");
    assertThat(afterTaskFailure(1, "not JSON at all")).isEqualTo("ReportFailure");
    // The retry loop counts: Wait -> a Pass that adds 1 to the attempt -> the task again.
    JsonNode count = states.path(states.path(retry).path("Next").asText());
    assertThat(count.path("Parameters").path("attempt.$").asText()).isEqualTo("States.MathAdd($.attempt, 1)");
    assertThat(count.path("Next").asText()).isEqualTo(runTaskName());
  }

  @Test
  void theFailureMessageCarriesTheCauseWithTheExitCodes() {
    JsonNode report = states.path("ReportFailure");
    String message = report.path("Parameters").path("Message.$").asText();
    assertThat(message).contains("$.error.Error", "$.error.Cause", "$.accountId");
    for (JsonNode c : runTaskState().path("Catch")) {
      assertThat(c.path("ResultPath").asText()).isEqualTo("$.error");
    }
  }

  private JsonNode catcherFor(String error) {
    for (JsonNode c : runTaskState().path("Catch")) {
      if (strings(c.path("ErrorEquals")).contains(error)) {
        return c;
      }
    }
    throw new AssertionError("no Catch for " + error);
  }

  private String runTaskName() {
    List<String> names = new ArrayList<>();
    states.fields().forEachRemaining(e -> {
      if (RUN_TASK_SYNC.equals(e.getValue().path("Resource").asText())) {
        names.add(e.getKey());
      }
    });
    return names.get(0);
  }

  @Test
  void catchesWhatRetriesLeaveAndEndsInAFailState() {
    JsonNode catchers = runTaskState().path("Catch");
    JsonNode last = catchers.get(catchers.size() - 1);
    assertThat(strings(last.path("ErrorEquals"))).containsExactly("States.ALL");
    assertThat(last.path("ResultPath").asText()).isNotBlank();
    Set<String> seen = new HashSet<>();
    Deque<String> todo = new ArrayDeque<>(List.of(last.path("Next").asText()));
    boolean reachesFail = false;
    while (!todo.isEmpty()) {
      String s = todo.pop();
      if (seen.add(s)) {
        reachesFail |= states.path(s).path("Type").asText().equals("Fail");
        todo.addAll(successors(states.path(s)));
      }
    }
    assertThat(reachesFail).as("the failure path ends in a Fail state").isTrue();
  }

  @Test
  void statesAllStandsAloneAndLast() {
    states.fields().forEachRemaining(e -> {
      for (String field : List.of("Retry", "Catch")) {
        JsonNode list = e.getValue().path(field);
        for (int i = 0; i < list.size(); i++) {
          List<String> errors = strings(list.get(i).path("ErrorEquals"));
          assertThat(errors).as("%s.%s[%d].ErrorEquals", e.getKey(), field, i).isNotEmpty();
          if (errors.contains("States.ALL")) {
            assertThat(errors).as("%s.%s[%d]", e.getKey(), field, i).containsExactly("States.ALL");
            assertThat(i).as("%s.%s: States.ALL must be last", e.getKey(), field).isEqualTo(list.size() - 1);
          }
        }
      }
    });
  }

  @Test
  void roleMayRunWatchAndStopTheTask() {
    JsonNode policy = DeployFiles.json(DeployFiles.file("deploy/stepfunctions/state-machine-policy.json"));
    Set<String> actions = new HashSet<>();
    policy.path("Statement").forEach(s -> actions.addAll(strings(s.path("Action"))));
    assertThat(actions)
        .contains("ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks", "iam:PassRole")
        .contains("events:PutTargets", "events:PutRule", "events:DescribeRule");
    states.fields().forEachRemaining(e -> {
      if (e.getValue().path("Resource").asText().equals("arn:aws:states:::sns:publish")) {
        assertThat(actions).contains("sns:Publish");
      }
      // RunTask with PropagateTags tags the new task, which needs ecs:TagResource.
      if (e.getValue().path("Parameters").has("PropagateTags")) {
        assertThat(actions).as("PropagateTags needs ecs:TagResource").contains("ecs:TagResource");
      }
    });
  }

  private JsonNode runTaskState() {
    List<JsonNode> found = new ArrayList<>();
    states.forEach(s -> {
      if (RUN_TASK_SYNC.equals(s.path("Resource").asText())) {
        found.add(s);
      }
    });
    assertThat(found).as("states with Resource %s", RUN_TASK_SYNC).hasSize(1);
    return found.get(0);
  }

  private static List<String> successors(JsonNode state) {
    List<String> next = new ArrayList<>();
    if (state.hasNonNull("Next")) {
      next.add(state.path("Next").asText());
    }
    if (state.hasNonNull("Default")) {
      next.add(state.path("Default").asText());
    }
    state.path("Catch").forEach(c -> next.add(c.path("Next").asText()));
    state.path("Choices").forEach(c -> next.add(c.path("Next").asText()));
    return next;
  }
}
