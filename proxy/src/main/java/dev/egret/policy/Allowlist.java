package dev.egret.policy;

import java.util.List;

/**
 * The compiled allowlist: deny patterns, allow rules in order, mode and plaintext default.
 * Immutable; a config reload builds a new one and swaps it in whole. In gateway mode each
 * client has its own: the top-level deny patterns, then the client's rules, then the top-level
 * rules, under the client's mode; its decisions carry the client's name.
 */
public final class Allowlist {
  private final List<HostPattern> deny;
  private final List<Rule> allow;
  private final Mode mode;
  /** The gateway client this allowlist decides for, or null. */
  private final String client;
  private final Routing routing;

  public Allowlist(List<HostPattern> deny, List<Rule> allow, Mode mode) {
    this(deny, allow, mode, Routing.DIRECT, null);
  }

  /**
   * @param routing how allowed hops reach their destination (direct, or an upstream proxy)
   * @param client the gateway client this allowlist decides for (its decisions name it), or null
   */
  public Allowlist(List<HostPattern> deny, List<Rule> allow, Mode mode, Routing routing,
      String client) {
    this.deny = List.copyOf(deny);
    this.allow = List.copyOf(allow);
    this.mode = mode;
    this.routing = routing;
    this.client = client;
  }

  /** The top-level deny patterns, which every client's allowlist starts with. */
  public List<HostPattern> denied() {
    return deny;
  }

  /** The gateway client this allowlist decides for, or null. */
  public String client() {
    return client;
  }

  public Routing routing() {
    return routing;
  }

  public List<Rule> rules() {
    return allow;
  }

  public Mode mode() {
    return mode;
  }

  /**
   * Decides one request. Precedence, in order:
   *
   * <ol>
   *   <li>a {@code deny:} pattern that matches the host denies;
   *   <li>the first {@code allow:} rule whose host pattern, port, method and path all match
   *       decides: it allows, unless the request is {@code http://} and the rule's plaintext
   *       policy is {@code block}, or the request is a {@code CONNECT} and the rule sets or
   *       removes headers (which a tunnel's encrypted requests would bypass) without saying
   *       {@code tunnel: allow};
   *   <li>otherwise the request is denied, naming the closest rule (one whose host matched but
   *       whose port, method or path did not) so the operator sees what to change.
   * </ol>
   *
   * Methods and paths are not checked for a tunnel: TLS hides them. In {@code mode: report} a
   * denial becomes {@link Verdict#REPORT}. The address guard runs after this, on the resolved
   * addresses. A decision that lets the hop through carries its route ({@link Routing#route}).
   */
  public Decision decide(Target target) {
    Decision d = decideEnforcing(target);
    return routed(d.verdict() == Verdict.DENY && mode == Mode.REPORT ? d.reported() : d);
  }

  /** Adds the route to a decision that lets the hop through; a denial stays direct. */
  private Decision routed(Decision d) {
    return d.verdict().letsThrough() ? d.routed(routing.route(d.rule(), d.target().host())) : d;
  }

  /**
   * Decides a {@code CONNECT}. A tunnel that some rule lets carry TLS is allowed as {@link
   * #decide} says. Otherwise, when a rule would upgrade plain {@code http://host:port/} (the host
   * matches, the upgraded port is in its ports, its plaintext policy is upgrade), the CONNECT is
   * allowed with reason {@link Reason#PLAIN_HTTP_ONLY}: clients such as undici send CONNECT for
   * {@code http://} URLs, and each request inside is then decided in full by {@link #decide}.
   */
  public Decision decideConnect(Target tunnel) {
    Decision tls = decideEnforcing(tunnel);
    // A rule with injected headers refuses a CONNECT outright, as documented, so its client
    // is told to call http:// rather than get a tunnel that could carry either protocol.
    if (tls.verdict() == Verdict.DENY && tls.reason() != Reason.DENIED_BY_RULE
        && tls.reason() != Reason.TUNNEL_BYPASSES_HEADERS) {
      Target plain = new Target(Kind.UPGRADE, tunnel.host(), tunnel.port(), null, "/");
      String[] labels = HostPattern.labelsOf(tunnel.host());
      for (int k = 0; k < allow.size(); k++) {
        Rule rule = allow.get(k);
        if (rule.host().matches(tunnel.host(), labels) && rule.plaintext() == Plaintext.UPGRADE
            && rule.ports().contains(rule.upstreamPort(plain))) {
          // Nothing is dialled for it (each request inside routes on its own), but the route
          // shows in its log line like any other.
          return routed(new Decision(Verdict.ALLOW, Reason.PLAIN_HTTP_ONLY, rule, tunnel,
              rule.upstreamPort(plain), "admitted by rule '" + rule.host().pattern()
                  + "' for plain http:// requests only, which Egret upgrades to TLS", client));
        }
      }
    }
    return routed(tls.verdict() == Verdict.DENY && mode == Mode.REPORT ? tls.reported() : tls);
  }

