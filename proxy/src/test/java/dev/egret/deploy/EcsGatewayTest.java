package dev.egret.deploy;

import static dev.egret.deploy.DeployFiles.named;
import static dev.egret.deploy.DeployFiles.strings;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The Egret gateway on ECS (deploy/ecs/gateway): what the templates promise beyond their shape,
 * which .ci/check-aws.mjs checks against the CloudFormation specification. The NLB sends PROXY v2
 * and health-checks /readyz on the admin port; a stopping task drains for the config's
 * shutdown.deadline + grace, and ECS waits out the deadline after SIGTERM; the security groups
 * leave the clients no way out but the gateway and the VPC endpoints; token hashes come from SSM
 * and proxy URLs from Secrets Manager, never from the templates; and the workflow's steps reach
 * third parties only through the gateway.
 */
class EcsGatewayTest {
  private static final Path DIR = DeployFiles.file("deploy/ecs/gateway");
  private final JsonNode gateway = DeployFiles.yaml(DIR.resolve("gateway.yaml")).path("Resources");
  private final JsonNode clients = DeployFiles.yaml(DIR.resolve("clients.yaml")).path("Resources");
  private final JsonNode config = DeployFiles.yaml(DIR.resolve("egret.yaml"));

  private static int seconds(String duration) {
    Matcher m = Pattern.compile("(\\d+)(ms|s|m)").matcher(duration);
    assertThat(m.matches()).as(duration).isTrue();
    int n = Integer.parseInt(m.group(1));
    return switch (m.group(2)) {
      case "ms" -> (n + 999) / 1000;
      case "s" -> n;
      default -> n * 60;
    };
  }

  private JsonNode targetGroupAttribute(String key) {
    return named(gateway.path("TargetGroup").path("Properties").path("TargetGroupAttributes"), "Key", key).path("Value");
  }

  private JsonNode container(JsonNode resources, String taskDefinition, String name) {
    return named(resources.path(taskDefinition).path("Properties").path("ContainerDefinitions"), "Name", name);
  }

  @Test
  void theLoadBalancerSendsProxyProtocolAndChecksReadyzOnTheAdminPort() {
    JsonNode tg = gateway.path("TargetGroup").path("Properties");
    assertThat(targetGroupAttribute("proxy_protocol_v2.enabled").asText()).isEqualTo("true");
    assertThat(tg.path("Protocol").asText()).isEqualTo("TCP");
    assertThat(tg.path("Port").asInt()).isEqualTo(3128);
    assertThat(tg.path("TargetType").asText()).isEqualTo("ip");
    assertThat(tg.path("HealthCheckProtocol").asText()).isEqualTo("HTTP");
    assertThat(tg.path("HealthCheckPort").asText()).isEqualTo("9901");
    assertThat(tg.path("HealthCheckPath").asText()).isEqualTo("/readyz");
    JsonNode lb = gateway.path("LoadBalancer").path("Properties");
    assertThat(lb.path("Type").asText()).isEqualTo("network");
    assertThat(lb.path("Scheme").asText()).isEqualTo("internal");
    // The listeners Egret has: the proxy port behind the NLB, the admin port it checks.
    assertThat(config.path("listen").path("proxy").asText()).isEqualTo("0.0.0.0:3128");
    assertThat(config.path("listen").path("admin").asText()).isEqualTo("0.0.0.0:9901");
    assertThat(gateway.path("Service").path("Properties").path("LoadBalancers").get(0).path("ContainerPort").asInt())
        .isEqualTo(3128);
  }

  /** Only the NLB sends PROXY headers: Egret trusts the VPC's CIDR, which the template fills in. */
  @Test
  void trustsProxyHeadersFromTheVpcOnly() {
    assertThat(strings(config.path("listen").path("proxyProtocol").path("trustedPeers"))).containsExactly("10.0.0.0/16");
    String stored = gateway.path("ConfigParameter").path("Properties").path("Value").path("Fn::Sub").asText();
    assertThat(stored).contains("trustedPeers: [${VpcCidr}]");
  }

  /**
   * ECS deregisters a stopping task, waits the target group's deregistration delay (no new
   * connections; open ones keep going), then sends SIGTERM; Egret ends what is left at
   * shutdown.deadline, and ECS kills it at stopTimeout.
   */
  @Test
  void drainsForTheDeadlinePlusGraceAndOutlastsTheDeadlineAfterSigterm() {
    int grace = seconds(config.path("shutdown").path("grace").asText());
    int deadline = seconds(config.path("shutdown").path("deadline").asText());
    assertThat(targetGroupAttribute("deregistration_delay.timeout_seconds").asInt()).isEqualTo(deadline + grace);
    JsonNode egret = container(gateway, "TaskDefinition", "egret");
    assertThat(egret.path("StopTimeout").asInt()).isEqualTo(deadline + 5).isLessThanOrEqualTo(120);
  }

