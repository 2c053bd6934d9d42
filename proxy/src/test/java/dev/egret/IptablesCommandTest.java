package dev.egret;

import static dev.egret.testing.EgretCommand.egret;

import dev.egret.testing.EgretCommand.Result;
import dev.egret.cli.Egret;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code egret iptables}: its arguments, its refusals, and its output accepted by the real
 * {@code iptables-restore --test} / {@code ip6tables-restore --test} where those are installed
 * (.ci/run installs them; the check needs root, which CI has).
 */
class IptablesCommandTest {
  @TempDir Path dir;


  static final String WITH_LISTENERS = """
      version: 1
      listen:
        transparent:
          - {address: 127.0.0.1:3129, port: 443, protocol: tls}
          - {address: 127.0.0.1:3130, port: 80, protocol: http}
      allow:
        - host: api.partner.example
      """;

  private Path config(String yaml) throws Exception {
    return Files.writeString(dir.resolve("egret.yaml"), yaml);
  }

  @Test
  void printsRulesForTheConfigsListeners() throws Exception {
    Result r = egret("iptables", "--config", config(WITH_LISTENERS).toString());
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).startsWith("# iptables-restore input from 'egret iptables' for " + dir)
        .contains("-A EGRET_REDIRECT -m owner --uid-owner 10001 -j RETURN\n")
        .contains("--dport 443 -m comment --comment \"egret tls listener 127.0.0.1:3129\" -j REDIRECT --to-ports 3129\n")
        .contains("--dport 80 -m comment --comment \"egret http listener 127.0.0.1:3130\" -j REDIRECT --to-ports 3130\n")
        .endsWith("-A EGRET_OUTPUT -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n");
  }

  @Test
  void takesTheUidAndTheFamily() throws Exception {
    Result r = egret("iptables", "--config", config(WITH_LISTENERS).toString(), "--uid", "20002", "--ipv6");
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).startsWith("# ip6tables-restore input")
        .contains("--uid-owner 20002 -j ACCEPT").contains("icmp6-port-unreachable");
  }

  @Test
  void aConfigWithoutTransparentListenersSaysWhatToAdd() throws Exception {
    Path f = config("version: 1\nallow:\n  - host: api.partner.example\n");
    Result r = egret("iptables", "--config", f.toString());
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.out()).isEmpty();
    assertThat(r.err()).contains(f + " has no listen.transparent entries")
        .contains("- {address: 127.0.0.1:3129, port: 443, protocol: tls}");
  }

  @Test
  void aListenerOffLoopbackIsAnError() throws Exception {
    Path f = config(WITH_LISTENERS.replace("127.0.0.1:3129", "192.0.2.1:3129"));
    Result r = egret("iptables", "--config", f.toString());
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err()).contains("listen.transparent[0] listens on 192.0.2.1:3129, but an iptables REDIRECT");
  }

  @Test
  void badArgumentsExitTwoWithUsage() throws Exception {
    String f = config(WITH_LISTENERS).toString();
    Result noConfig = egret("iptables");
    assertThat(noConfig.code()).isEqualTo(2);
    assertThat(noConfig.err()).startsWith("egret: iptables needs --config FILE").contains("usage:");
    assertThat(egret("iptables", "--config", f, "--uid", "root").err())
        .startsWith("egret: --uid is 'root'; give Egret's numeric uid");
    assertThat(egret("iptables", "--config", f, "--uid", "4294967295").code()).isEqualTo(2);
    assertThat(egret("iptables", "--config", f, "--allow-endpoint", "metadata.internal:80").err())
        .startsWith("egret: --allow-endpoint is 'metadata.internal:80'; write IP:PORT");
    assertThat(egret("iptables", "--config", f, "--frobnicate").err())
        .startsWith("egret: unexpected argument '--frobnicate'");
  }

  @Test
  void aBadConfigIsListedWithPositions() throws Exception {
    Path f = config(WITH_LISTENERS.replace("protocol: http", "protocol: quic"));
    Result r = egret("iptables", "--config", f.toString());
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err()).contains(f + ":5:").contains("protocol is 'quic'; use one of: tls, http");
  }

  @Test
  void iptablesRestoreAcceptsTheOutput() throws Exception {
    String f = config(WITH_LISTENERS).toString();
    restoreTest("iptables-restore",
        egret("iptables", "--config", f, "--allow-endpoint", "169.254.170.2:80").out());
    restoreTest("ip6tables-restore", egret("iptables", "--config", f, "--ipv6").out());
    restoreTest("ip6tables-restore", egret("iptables", "--config",
        config(WITH_LISTENERS.replace("127.0.0.1:3129", "\"[::]:3129\"")).toString(), "--ipv6").out());
  }

  private static void restoreTest(String tool, String rules) throws Exception {
    Path bin = Path.of("/usr/sbin", tool);
    assumeTrue(Files.isExecutable(bin) && "root".equals(System.getProperty("user.name")),
        tool + " is not installed here, or this is not root: .ci/run installs iptables and runs as root");
    Process p = new ProcessBuilder(bin.toString(), "--test").redirectErrorStream(true).start();
    p.getOutputStream().write(rules.getBytes(StandardCharsets.UTF_8));
    p.getOutputStream().close();
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.exitValue()).as(tool + " --test said: " + output + "\nfor:\n" + rules).isZero();
  }
}
