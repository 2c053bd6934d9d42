package dev.egret.policy;

import dev.egret.listener.RequestTargets;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.EgretConfig;
import dev.egret.exchange.RequestTarget;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The allowlist's precedence and pattern rules, as a table of named cases over a YAML fixture. */
class AllowlistTest {
  private static final Path FIXTURES = Path.of("src/test/resources/policy");

  static Stream<Arguments> cases() throws Exception {
    JsonNode table = new ObjectMapper(new YAMLFactory()).readTree(FIXTURES.resolve("cases.yaml").toFile());
    List<Arguments> out = new ArrayList<>();
    for (JsonNode c : table) {
      out.add(Arguments.of(c.get("name").asText(), c));
    }
    return out.stream();
  }

  private static Allowlist allowlist(String fixture) throws Exception {
    EgretConfig config = ConfigCompiler.load(FIXTURES.resolve(fixture));
    return config.allowlist();
  }

  private static Decision decide(Allowlist allowlist, String url, String method) {
    boolean tunnel = !url.contains("://");
    RequestTarget rt = RequestTargets.target(tunnel ? "CONNECT" : method, url);
    return allowlist.decide(rt.target());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void decidesAsTheTableSays(String name, JsonNode c) throws Exception {
    Decision d = decide(allowlist("allowlist.yaml"), c.get("url").asText(),
        c.has("method") ? c.get("method").asText() : "GET");
    assertThat(d.verdict()).as("verdict").isEqualTo(Verdict.valueOf(c.get("verdict").asText()));
    assertThat(d.reason()).as("reason").isEqualTo(Reason.valueOf(c.get("reason").asText()));
    String rule = c.get("rule").asText();
    assertThat(d.ruleName()).as("rule").isEqualTo(rule.equals("none") ? null : rule);
    if (c.has("port")) {
      assertThat(d.upstreamPort()).as("upstream port").isEqualTo(c.get("port").asInt());
    }
    assertThat(d.details()).as("details").isNotBlank();
  }

  @Test
  void deniedDecisionNamesTheClosestRuleAndWhatToChange() throws Exception {
    Decision d = decide(allowlist("allowlist.yaml"), "https://hooks.slack.com/services/T1", "GET");
    assertThat(d.details()).contains("method GET").contains("[POST]").contains("hooks.slack.com");
    assertThat(d.destination()).isEqualTo("denied");
  }

  @Test
  void reportModeLetsDenialsThroughButKeepsTheReason() throws Exception {
    Path dir = Files.createTempDirectory("egret-report");
    Path file = dir.resolve("egret.yaml");
    Files.writeString(file, "version: 1\nmode: report\nallow:\n  - host: api.stripe.com\n");
    Allowlist a = ConfigCompiler.load(file).allowlist();
    Decision denied = decide(a, "https://example.org/", "GET");
    assertThat(denied.verdict()).isEqualTo(Verdict.REPORT);
    assertThat(denied.reason()).isEqualTo(Reason.NO_MATCHING_RULE);
    assertThat(denied.verdict().letsThrough()).isTrue();
    assertThat(decide(a, "https://api.stripe.com/", "GET").verdict()).isEqualTo(Verdict.ALLOW);
  }

  @Test
  void destinationLabelIsTheRulePatternNeverTheRawHost() throws Exception {
    Decision d = decide(allowlist("allowlist.yaml"), "https://na1.salesforce.com/", "GET");
    assertThat(d.destination()).isEqualTo("**.salesforce.com");
    Decision denied = decide(allowlist("allowlist.yaml"), "https://secret-host.example.org/", "GET");
    assertThat(denied.destination()).isEqualTo("denied");
  }

  @Test
  void refusedTunnelToAHeaderRuleTeachesToCallHttp() throws Exception {
    Decision d = decide(allowlist("allowlist.yaml"), "crm.partner.example:443", null);
    assertThat(d.details()).contains("rule 'crm.partner.example'").contains("X-Api-Version, Cookie")
        .contains("call http://crm.partner.example/").contains("tunnel: allow")
        .doesNotContain("2024-01");
    assertThat(d.headers().isEmpty()).isTrue();
    Decision other = decide(allowlist("allowlist.yaml"), "crm.partner.example:8443", null);
    assertThat(other.reason()).isEqualTo(Reason.PORT_NOT_ALLOWED);
  }

  @Test
  void onlyAnAllowedDecisionCarriesTheRulesHeaders() throws Exception {
    Path dir = Files.createTempDirectory("egret-headers");
    Path file = dir.resolve("egret.yaml");
    Files.writeString(file, """
        version: 1
        mode: report
        allow:
          - host: crm.partner.example
            paths: ["/v1/**"]
            headers: {set: {X-Api-Key: literal-key}}
        """);
    Allowlist a = ConfigCompiler.load(file).allowlist();
    assertThat(decide(a, "http://crm.partner.example/v1/x", "GET").headers().names())
        .containsExactly("X-Api-Key");
    // Reported (would be denied): let through, but never with the credential.
    Decision reported = decide(a, "http://crm.partner.example/admin", "GET");
    assertThat(reported.verdict()).isEqualTo(Verdict.REPORT);
    assertThat(reported.headers().isEmpty()).isTrue();
    assertThat(decide(a, "crm.partner.example:443", null).verdict()).isEqualTo(Verdict.REPORT);
    assertThat(a.decideEnforced(RequestTargets.target("CONNECT", "crm.partner.example:443").target())
        .reason()).isEqualTo(Reason.TUNNEL_BYPASSES_HEADERS);
  }
}
