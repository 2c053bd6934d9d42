package dev.egret.cli;

import static dev.egret.testing.EgretCommand.egret;

import dev.egret.testing.EgretCommand.Result;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line's contract: exit codes 0 / 2 / 1 and what check and explain print. */
class EgretCommandTest {
  @TempDir Path dir;


  private Path config(String yaml) throws Exception {
    return Files.writeString(dir.resolve("egret.yaml"), yaml);
  }

  private static final String GOOD = """
      version: 1
      allow:
        - host: api.partner.example
        - host: legacy.partner.example
          plaintext: block
        - host: "**.salesforce.com"
          upgradePort: 8443
          ports: [8443]
      """;

  @Test
  void checkExitsZeroForAGoodConfig() throws Exception {
    Result r = egret("check", config(GOOD).toString());
    assertThat(r.code()).isZero();
    assertThat(r.out()).contains(": ok (3 allow rules");
  }

  @Test
  void checkExitsTwoListingEveryErrorWithPosition() throws Exception {
    Path f = config("version: 1\nallow:\n  - host: a.example\n    ports: [0]\n  - hots: b\n");
    Result r = egret("check", f.toString());
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err().lines()).contains(f + ":4:13: allow[0].ports[0] is 0; it must be a whole number from 1 to 65535")
        .anySatisfy(l -> assertThat(l).startsWith(f + ":5:5: unknown key 'hots'"));
  }

  @Test
  void runWithABadConfigExitsTwoWithoutStarting() throws Exception {
    Result r = egret("run", "--config", config("version: 1\nallow: nope\n").toString());
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err()).contains(":2:8: allow must be a list");
  }

  @Test
  void runIsTheDefaultSubCommand() throws Exception {
    // Documented: `egret [--config FILE]` with no sub-command serves; a bad config shows it took that
    // path (the check is the one `run` does before binding anything).
    Result r = egret("--config", config("version: 1\nallow: nope\n").toString());
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err()).contains(":2:8: allow must be a list");
  }

  @Test
  void explainPrintsVerdictRuleAndUpgradeTarget() throws Exception {
    Path f = config(GOOD);
    // --no-resolve: this name is not the test's to resolve (ExplainResolvesTest covers resolving).
    Result up = egret("explain", "--config", f.toString(), "--no-resolve",
        "http://na1.salesforce.com/v1?q=1");
    assertThat(up.code()).isZero();
    assertThat(up.out()).contains("verdict:  allow").contains("rule:     '**.salesforce.com'")
        .contains("upgrade:  https://na1.salesforce.com:8443/v1?q=1");

    Result blocked = egret("explain", "--config", f.toString(), "--method", "POST",
        "http://legacy.partner.example/orders");
    assertThat(blocked.out()).contains("verdict:  deny").contains("plaintext");

    Result tunnel = egret("explain", "--config", f.toString(), "evil.example:443");
    assertThat(tunnel.out()).contains("(CONNECT tunnel)").contains("verdict:  deny")
        .contains("no allow rule names evil.example");
  }

  @Test
  void explainRefusesWhatTheProxyPortRefuses() throws Exception {
    Result r = egret("explain", "--config", config(GOOD).toString(), "http://2130706433/");
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err()).contains("2130706433");
  }

  @Test
  void usageErrorsExitTwoAndHelpExitsZero() {
    assertThat(egret("bogus").code()).isEqualTo(2);
    assertThat(egret("check").code()).isEqualTo(2);
    assertThat(egret("explain", "http://a/").code()).isEqualTo(2);
    Result help = egret("--help");
    assertThat(help.code()).isZero();
    assertThat(help.out()).contains("egret check FILE");
  }

  @Test
  void readyExitsOneWhenNothingAnswers() throws Exception {
    int port;
    try (var s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
      port = s.getLocalPort();
    }
    Result r = egret("ready", "--admin", "127.0.0.1:" + port);
    assertThat(r.code()).isEqualTo(1);
    assertThat(r.err()).contains("did not answer");
  }
}
