package dev.egret.cli;

import dev.egret.listener.RequestTargets;
import dev.egret.address.AddressPolicy;
import dev.egret.address.AddressVerdicts;
import dev.egret.address.Cidr;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigException;
import dev.egret.config.EgretConfig;
import dev.egret.failure.ProxyFailure;
import dev.egret.exchange.RequestTarget;
import dev.egret.identity.Client;
import dev.egret.policy.Decision;
import dev.egret.address.HostName;
import dev.egret.policy.Kind;
import dev.egret.policy.Rule;
import java.io.PrintStream;
import java.net.InetAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Deque;
import java.util.List;
import java.util.Locale;

/**
 * {@code egret explain}: the decision for one URL (or {@code host:port} for a CONNECT), for the
 * top-level allowlist or one gateway client's, without sending anything upstream: verdict,
 * reason, rule, route, upgrade target, TLS profile, injected header names (never values), and,
 * unless {@code --no-resolve}, each resolved address with the address guard's verdict.
 */
final class Explain {
  private Explain() {}

  static int run(Deque<String> a, PrintStream out, PrintStream err)
      throws ConfigException {
    String config = null;
    String method = null;
    String url = null;
    String clientName = null;
    boolean resolve = true;
    while (!a.isEmpty()) {
      String arg = a.pop();
      switch (arg) {
        case "--config" -> config = Egret.next(a, "--config needs a file");
        case "--no-resolve" -> resolve = false;
        case "--client" -> clientName = Egret.next(a, "--client needs a client name");
        case "--method" -> method = Egret.next(a, "--method needs a method such as GET").toUpperCase(Locale.ROOT);
        default -> {
          if (url != null) {
            throw new Egret.UsageException("explain takes one URL, got '" + url + "' and '" + arg + "'");
          }
          url = arg;
        }
      }
    }
    if (config == null || url == null) {
      throw new Egret.UsageException("explain needs --config FILE and a URL");
    }
    EgretConfig c = ConfigCompiler.load(Path.of(config));
    boolean tunnel = !url.contains("://");
    RequestTarget rt;
    try {
      rt = RequestTargets.target(tunnel ? "CONNECT" : (method == null ? "GET" : method), url);
    } catch (ProxyFailure f) {
      throw new Egret.UsageException(f.details());
    }
    var allowlist = c.allowlist();
    if (clientName != null) {
      Client client = c.clients().named(clientName);
      if (client == null) {
        throw new Egret.UsageException(c.clients().gateway()
            ? "no client is named '" + clientName + "' in " + config + "; its clients: "
                + String.join(", ", c.clients().all().stream().map(Client::name).limit(20).toList())
                + (c.clients().all().size() > 20 ? ", ..." : "")
            : config + " has no clients: list, so --client has no one to decide for");
      }
      allowlist = client.allowlist();
    }
    Decision d = allowlist.decide(rt.target());
    out.println("target:   " + rt.target().describe() + (tunnel ? " (CONNECT tunnel)" : ""));
    if (clientName != null) {
      out.println("client:   " + clientName + " (its own rules, then the top-level ones)");
    } else if (c.clients().gateway()) {
      out.println("client:   none given (the top-level rules only; --client NAME decides for one)");
    }
    out.println("verdict:  " + d.verdict().name().toLowerCase(Locale.ROOT));
    out.println("reason:   " + d.details());
    Rule rule = d.rule();
    out.println("rule:     " + (rule == null ? "none" : "'" + rule.host().pattern() + "' (line " + rule.line() + ")"));
    if (d.verdict().letsThrough()) {
      String upstream = HostName.authority(rt.target().host(), d.upstreamPort());
      switch (rt.target().kind()) {
        case UPGRADE -> out.println("upgrade:  https://" + upstream + rt.pathAndQuery()
            + " (re-originated over TLS " + String.join("/", c.tlsBaseline().protocols()) + ")");
        case TLS -> out.println("upstream: https://" + upstream + rt.pathAndQuery());
        case TUNNEL -> out.println("tunnel:   " + upstream
            + " (must carry TLS, SNI " + rt.target().host() + ", version >= minVersion)");
      }
      // The proxy's name and URL only: its credentials never leave the config.
      out.println("route:    " + (d.route().direct() ? "direct"
          : "through " + d.route().proxy().describe() + ", CONNECT " + upstream
              + (d.route().proxy().authenticates() ? " with Proxy-Authorization" : "")));
      var tls = rule == null ? c.defaultTls() : rule.tls();
      if (rt.target().kind() != Kind.TUNNEL) {
        out.println("tls:      profile " + tls.name() + (tls.pins().isEmpty() ? "" : ", pins " + tls.pins())
            + (tls.hasClientCertificate() ? ", client certificate" : ""));
      }
      if (resolve) {
        explainAddresses(out, c, rt.target().host(), rule);
      } else {
        out.println("address:  " + addressNote(c.addresses(), rt.target().host(), rule));
      }
      explainHeaders(d, out);
    }
    return 0;
  }

  /** Injected header names and where their values come from; never the values. */
  private static void explainHeaders(Decision d, PrintStream out) {
    if (d.rule() == null || d.rule().headers().isEmpty()) {
      return;
    }
    if (d.target().kind() == Kind.TUNNEL) {
      out.println("headers:  none added: a tunnel's requests are encrypted"
          + (d.rule().headers().tunnelAllowed() ? " (tunnel: allow)" : "") + "; the rule's "
          + String.join(", ", d.rule().headers().names()) + " apply to http:// requests only");
      return;
    }
    java.util.List<String> lines = d.headers().describe();
    if (lines.isEmpty()) {
      out.println("headers:  none added: the rule does not admit this request (report mode)");
    }
    String label = "headers:  ";
    for (String line : lines) {
      out.println(label + line);
      label = "          ";
    }
  }

  /** How long explain waits for DNS: a hung resolver should not hang the command. */
  private static final Duration EXPLAIN_RESOLVE_TIMEOUT = Duration.ofSeconds(5);

  /** Resolves as {@code run} would and prints the address guard's verdict per address. */
  private static void explainAddresses(PrintStream out, EgretConfig c, String host, Rule rule) {
    AddressVerdicts.Resolution r = AddressVerdicts.resolve(host, rule == null ? null : rule.allowAddresses(), c.addresses(),
        EXPLAIN_RESOLVE_TIMEOUT);
    if (r.failure() != null) {
      out.println("address:  " + r.failure() + "; the request would get 502 dns_error");
      return;
    }
    for (AddressVerdicts.Verdict v : r.verdicts()) {
      out.println("address:  " + v.address().getHostAddress() + (v.allowed() ? " allowed"
          : " refused: in denied range " + v.deniedBy() + " (destination_ip_prohibited)"));
    }
    out.println("addresses: " + (r.allowed() ? "allowed; Egret connects to "
        + r.verdicts().get(0).address().getHostAddress()
        : "refused: the request would get 403 destination_ip_prohibited (exempt the range with"
            + " addresses.allow or the rule's allowAddresses)"));
  }

  private static String addressNote(AddressPolicy policy, String host, Rule rule) {
    if (!HostName.isIpLiteral(host)) {
      return "checked when a request resolves " + host + " (not resolved: --no-resolve)";
    }
    try {
      Cidr range = policy.deniedRange(InetAddress.getByName(host.indexOf(':') >= 0 ? "[" + host + "]" : host),
          rule == null ? null : rule.allowAddresses());
      return range == null ? host + " is allowed" : host + " is refused: in denied range " + range
          + " (destination_ip_prohibited)";
    } catch (java.net.UnknownHostException e) {
      return "not a valid address: " + host;
    }
  }

}
