package dev.egret.enforce;

import dev.egret.config.EgretConfig.Transparent;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The {@code iptables-restore} (or {@code ip6tables-restore}) input that holds a network
 * namespace's apps to Egret. Build it with {@link #render}; {@code egret iptables} prints it.
 *
 * <p>What the rules say, for every user but Egret's uid:
 *
 * <ul>
 *   <li>{@code nat OUTPUT}: new TCP connections to a transparent entry's destination {@code port}
 *       that do not go to loopback are redirected to that entry's listener (REDIRECT delivers
 *       locally made connections to 127.0.0.1, or ::1, so the listener must listen there or on
 *       the wildcard address);
 *   <li>{@code filter OUTPUT}: loopback (which includes the redirected connections), replies on established connections, DNS (UDP and TCP 53)
 *       to the resolv.conf resolvers and any endpoint the operator opted into pass; every other
 *       TCP connection is reset, and everything else (UDP included) gets an ICMP port
 *       unreachable, so a client fails at once instead of timing out.
 * </ul>
 *
 * <p>Egret's own connections (its uid) are never redirected and never filtered: it must reach
 * the allowed upstreams directly, and a redirect of its own traffic would loop.
 *
 * <p>The input replaces the {@code nat} and {@code filter} tables (iptables-restore without
 * {@code --noflush}), which makes a second run, such as an init container that runs again in
 * the same pod, leave the same rules rather than a second copy. Only the chains it declares
 * exist afterwards.
 */
public final class IptablesRules {
  /** Egret's uid in the image and the chart ({@code runAsUser}). */
  public static final int DEFAULT_UID = 10001;

  private static final Set<String> IPV4_TARGETS = Set.of("127.0.0.1", "0.0.0.0", "::");
  private static final Set<String> IPV6_TARGETS = Set.of("::1", "::");

  private IptablesRules() {}

  /** A TCP endpoint apps may reach directly, such as the ECS credentials endpoint. */
  public record Endpoint(InetAddress address, int port) {
    @Override
    public String toString() {
      String a = address.getHostAddress();
      return (a.indexOf(':') >= 0 ? "[" + a + "]" : a) + ":" + port;
    }
  }

