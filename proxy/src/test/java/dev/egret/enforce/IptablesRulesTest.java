package dev.egret.enforce;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.egret.config.EgretConfig.HostPort;
import dev.egret.config.EgretConfig.Protocol;
import dev.egret.config.EgretConfig.Transparent;
import dev.egret.enforce.IptablesRules.Endpoint;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What {@code egret iptables} prints, line by line: the documented redirect and reject rules, in the
 * order the kernel must see them. {@code IptablesCommandTest} feeds the same output to the real
 * iptables-restore, and {@code NamespaceEnforcementTest} applies it and sends packets.
 */
class IptablesRulesTest {
  @TempDir Path dir;

  static final List<Transparent> DOCUMENTED_ENTRIES = List.of(
      new Transparent(new HostPort("127.0.0.1", 3129), 443, Protocol.TLS),
      new Transparent(new HostPort("127.0.0.1", 3130), 80, Protocol.HTTP));

  private static List<String> rules(String text) {
    return text.lines().filter(l -> !l.startsWith("#")).toList();
  }

  private static InetAddress ip(String s) throws Exception {
    return InetAddress.getByName(s);
  }

  @Test
  void redirectsEachEntrysPortFromOtherUsersAndRejectsTheRest() throws Exception {
    String out = IptablesRules.render(DOCUMENTED_ENTRIES, 10001, List.of(ip("10.96.0.10")), List.of(),
        Family.IPV4, "egret.yaml");
    assertThat(rules(out)).containsExactly(
        "*nat",
        ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]", ":EGRET_REDIRECT - [0:0]",
        "-A OUTPUT -p tcp -j EGRET_REDIRECT",
        "-A EGRET_REDIRECT -o lo -j RETURN",
        "-A EGRET_REDIRECT -d 127.0.0.0/8 -j RETURN",
        "-A EGRET_REDIRECT -m owner --uid-owner 10001 -j RETURN",
        "-A EGRET_REDIRECT -p tcp --dport 443 -m comment --comment \"egret tls listener 127.0.0.1:3129\" -j REDIRECT --to-ports 3129",
        "-A EGRET_REDIRECT -p tcp --dport 80 -m comment --comment \"egret http listener 127.0.0.1:3130\" -j REDIRECT --to-ports 3130",
        "COMMIT",
        "*filter",
        ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
        ":EGRET_OUTPUT - [0:0]",
        "-A OUTPUT -j EGRET_OUTPUT",
        "-A EGRET_OUTPUT -o lo -j ACCEPT",
        "-A EGRET_OUTPUT -d 127.0.0.0/8 -j ACCEPT",
        "-A EGRET_OUTPUT -m owner --uid-owner 10001 -j ACCEPT",
        "-A EGRET_OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        "-A EGRET_OUTPUT -d 10.96.0.10/32 -p udp --dport 53 -j ACCEPT",
        "-A EGRET_OUTPUT -d 10.96.0.10/32 -p tcp --dport 53 -j ACCEPT",
        "-A EGRET_OUTPUT -p tcp -j REJECT --reject-with tcp-reset",
        "-A EGRET_OUTPUT -j REJECT --reject-with icmp-port-unreachable",
        "COMMIT");
  }

  @Test
  void theUidIsTheOneGiven() throws Exception {
    String out = IptablesRules.render(DOCUMENTED_ENTRIES, 4242, List.of(), List.of(), Family.IPV4, "x");
    assertThat(out).contains("-A EGRET_REDIRECT -m owner --uid-owner 4242 -j RETURN\n")
        .contains("-A EGRET_OUTPUT -m owner --uid-owner 4242 -j ACCEPT\n")
        .doesNotContain("10001 -j");
  }

  @Test
  void loopbackResolversNeedNoRuleAndTheOtherFamilyIsSkipped() throws Exception {
    String out = IptablesRules.render(DOCUMENTED_ENTRIES, 10001,
        List.of(ip("127.0.0.53"), ip("fd00::53"), ip("192.0.2.53")), List.of(), Family.IPV4, "x");
    assertThat(out).contains("-d 192.0.2.53/32 -p udp --dport 53 -j ACCEPT")
        .doesNotContain("127.0.0.53").doesNotContain("fd00::53");
    String v6 = IptablesRules.render(DOCUMENTED_ENTRIES, 10001,
        List.of(ip("127.0.0.53"), ip("fd00::53")), List.of(), Family.IPV6, "x");
    assertThat(v6).contains("-A EGRET_OUTPUT -d fd00:0:0:0:0:0:0:53/128 -p udp --dport 53 -j ACCEPT")
        .contains("-A EGRET_OUTPUT -d fd00:0:0:0:0:0:0:53/128 -p tcp --dport 53 -j ACCEPT")
        .doesNotContain("127.0.0.53");
  }

  @Test
  void anOptedInEndpointIsNeitherRedirectedNorRejected() throws Exception {
    String out = IptablesRules.render(DOCUMENTED_ENTRIES, 10001, List.of(),
        List.of(new Endpoint(ip("169.254.170.2"), 80)), Family.IPV4, "x");
    List<String> r = rules(out);
    assertThat(r).contains("-A EGRET_REDIRECT -d 169.254.170.2/32 -p tcp --dport 80 -j RETURN",
        "-A EGRET_OUTPUT -d 169.254.170.2/32 -p tcp --dport 80 -j ACCEPT");
    // The exemption must come before the redirect of port 80 and before the final reject.
    assertThat(r.indexOf("-A EGRET_REDIRECT -d 169.254.170.2/32 -p tcp --dport 80 -j RETURN"))
        .isLessThan(indexStarting(r, "-A EGRET_REDIRECT -p tcp --dport 80"));
    assertThat(r.indexOf("-A EGRET_OUTPUT -d 169.254.170.2/32 -p tcp --dport 80 -j ACCEPT"))
        .isLessThan(indexStarting(r, "-A EGRET_OUTPUT -p tcp -j REJECT"));
  }

  @Test
  void noEndpointIsOpenUnlessAskedFor() throws Exception {
    String out = IptablesRules.render(DOCUMENTED_ENTRIES, 10001, List.of(), List.of(), Family.IPV4, "x");
    assertThat(out).doesNotContain("169.254");
  }

  @Test
  void ipv6WithIpv4OnlyListenersRefusesIpv6Egress() throws Exception {
    String out = IptablesRules.render(DOCUMENTED_ENTRIES, 10001, List.of(), List.of(), Family.IPV6, "x");
    List<String> r = rules(out);
    assertThat(r).noneMatch(l -> l.contains("REDIRECT --to-ports"))
        .contains("-A EGRET_REDIRECT -d ::1/128 -j RETURN",
            "-A EGRET_OUTPUT -p tcp -j REJECT --reject-with tcp-reset",
            "-A EGRET_OUTPUT -j REJECT --reject-with icmp6-port-unreachable",
            "-A EGRET_OUTPUT -p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT");
    assertThat(out).contains("# No listener takes IPv6: all IPv6 egress from other users is refused.");
  }

  @Test
  void ipv6RedirectsToListenersOnIpv6LoopbackOrTheWildcard() throws Exception {
    List<Transparent> entries = List.of(
        new Transparent(new HostPort("::1", 3129), 443, Protocol.TLS),
        new Transparent(new HostPort("127.0.0.1", 3130), 80, Protocol.HTTP),
        new Transparent(new HostPort("::", 3131), 8443, Protocol.TLS));
    List<String> v6 = rules(IptablesRules.render(entries, 10001, List.of(), List.of(), Family.IPV6, "x"));
    assertThat(v6).filteredOn(l -> l.contains("REDIRECT --to-ports")).containsExactly(
        "-A EGRET_REDIRECT -p tcp --dport 443 -m comment --comment \"egret tls listener [::1]:3129\" -j REDIRECT --to-ports 3129",
        "-A EGRET_REDIRECT -p tcp --dport 8443 -m comment --comment \"egret tls listener [::]:3131\" -j REDIRECT --to-ports 3131");
    List<String> v4 = rules(IptablesRules.render(entries, 10001, List.of(), List.of(), Family.IPV4, "x"));
    assertThat(v4).filteredOn(l -> l.contains("REDIRECT --to-ports")).extracting(l -> l.replaceAll(".* ", ""))
        .containsExactly("3130", "3131");
  }

  @Test
  void refusesAListenerARedirectCannotReach() {
    List<Transparent> entries = List.of(new Transparent(new HostPort("10.0.0.5", 3129), 443, Protocol.TLS));
    assertThatThrownBy(() -> IptablesRules.render(entries, 10001, List.of(), List.of(), Family.IPV4, "x"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("listen.transparent[0] listens on 10.0.0.5:3129, but an iptables REDIRECT"
            + " delivers a task's own connections to 127.0.0.1 (IPv4) or ::1 (IPv6); listen on"
            + " 127.0.0.1:3129 (or [::1]:3129 for --ipv6)");
  }

  @Test
  void readsNameserversFromResolvConf() throws Exception {
    Path f = Files.writeString(dir.resolve("resolv.conf"), """
        # generated
        search default.svc.cluster.local svc.cluster.local
        nameserver 10.96.0.10
          nameserver   fe80::1%eth0
        nameserverx 1.1.1.1
        options ndots:5
        """);
    assertThat(Resolvers.read(f)).containsExactly(ip("10.96.0.10"), ip("fe80::1"));
  }

  @Test
  void refusesANameserverThatIsNotAnAddress() throws Exception {
    Path f = Files.writeString(dir.resolve("resolv.conf"), "nameserver 10.0.0.1\nnameserver dns.example\n");
    assertThatThrownBy(() -> Resolvers.read(f)).hasMessage(f + ":2: nameserver 'dns.example' is not an IP address");
    Path g = Files.writeString(dir.resolve("resolv2.conf"), "nameserver dead.beef\n");
    assertThatThrownBy(() -> Resolvers.read(g)).hasMessageContaining("'dead.beef' is not an IP address");
  }

  private static int indexStarting(List<String> lines, String prefix) {
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).startsWith(prefix)) {
        return i;
      }
    }
    throw new AssertionError("no line starts with " + prefix);
  }
}
