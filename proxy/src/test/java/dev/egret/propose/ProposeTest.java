package dev.egret.propose;

import dev.egret.listener.RequestTargets;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.egret.config.ConfigCompiler;
import dev.egret.config.EgretConfig;
import dev.egret.policy.Verdict;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code egret propose} on hand-written logs: hostile and foreign lines, the public suffix
 * boundary of {@code --group}, the inputs it reads and the arguments it refuses.
 */
class ProposeTest {
  @TempDir Path dir;

  record Result(int code, String out, String err) {}

  private Result propose(String stdin, String... args) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Propose.run(new ArrayDeque<>(List.of(args)),
        new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)),
        new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  private static String line(String method, String url, String kind) {
    return "{\"time\":\"2026-12-02T01:00:00Z\",\"method\":\"" + method + "\",\"url\":\"" + url
        + "\",\"kind\":\"" + kind + "\",\"outcome\":\"reported\",\"error\":\"none\"}\n";
  }

  private EgretConfig compiled(String yaml) throws Exception {
    Path f = Files.writeString(dir.resolve("p.yaml"), yaml);
    return ConfigCompiler.load(f);
  }

  @Test
  void aLineBreakInALoggedPathCannotAddARule() throws Exception {
    // A tampered log: the path's JSON escape decodes to a line break and a YAML key. (The
    // request-target parser already refuses spaces, so "  - host: evil" is dropped whole.)
    String hostile = line("GET", "http://api.partner.example/x\\nversion:2", "upgrade")
        + line("GET", "http://api.partner.example/x\\n  - host: evil.example\\n#", "upgrade");
    Result r = propose(hostile);
    assertThat(r.code()).isZero();
    EgretConfig c = compiled(r.out());
    assertThat(c.allowlist().rules()).extracting(rule -> rule.host().pattern())
        .containsExactly("api.partner.example");
    assertThat(r.out()).doesNotContain("\n  - host: evil.example").doesNotContain("\nversion:2")
        .contains("paths /x?version:2 1");
  }

  @Test
  void foreignTruncatedAndOverlongLinesAreSkippedAndCounted() throws Exception {
    String log = "plain text from another container\n"
        + "{\"level\":\"info\"}\n"
        + "{\"time\":\"t\",\"url\":\"https://cut.example/\n"                    // truncated
        + "{\"time\":\"t\",\"x\":\"" + "a".repeat(AccessLogReader.MAX_LINE_CHARS) + "\"}\n"
        + line("GET", "-", "upgrade")                                          // malformed request
        + line("GET", "https://ok.example/", "tunnel")                         // not host:port
        + line("GET", "http://0x7f.1/", "upgrade")                             // not a canonical host
        + line("CONNECT", "ok.example:443", "tunnel")
        + "\n";
    Result r = propose(log);
    assertThat(r.code()).isZero();
    assertThat(r.err()).contains("read 8 lines from -: 1 hops, 4 lines skipped (not Egret's "
        + "access log), 3 hops without a destination");
    assertThat(compiled(r.out()).allowlist().rules()).hasSize(1);
  }

  @Test
  void readsFilesGzipAndStdinTogether() throws Exception {
    Path plain = Files.writeString(dir.resolve("a.log"), line("GET", "http://one.example:8080/", "upgrade"));
    Path gz = dir.resolve("b.log.gz");
    try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(gz))) {
      o.write(line("CONNECT", "two.example:443", "tunnel").getBytes(StandardCharsets.UTF_8));
    }
    Result r = propose(line("POST", "https://three.example/v1/x", "tls"), plain.toString(),
        gz.toString(), "-");
    EgretConfig c = compiled(r.out());
    assertThat(c.allowlist().rules()).extracting(rule -> rule.host().pattern() + ":" + rule.ports())
        .containsExactly("one.example:[8080]", "three.example:[443]", "two.example:[443]");
    // http://h:8080 keeps its port; the rule lets plaintext be upgraded only there.
    assertThat(c.allowlist().rules().get(0).plaintext().name()).isEqualTo("UPGRADE");
    assertThat(c.allowlist().rules().get(1).plaintext().name()).isEqualTo("BLOCK");
  }

  @Test
  void anEmptyLogProposesAnEmptyButValidConfig() throws Exception {
    Result r = propose("");
    assertThat(r.code()).isZero();
    assertThat(compiled(r.out()).allowlist().rules()).isEmpty();
  }

  @ParameterizedTest(name = "{0} and {1}: {2}")
  @CsvSource({
      "a.github.io, b.github.io, ",                       // github.io is a public suffix
      "a.s3.amazonaws.com, b.s3.amazonaws.com, ",         // so is s3.amazonaws.com
      "shop.example.co.uk, www.example.co.uk, **.example.co.uk",
      "x.a.github.io, y.a.github.io, **.a.github.io",     // a.github.io is registrable
      "eu1.crm.example.com, na1.example.com, **.example.com",
      "one.partner.internal, two.partner.internal, ",     // no known suffix: never folded
      "10.0.0.1, 10.0.0.2, ",
  })
  void groupsOnlyUnderARegistrableDomain(String a, String b, String folded) throws Exception {
    Result r = propose(line("CONNECT", a + ":443", "tunnel") + line("CONNECT", b + ":443", "tunnel"),
        "--group", "2");
    List<String> rules = compiled(r.out()).allowlist().rules().stream()
        .map(rule -> rule.host().pattern()).toList();
    if (folded == null) {
      assertThat(rules).containsExactlyInAnyOrder(a, b);
    } else {
      assertThat(rules).containsExactly(folded);
    }
  }

  private List<String> grouped(int n, String... hosts) throws Exception {
    StringBuilder log = new StringBuilder();
    for (String h : hosts) {
      log.append(line("CONNECT", h + ":443", "tunnel"));
    }
    Result r = propose(log.toString(), "--group", String.valueOf(n));
    assertThat(r.code()).as(r.err()).isZero();
    return compiled(r.out()).allowlist().rules().stream().map(rule -> rule.host().pattern()).toList();
  }

  @Test
  void groupsUnderTheDeepestParentThatHoldsNHosts() throws Exception {
    // Least privilege: api.example.com's hosts, not everything under example.com.
    assertThat(grouped(3, "x.api.example.com", "y.api.example.com", "z.api.example.com",
        "www.example.com")).containsExactly("**.api.example.com", "www.example.com");
    // The common parent of hosts at different depths.
    assertThat(grouped(3, "a.eu.api.example.com", "b.us.api.example.com", "c.api.example.com"))
        .containsExactly("**.api.example.com");
    // Hosts left over once a deeper parent folded its own are not swept into the domain's rule.
    assertThat(grouped(3, "a.x.example.com", "b.x.example.com", "c.x.example.com",
        "d.y.example.com", "e.y.example.com")).containsExactly("**.x.example.com",
        "d.y.example.com", "e.y.example.com");
    assertThat(grouped(2, "a.x.example.com", "b.x.example.com", "d.y.example.com",
        "e.y.example.com")).containsExactly("**.x.example.com", "**.y.example.com");
    // "x-y" sorts between "x" and "x.a" as text; the fold goes by labels.
    assertThat(grouped(2, "a.x.example.com", "x-y.example.com", "b.x.example.com"))
        .containsExactly("**.x.example.com", "x-y.example.com");
    // Under a public suffix each registrable domain folds on its own, never the suffix.
    assertThat(grouped(2, "a.b.github.io", "c.d.github.io", "e.f.co.uk", "g.h.co.uk"))
        .containsExactlyInAnyOrder("a.b.github.io", "c.d.github.io", "e.f.co.uk", "g.h.co.uk");
    assertThat(grouped(2, "a.b.github.io", "c.b.github.io", "x.y.example.co.uk", "z.example.co.uk"))
        .containsExactly("**.b.github.io", "**.example.co.uk");
    // s3.amazonaws.com is a public suffix inside the registrable amazonaws.com: its buckets are
    // registrable domains of their own, never folded with amazonaws.com's hosts or each other.
    assertThat(grouped(2, "a.amazonaws.com", "x.s3.amazonaws.com", "y.s3.amazonaws.com"))
        .containsExactly("a.amazonaws.com", "x.s3.amazonaws.com", "y.s3.amazonaws.com");
    assertThat(grouped(2, "a.amazonaws.com", "x.s3.amazonaws.com", "b.amazonaws.com"))
        .containsExactly("**.amazonaws.com", "x.s3.amazonaws.com");
  }

  @Test
  void groupsOnlyFromNHostsAndPerPort() throws Exception {
    String log = line("CONNECT", "a.example.com:443", "tunnel") + line("CONNECT", "b.example.com:443", "tunnel")
        + line("CONNECT", "c.example.com:8443", "tunnel") + line("CONNECT", "example.com:443", "tunnel");
    EgretConfig c = compiled(propose(log, "--group", "3").out());
    assertThat(c.allowlist().rules()).hasSize(4);
    EgretConfig two = compiled(propose(log, "--group", "2").out());
    assertThat(two.allowlist().rules()).extracting(rule -> rule.host().pattern())
        .containsExactly("example.com", "**.example.com", "c.example.com");
    // The apex keeps its own rule: "**." never matches it.
    assertThat(two.allowlist().decide(RequestTargets.target("CONNECT", "example.com:443").target())
        .ruleName()).isEqualTo("example.com");
    assertThat(two.allowlist().decide(RequestTargets.target("CONNECT", "d.example.com:8443").target())
        .verdict()).isEqualTo(Verdict.DENY);
  }

  @Test
  void tallyKeepsItsFirstKeysAndCountsTheRestAsOtherPerRuleAndInAll() {
    Tally.Budget budget = new Tally.Budget(3);
    Tally a = new Tally(2);
    Tally b = new Tally(2);
    a.add("/v1", 5, budget);
    a.add("/v2", 1, budget);
    a.add("/v3", 2, budget); // over this tally's cap
    a.add("/v1", 1, budget); // a kept key still counts
    b.add("/x", 1, budget);  // the budget's last key
    b.add("/y", 4, budget);  // over the budget shared by every tally
    assertThat(a.top(8)).isEqualTo("/v1 6, other 2, /v2 1");
    assertThat(b.top(8)).isEqualTo("other 4, /x 1");
    assertThat(a.top(1)).isEqualTo("/v1 6, +2 more");
  }

  @Test
  void refusesBadArguments() {
    assertThatThrownBy(() -> propose("", "--group", "1")).isInstanceOf(Propose.UsageError.class)
        .hasMessageContaining("2 or more");
    assertThatThrownBy(() -> propose("", "--group")).isInstanceOf(Propose.UsageError.class);
    assertThatThrownBy(() -> propose("", "--verbose")).isInstanceOf(Propose.UsageError.class)
        .hasMessageContaining("'--verbose'");
    assertThatThrownBy(() -> propose("", "--config")).isInstanceOf(Propose.UsageError.class);
  }

  @Test
  void anUnreadableLogExitsOne() throws Exception {
    Result r = propose("", dir.resolve("missing.log").toString());
    assertThat(r.code()).isEqualTo(1);
    assertThat(r.err()).contains("cannot read").contains("missing.log");
    assertThat(r.out()).isEmpty();
  }

  @Test
  void mergesIntoAnEmptyFlowAllowListAndRefusesAFullOne() throws Exception {
    Path file = Files.writeString(dir.resolve("start.yaml"), "version: 1\nallow: []   # to be filled\n"
        + "deny:\n  - host: \"*.pastebin.com\"\n");
    Result r = propose(line("CONNECT", "api.stripe.com:443", "tunnel"), "--config", file.toString());
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).startsWith("version: 1\nallow:   # to be filled\n");
    EgretConfig c = compiled(r.out());
    assertThat(c.allowlist().rules()).extracting(rule -> rule.host().pattern())
        .containsExactly("api.stripe.com");
    Path flow = Files.writeString(dir.resolve("flow.yaml"), "version: 1\nallow: [{host: a.example}]\n");
    Result refused = propose(line("CONNECT", "b.example:443", "tunnel"), "--config", flow.toString());
    assertThat(refused.code()).isEqualTo(1);
    assertThat(refused.err()).contains("flow.yaml:2: allow: is a flow list");
  }

  @Test
  void explainsHopsThatOnlyAChangeToTheConfigCanAdmit() throws Exception {
    Path file = Files.writeString(dir.resolve("base.yaml"), """
        version: 1
        allow:
          - host: legacy.partner.example
            plaintext: block
          - host: crm.partner.example
            headers: {set: {X-Api-Version: "1"}}
        """);
    Result r = propose(line("GET", "http://legacy.partner.example/a", "upgrade")
        + line("CONNECT", "crm.partner.example:443", "tunnel"), "--config", file.toString());
    assertThat(r.code()).isZero();
    assertThat(r.out()).contains("# not proposed (1 hop): http://legacy.partner.example/a: denied by "
        + "rule 'legacy.partner.example' (line 3) itself")
        .contains("# not proposed (1 hop): crm.partner.example:443: denied by rule "
            + "'crm.partner.example' (line 5) itself");
    assertThat(compiled(r.out()).allowlist().rules()).hasSize(2);
  }

  @Test
  void theShippedReportConfigTakesProposals() throws Exception {
    Path report = Path.of("../config/report.yaml");
    assertThat(ConfigCompiler.load(report).allowlist().mode().name()).isEqualTo("REPORT");
    Result r = propose(line("GET", "http://api.partner.example/v1/x", "upgrade"), "--config",
        report.toString());
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("# egret propose: still report mode; set 'mode: enforce'");
    Path merged = Files.writeString(dir.resolve("report.yaml"), r.out());
    assertThat(ConfigCompiler.load(merged).allowlist().rules()).extracting(x -> x.host().pattern())
        .containsExactly("api.partner.example");
  }
}