  /**
   * Renders the rules.
   *
   * @param transparent the config's transparent entries (at least one)
   * @param uid Egret's uid, whose traffic passes untouched
   * @param resolvers the namespace's resolv.conf nameservers; those of the other family are
   *     skipped
   * @param endpoints extra TCP endpoints apps may reach directly (opt-in)
   * @param source where the config came from, for the header comment
   * @throws IllegalArgumentException when an entry listens where a REDIRECT cannot reach it
   */
  public static String render(List<Transparent> transparent, int uid, List<InetAddress> resolvers,
      List<Endpoint> endpoints, Family family, String source) {
    if (transparent.isEmpty()) {
      throw new IllegalArgumentException("no transparent listeners");
    }
    StringBuilder nat = new StringBuilder();
    List<String> notes = new ArrayList<>();
    for (int i = 0; i < transparent.size(); i++) {
      Transparent t = transparent.get(i);
      String host = t.address().host().toLowerCase(Locale.ROOT);
      if (!IPV4_TARGETS.contains(host) && !IPV6_TARGETS.contains(host)) {
        throw new IllegalArgumentException("listen.transparent[" + i + "] listens on "
            + t.address() + ", but an iptables REDIRECT delivers a task's own connections to"
            + " 127.0.0.1 (IPv4) or ::1 (IPv6); listen on 127.0.0.1:" + t.address().port()
            + " (or [::1]:" + t.address().port() + " for --ipv6)");
      }
      boolean reaches = (family == Family.IPV4 ? IPV4_TARGETS : IPV6_TARGETS).contains(host);
      String protocol = t.protocol().name().toLowerCase(Locale.ROOT);
      if (reaches) {
        nat.append("-A EGRET_REDIRECT -p tcp --dport ").append(t.port())
            .append(" -m comment --comment \"egret ").append(protocol).append(" listener ")
            .append(t.address()).append("\" -j REDIRECT --to-ports ").append(t.address().port())
            .append('\n');
      } else {
        notes.add("# TCP to port " + t.port() + " is rejected, not redirected: its listener "
            + t.address() + " takes no " + (family == Family.IPV4 ? "IPv4" : "IPv6")
            + " connections");
      }
    }
    StringBuilder out = new StringBuilder();
    out.append("# ").append(family.restoreCommand).append(" input from 'egret iptables' for ")
        .append(source).append("\n")
        .append("# Replaces the nat and filter tables. Every user but uid ").append(uid)
        .append(" (Egret) is redirected to Egret's\n")
        .append("# transparent listeners or rejected; loopback and DNS to the resolvers pass.\n");
    for (String note : notes) {
      out.append(note).append('\n');
    }
    if (nat.length() == 0) {
      out.append("# No listener takes ").append(family == Family.IPV4 ? "IPv4" : "IPv6")
          .append(": all ").append(family == Family.IPV4 ? "IPv4" : "IPv6")
          .append(" egress from other users is refused.\n");
    }
    out.append("*nat\n")
        .append(":PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
        .append(":POSTROUTING ACCEPT [0:0]\n:EGRET_REDIRECT - [0:0]\n")
        .append("-A OUTPUT -p tcp -j EGRET_REDIRECT\n")
        .append("-A EGRET_REDIRECT -o lo -j RETURN\n")
        .append("-A EGRET_REDIRECT -d ").append(family.loopback).append(" -j RETURN\n")
        .append("-A EGRET_REDIRECT -m owner --uid-owner ").append(uid).append(" -j RETURN\n");
    for (Endpoint e : endpoints) {
      if (Resolvers.belongsTo(e.address(), family)) {
        out.append("-A EGRET_REDIRECT -d ").append(e.address().getHostAddress())
            .append(family.hostMask).append(" -p tcp --dport ").append(e.port())
            .append(" -j RETURN\n");
      }
    }
    out.append(nat).append("COMMIT\n");

    out.append("*filter\n")
        .append(":INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
        .append(":EGRET_OUTPUT - [0:0]\n")
        .append("-A OUTPUT -j EGRET_OUTPUT\n")
        .append("-A EGRET_OUTPUT -o lo -j ACCEPT\n")
        // A redirected connection reaches this chain addressed to the loopback listener but
        // still with the output interface it was first routed to (the hook's device is fixed
        // before nat OUTPUT rewrites the destination), so "-o lo" alone would reject it.
        .append("-A EGRET_OUTPUT -d ").append(family.loopback).append(" -j ACCEPT\n")
        .append("-A EGRET_OUTPUT -m owner --uid-owner ").append(uid).append(" -j ACCEPT\n")
        .append("-A EGRET_OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n");
    if (family == Family.IPV6) {
      // Neighbour discovery is sent by the kernel, with no socket and so no owner: without
      // these, IPv6 would stop working for Egret too.
      for (String type : List.of("router-solicitation", "neighbour-solicitation",
          "neighbour-advertisement")) {
        out.append("-A EGRET_OUTPUT -p ipv6-icmp --icmpv6-type ").append(type)
            .append(" -j ACCEPT\n");
      }
    }
    for (InetAddress r : resolvers) {
      if (!Resolvers.belongsTo(r, family) || r.isLoopbackAddress()) {
        continue;
      }
      for (String proto : List.of("udp", "tcp")) {
        out.append("-A EGRET_OUTPUT -d ").append(r.getHostAddress()).append(family.hostMask)
            .append(" -p ").append(proto).append(" --dport 53 -j ACCEPT\n");
      }
    }
    for (Endpoint e : endpoints) {
      if (Resolvers.belongsTo(e.address(), family)) {
        out.append("-A EGRET_OUTPUT -d ").append(e.address().getHostAddress())
            .append(family.hostMask).append(" -p tcp --dport ").append(e.port())
            .append(" -j ACCEPT\n");
      }
    }
    out.append("-A EGRET_OUTPUT -p tcp -j REJECT --reject-with tcp-reset\n")
        .append("-A EGRET_OUTPUT -j REJECT --reject-with ").append(family.rejectOther).append('\n')
        .append("COMMIT\n");
    return out.toString();
  }
}