  /**
   * Decides as {@link #decide} does under {@code mode: enforce}, whatever the mode: what this
   * allowlist would do once enforced ({@code egret propose} uses it to see which hops a config
   * does not cover yet).
   */
  public Decision decideEnforced(Target target) {
    return decideEnforcing(target);
  }

  private Decision decideEnforcing(Target t) {
    String[] labels = HostPattern.labelsOf(t.host());
    for (int k = 0; k < deny.size(); k++) {
      HostPattern p = deny.get(k);
      if (p.matches(t.host(), labels)) {
        return deny(t, Reason.DENIED_BY_RULE, null,
            t.host() + " is denied by the deny rule '" + p.pattern() + "'");
      }
    }
    Decision closest = null;
    for (int k = 0; k < allow.size(); k++) {
      Rule rule = allow.get(k);
      if (!rule.host().matches(t.host(), labels)) {
        continue;
      }
      int upstream = rule.upstreamPort(t);
      String miss = null;
      Reason reason = null;
      if (!rule.ports().contains(upstream)) {
        reason = Reason.PORT_NOT_ALLOWED;
        miss = "port " + upstream + " is not in the ports " + rule.ports() + " of rule '"
            + rule.host().pattern() + "'";
      } else if (t.kind() != Kind.TUNNEL && !rule.methods().isEmpty()
          && !rule.methods().contains(t.method())) {
        reason = Reason.METHOD_NOT_ALLOWED;
        miss = "method " + t.method() + " is not in the methods " + rule.methods() + " of rule '"
            + rule.host().pattern() + "'";
      } else if (t.kind() != Kind.TUNNEL && !rule.paths().isEmpty()
          && rule.paths().stream().noneMatch(p -> p.matches(t.path()))) {
        reason = Reason.PATH_NOT_ALLOWED;
        miss = "path " + t.path() + " is not in the paths " + rule.paths() + " of rule '"
            + rule.host().pattern() + "'";
      }
      if (reason != null) {
        if (closest == null) {
          closest = new Decision(Verdict.DENY, reason, rule, t, upstream, miss, client);
        }
        continue;
      }
      if (t.kind() == Kind.UPGRADE && rule.plaintext() == Plaintext.BLOCK) {
        return new Decision(Verdict.DENY, Reason.PLAINTEXT_BLOCKED, rule, t, upstream,
            "plaintext http:// to " + t.host() + " is blocked by rule '"
                + rule.host().pattern() + "'; call https:// instead", client);
      }
      if (t.kind() == Kind.TUNNEL && rule.headers().refusesTunnels()) {
        return new Decision(Verdict.DENY, Reason.TUNNEL_BYPASSES_HEADERS, rule, t, upstream,
            "rule '" + rule.host().pattern() + "' has Egret add or remove the headers "
                + String.join(", ", rule.headers().names()) + ", which it cannot do inside a "
                + "CONNECT tunnel; call " + new Target(Kind.UPGRADE, t.host(),
                    t.port() == 443 ? 80 : t.port(), "GET", "/").describe()
                + "... instead (Egret upgrades it to TLS and adds them), or set 'tunnel: allow' "
                + "on the rule to tunnel without them", client);
      }
      return new Decision(Verdict.ALLOW, Reason.ALLOWED_BY_RULE, rule, t, upstream,
          rule.host().allowedDetails(), client);
    }
    if (closest != null) {
      return closest;
    }
    return deny(t, Reason.NO_MATCHING_RULE, null, "no allow rule "
        + (client == null ? "" : "of client '" + client + "' or the top level ") + "names "
        + t.host());
  }

  private Decision deny(Target t, Reason reason, Rule rule, String details) {
    return new Decision(Verdict.DENY, reason, rule, t, upstreamPort(t, null), details, client);
  }

  /**
   * The documented upgrade mapping: {@code http://H:80} goes to 443, {@code http://H:P} to P, unless
   * the rule sets {@code upgradePort}. Tunnels and https:// keep their port.
   */
  static int upstreamPort(Target t, Integer upgradePort) {
    if (t.kind() != Kind.UPGRADE) {
      return t.port();
    }
    if (upgradePort != null) {
      return upgradePort;
    }
    return t.port() == 80 ? 443 : t.port();
  }
}