  @Test
  void runsTheGatewayProfileAndIsHealthyOnlyWhenReady() {
    JsonNode egret = container(gateway, "TaskDefinition", "egret");
    assertThat(named(egret.path("Environment"), "Name", "EGRET_JVM_PROFILE").path("Value").asText()).isEqualTo("gateway");
    // The gateway profile is sized for 512 MiB and refuses less.
    assertThat(egret.path("Memory").asInt()).isGreaterThanOrEqualTo(512);
    assertThat(strings(egret.path("HealthCheck").path("Command"))).containsExactly("CMD", "/usr/local/bin/egret-probe",
        "127.0.0.1:9901", "/readyz");
    assertThat(strings(egret.path("Command"))).containsExactly("run");
    assertThat(gateway.path("Service").path("Properties").path("LaunchType").asText()).isEqualTo("FARGATE");
    assertThat(gateway.path("Service").path("Properties").path("NetworkConfiguration").path("AwsvpcConfiguration")
        .path("AssignPublicIp").asText()).isEqualTo("DISABLED");
  }

  @Test
  void scalesOnCpuWithTargetTracking() {
    JsonNode target = gateway.path("ScalableTarget").path("Properties");
    assertThat(target.path("ServiceNamespace").asText()).isEqualTo("ecs");
    assertThat(target.path("ScalableDimension").asText()).isEqualTo("ecs:service:DesiredCount");
    assertThat(target.path("ResourceId").path("Fn::Sub").asText()).isEqualTo("service/${Cluster}/${Service.Name}");
    JsonNode policy = gateway.path("CpuScalingPolicy").path("Properties");
    assertThat(policy.path("PolicyType").asText()).isEqualTo("TargetTrackingScaling");
    assertThat(policy.path("ScalingTargetId").path("Ref").asText()).isEqualTo("ScalableTarget");
    assertThat(policy.path("TargetTrackingScalingPolicyConfiguration").path("PredefinedMetricSpecification")
        .path("PredefinedMetricType").asText()).isEqualTo("ECSServiceAverageCPUUtilization");
  }

  /** A rule: ingress or egress, the group it belongs to, the port, and the peer group or CIDR. */
  private record Rule(String direction, String group, int port, String peer) {}

  private List<Rule> rules() {
    List<Rule> out = new ArrayList<>();
    gateway.properties().forEach(e -> {
      JsonNode r = e.getValue();
      String type = r.path("Type").asText();
      JsonNode p = r.path("Properties");
      if (type.equals("AWS::EC2::SecurityGroup")) {
        for (String dir : List.of("SecurityGroupIngress", "SecurityGroupEgress")) {
          for (JsonNode rule : p.path(dir)) {
            out.add(new Rule(dir.endsWith("Ingress") ? "in" : "out", e.getKey(), rule.path("FromPort").asInt(-1),
                rule.path("CidrIp").asText(rule.path("SourceSecurityGroupId").path("Ref").asText())));
          }
        }
      } else if (type.equals("AWS::EC2::SecurityGroupIngress") || type.equals("AWS::EC2::SecurityGroupEgress")) {
        assertThat(p.path("FromPort").asInt()).as(e.getKey()).isEqualTo(p.path("ToPort").asInt());
        assertThat(p.path("IpProtocol").asText()).as(e.getKey()).isEqualTo("tcp");
        String peer = type.endsWith("Ingress") ? p.path("SourceSecurityGroupId").path("Ref").asText()
            : p.path("DestinationSecurityGroupId").path("Ref").asText(p.path("DestinationPrefixListId").path("Ref").asText());
        out.add(new Rule(type.endsWith("Ingress") ? "in" : "out", p.path("GroupId").path("Ref").asText(),
            p.path("FromPort").asInt(), peer));
      }
    });
    return out;
  }

  private List<Rule> rulesOf(String group, String direction) {
    return rules().stream().filter(r -> r.group().equals(group) && r.direction().equals(direction)).toList();
  }

