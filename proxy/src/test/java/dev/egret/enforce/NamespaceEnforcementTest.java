package dev.egret.enforce;

import static dev.egret.testing.NetNamespace.UPSTREAM_IP;
import static dev.egret.testing.NetNamespace.UPSTREAM_IP6;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.NetNamespace;
import dev.egret.testing.NetNamespace.Output;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The rules {@code egret iptables} prints, applied in a real network namespace, against real
 * packets. The task namespace runs the app (as uid 1000), stand-ins for Egret's transparent
 * listeners (plain TCP servers that name themselves, until the real listeners land) and
 * Egret's uid (10001); the upstream namespace has marker servers on 443, 80, 8080, DNS on 53
 * and a UDP server on 5353. The rules are printed by the command running inside the task
 * namespace, so they name the resolver from that namespace's resolv.conf, as in a pod.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NamespaceEnforcementTest {
  private static final int APP = 1000;
  private static final int EGRET = 10001;
  private static final Duration T = Duration.ofSeconds(20);
  /** The system's Python: a non-root uid cannot run a shim under /root. */
  private static final String PYTHON = Files.isExecutable(Path.of("/usr/bin/python3"))
      ? "/usr/bin/python3" : "python3";

  @TempDir static Path dir;
  private NetNamespace net;
  private String probe;

  @BeforeAll
  void setUp() throws Exception {
    net = NetNamespace.create();
    Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/sbin/iptables-restore"))
        && Files.isExecutable(Path.of("/usr/sbin/ip6tables-restore")),
        "iptables-restore is not installed (.ci/run installs the iptables package)");
    net.names(UPSTREAM_IP + " api.test.example\n" + UPSTREAM_IP6 + " api6.test.example",
        UPSTREAM_IP);
    probe = resource("netns/probe.py");

    List<String> upstream = new ArrayList<>(List.of(PYTHON, resource("netns/servers.py")));
    for (int port : List.of(443, 80, 8080, 53)) {
      upstream.add("tcp:" + UPSTREAM_IP + ":" + port + ":upstream-" + port);
    }
    upstream.add("udp:" + UPSTREAM_IP + ":53:dns");
    upstream.add("udp:" + UPSTREAM_IP + ":5353:udp-5353");
    upstream.add("tcp:[" + UPSTREAM_IP6 + "]:443:upstream6-443");
    net.upstream().start(upstream).await("ready"::equals, T);
    net.task().start(List.of(PYTHON, resource("netns/servers.py"),
        "tcp:127.0.0.1:3129:listener-tls", "tcp:127.0.0.1:3130:listener-http"))
        .await("ready"::equals, T);

    // Before the rules: the app reaches any upstream port directly. This is what the rules
    // must change, and shows a later "refused" is the rules' doing, not a missing server.
    assertThat(tcp(APP, UPSTREAM_IP, 8080)).isEqualTo("got:upstream-8080");
    assertThat(tcp(APP, UPSTREAM_IP, 443)).isEqualTo("got:upstream-443");

    Path config = Files.writeString(dir.resolve("egret.yaml"), """
        version: 1
        listen:
          transparent:
            - {address: 127.0.0.1:3129, port: 443, protocol: tls}
            - {address: 127.0.0.1:3130, port: 80, protocol: http}
        allow:
          - host: api.test.example
        """);
    dir.toFile().setReadable(true, false);
    dir.toFile().setExecutable(true, false);
    config.toFile().setReadable(true, false);
    apply(config, "iptables-restore", List.of());
    apply(config, "ip6tables-restore", List.of("--ipv6"));
  }

  /** Prints the rules with egret inside the task namespace and applies them there. */
  private void apply(Path config, String restore, List<String> flags) throws Exception {
    List<String> egret = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin",
        "java").toString(), "-cp", classPath(), "dev.egret.cli.Egret", "iptables", "--config",
        config.toString()));
    egret.addAll(flags);
    Output rules = net.task().run(Duration.ofSeconds(60), egret);
    assertThat(rules.code()).as(rules.text()).isZero();
    if (flags.isEmpty()) {
      // The resolver came from the namespace's own resolv.conf (/etc/netns/NAME/resolv.conf).
      assertThat(rules.text()).contains("-A EGRET_OUTPUT -d " + UPSTREAM_IP + "/32 -p udp --dport 53 -j ACCEPT");
    }
    Output applied = net.task().run(T, rules.text(), List.of(restore));
    assertThat(applied.code()).as(restore + ": " + applied.text()).isZero();
  }

  @AfterAll
  void tearDown() {
    if (net != null) {
      net.close();
    }
  }

  private String tcp(int uid, String host, int port) throws Exception {
    return probe(uid, "tcp", host, port);
  }

  private String probe(int uid, String kind, String host, int port) throws Exception {
    Output o = net.task().runAs(uid, T, List.of(PYTHON, probe, kind, host, String.valueOf(port)));
    assertThat(o.code()).as(o.text()).isZero();
    return o.text().strip();
  }

  @Test
  void tlsPortFromAnAppIsRedirectedToTheTlsListener() throws Exception {
    assertThat(tcp(APP, UPSTREAM_IP, 443)).isEqualTo("got:listener-tls");
    assertThat(tcp(APP, "api.test.example", 443)).isEqualTo("got:listener-tls");
  }

  @Test
  void httpPortFromAnAppIsRedirectedToTheHttpListener() throws Exception {
    assertThat(tcp(APP, UPSTREAM_IP, 80)).isEqualTo("got:listener-http");
  }

  @Test
  void rootIsAnotherUserToo() throws Exception {
    assertThat(tcp(0, UPSTREAM_IP, 443)).isEqualTo("got:listener-tls");
    assertThat(tcp(0, UPSTREAM_IP, 8080)).isEqualTo("rejected");
  }

  @Test
  void egretsOwnConnectionsAreNotRedirected() throws Exception {
    assertThat(tcp(EGRET, UPSTREAM_IP, 443)).isEqualTo("got:upstream-443");
    assertThat(tcp(EGRET, UPSTREAM_IP, 80)).isEqualTo("got:upstream-80");
    assertThat(tcp(EGRET, UPSTREAM_IP, 8080)).isEqualTo("got:upstream-8080");
  }

  @Test
  void anyOtherPortIsRejectedAtOnce() throws Exception {
    assertThat(tcp(APP, UPSTREAM_IP, 8080)).isEqualTo("rejected");
    assertThat(probe(APP, "udp", UPSTREAM_IP, 5353)).isEqualTo("rejected");
  }

  @Test
  void dnsToTheResolverPasses() throws Exception {
    assertThat(probe(APP, "udp", UPSTREAM_IP, 53)).isEqualTo("got:dns");
    assertThat(tcp(APP, UPSTREAM_IP, 53)).isEqualTo("got:upstream-53");
  }

  @Test
  void loopbackPasses() throws Exception {
    assertThat(tcp(APP, "127.0.0.1", 3130)).isEqualTo("got:listener-http");
  }

  @Test
  void ipv6EgressIsRefusedWhenNoListenerTakesIpv6() throws Exception {
    assertThat(tcp(APP, UPSTREAM_IP6, 443)).isEqualTo("rejected");
    assertThat(tcp(APP, "api6.test.example", 443)).isEqualTo("rejected");
    // Egret still reaches IPv6 upstreams: neighbour discovery is let through.
    assertThat(tcp(EGRET, UPSTREAM_IP6, 443)).isEqualTo("got:upstream6-443");
  }

  private static String resource(String name) throws URISyntaxException {
    return Path.of(NamespaceEnforcementTest.class.getClassLoader().getResource(name).toURI()).toString();
  }

  private static String classPath() {
    String surefire = System.getProperty("surefire.test.class.path");
    return surefire != null && !surefire.isBlank() ? surefire : System.getProperty("java.class.path");
  }
}