  @Test
  void securityGroupsLeaveTheClientsNoWayOutButTheGatewayAndTheEndpoints() {
    // The clients: out to the NLB's proxy port and the endpoints' 443; the loopback rule only
    // removes CloudFormation's default allow-all egress.
    assertThat(rulesOf("ClientSecurityGroup", "out")).containsExactlyInAnyOrder(
        new Rule("out", "ClientSecurityGroup", -1, "127.0.0.1/32"),
        new Rule("out", "ClientSecurityGroup", 3128, "LoadBalancerSecurityGroup"),
        new Rule("out", "ClientSecurityGroup", 443, "EndpointSecurityGroup"),
        new Rule("out", "ClientSecurityGroup", 443, "S3PrefixListId"));
    assertThat(rulesOf("ClientSecurityGroup", "in")).isEmpty();
    // The NLB: the proxy port from the clients only.
    assertThat(rulesOf("LoadBalancerSecurityGroup", "in")).containsExactly(
        new Rule("in", "LoadBalancerSecurityGroup", 3128, "ClientSecurityGroup"));
    // The gateway: the proxy port from the NLB only; the admin port from the NLB (health checks)
    // and Prometheus.
    assertThat(rulesOf("GatewaySecurityGroup", "in")).containsExactlyInAnyOrder(
        new Rule("in", "GatewaySecurityGroup", 3128, "LoadBalancerSecurityGroup"),
        new Rule("in", "GatewaySecurityGroup", 9901, "LoadBalancerSecurityGroup"),
        new Rule("in", "GatewaySecurityGroup", 9901, "PrometheusSecurityGroup"));
    assertThat(rulesOf("GatewaySecurityGroup", "out")).containsExactly(
        new Rule("out", "GatewaySecurityGroup", 443, "0.0.0.0/0"));
    // The NLB is in the groups the rules name, and the service's tasks in the gateway's.
    assertThat(gateway.path("LoadBalancer").path("Properties").path("SecurityGroups").get(0).path("Ref").asText())
        .isEqualTo("LoadBalancerSecurityGroup");
    assertThat(gateway.path("Service").path("Properties").path("NetworkConfiguration").path("AwsvpcConfiguration")
        .path("SecurityGroups").get(0).path("Ref").asText()).isEqualTo("GatewaySecurityGroup");
  }

  @Test
  void everyClientNamesItselfWithATokenHashTheTaskWritesFromSsm() {
    JsonNode writer = container(gateway, "TaskDefinition", "egret-config");
    String command = strings(writer.path("Command")).get(0);
    Set<String> clientsWithTokens = new HashSet<>();
    for (JsonNode client : config.path("clients")) {
      String name = client.path("name").asText();
      assertThat(name).matches("[a-z0-9-]{1,63}");
      assertThat(client.path("allow")).as("%s's own rules", name).isNotEmpty();
      for (String token : strings(client.path("match").path("tokens"))) {
        // A file reference, never a hash in the file.
        assertThat(token).isEqualTo("${file:tokens/" + name + ".sha256}");
        String variable = "TOKEN_" + name.toUpperCase().replace('-', '_');
        assertThat(command).contains("printf '%s\\n' \"$" + variable + "\" > /etc/egret/tokens/" + name + ".sha256");
        JsonNode secret = named(writer.path("Secrets"), "Name", variable);
        assertThat(secret.path("ValueFrom").path("Fn::Sub").asText())
            .isEqualTo("arn:aws:ssm:${AWS::Region}:${AWS::AccountId}:parameter/egret/gateway/tokens/" + name);
        clientsWithTokens.add(name);
      }
    }
    assertThat(clientsWithTokens).containsExactlyInAnyOrder("crm-sync", "orders-notify");
    assertThat(command).startsWith("umask 077").endsWith("exec /app/egret check /etc/egret/egret.yaml");
    assertThat(config.path("allow")).as("no destination for every client").isEmpty();
    assertThat(config.path("identity").path("onMissing").asText()).isEqualTo("deny");
  }

  @Test
  void noTokenOrTokenHashIsWrittenInAnyGatewayFile() throws IOException {
    try (Stream<Path> files = Files.list(DIR)) {
      for (Path f : files.toList()) {
        assertThat(Files.readString(f)).as(f.toString()).doesNotContainPattern("sha256:[0-9a-f]{16}");
      }
    }
    assertThat(Files.readString(DeployFiles.file("deploy/stepfunctions/gateway-clients.asl.json")))
        .doesNotContainPattern("http://[a-z0-9-]+:[0-9a-fA-F]{16,}@");
  }

  @Test
  void theClientTaskGetsItsProxyUrlFromSecretsManagerAndReachesAwsDirectly() {
    JsonNode app = container(clients, "TaskDefinition", "app");
    for (String name : List.of("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")) {
      assertThat(named(app.path("Environment"), "Name", name).isMissingNode()).as("%s not in plain environment", name).isTrue();
      assertThat(named(app.path("Secrets"), "Name", name).path("ValueFrom").path("Fn::Sub").asText()).as(name)
          .isEqualTo("arn:aws:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:egret/clients/crm-sync:proxyUrl::");
    }
    for (String name : List.of("NO_PROXY", "no_proxy")) {
      String noProxy = named(app.path("Environment"), "Name", name).path("Value").path("Fn::Sub").asText();
      assertThat(List.of(noProxy.split(","))).as(name).contains("169.254.170.2", "169.254.169.254", "localhost",
          "127.0.0.1", "secretsmanager.${AWS::Region}.amazonaws.com");
    }
    String secretsPolicy = clients.path("ExecutionRole").path("Properties").path("Policies").toString();
    assertThat(secretsPolicy).contains("secretsmanager:GetSecretValue").contains("secret:egret/clients/crm-sync-??????");
  }

  @Test
  void theFunctionRunsInTheClientSecurityGroupAndSetsItsProxyFromTheSecret() {
    JsonNode fn = clients.path("NotifyFunction").path("Properties");
    JsonNode group = fn.path("VpcConfig").path("SecurityGroupIds").get(0).path("Fn::If");
    assertThat(group.get(1).path("Ref").asText()).isEqualTo("ClientSecurityGroup");
    assertThat(group.get(2).path("Fn::ImportValue").asText()).isEqualTo("egret-gateway-client-security-group");
    String code = fn.path("Code").path("ZipFile").asText();
    assertThat(code).contains("get_secret_value(SecretId=os.environ[\"EGRET_PROXY_SECRET\"])")
        .contains("os.environ[name] = url")
        .contains("AWS_LAMBDA_RUNTIME_API")
        .doesNotContain("print(");
    assertThat(fn.path("Environment").path("Variables").path("NO_PROXY").path("Fn::Sub").asText())
        .contains("secretsmanager.${AWS::Region}.amazonaws.com");
    assertThat(fn.path("Environment").path("Variables").has("HTTPS_PROXY")).as("never the URL in plain config").isFalse();
  }

  /**
   * The workflow's steps: the task in the client security group with no public address, the
   * function by ARN; no HTTP Task (arn:aws:states:::http:invoke), which calls out from AWS's side,
   * beyond any proxy, in any of the repository's state machines.
   */
  @Test
  void theStateMachineRunsBothClientsAndNoStepCallsOutBeyondTheGateway() throws IOException {
    JsonNode asl = DeployFiles.json(DeployFiles.file("deploy/stepfunctions/gateway-clients.asl.json"));
    JsonNode run = asl.path("States").path("SyncAccountToCrm");
    assertThat(run.path("Resource").asText()).isEqualTo("arn:aws:states:::ecs:runTask.sync");
    JsonNode net = run.path("Parameters").path("NetworkConfiguration").path("AwsvpcConfiguration");
    assertThat(strings(net.path("SecurityGroups"))).containsExactly("${ClientSecurityGroup}");
    assertThat(net.path("AssignPublicIp").asText()).isEqualTo("DISABLED");
    assertThat(run.path("Next").asText()).isEqualTo("NotifyOrders");
    JsonNode notify = asl.path("States").path("NotifyOrders");
    assertThat(notify.path("Resource").asText()).isEqualTo("arn:aws:states:::lambda:invoke");
    assertThat(notify.path("Parameters").path("FunctionName").asText()).isEqualTo("${NotifyFunctionArn}");
    Map<String, JsonNode> subs = new java.util.TreeMap<>();
    clients.path("StateMachine").path("Properties").path("DefinitionSubstitutions").properties()
        .forEach(e -> subs.put(e.getKey(), e.getValue()));
    assertThat(subs.get("NotifyFunctionArn").path("Fn::GetAtt").get(0).asText()).isEqualTo("NotifyFunction");
    assertThat(subs.get("ClientSecurityGroup").path("Fn::If").get(1).path("Ref").asText()).isEqualTo("ClientSecurityGroup");

    try (Stream<Path> machines = Files.list(DeployFiles.file("deploy/stepfunctions"))) {
      for (Path m : machines.filter(p -> p.toString().endsWith(".asl.json")).toList()) {
        assertThat(Files.readString(m)).as(m.toString()).doesNotContain("arn:aws:states:::http:invoke");
      }
    }
  }
}
