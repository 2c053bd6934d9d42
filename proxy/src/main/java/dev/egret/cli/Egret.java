package dev.egret.cli;

import dev.egret.listener.RequestTargets;
import dev.egret.Run;
import dev.egret.address.AddressPolicy;
import dev.egret.address.AddressVerdicts;
import dev.egret.address.Cidr;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigError;
import dev.egret.config.ConfigException;
import dev.egret.config.EgretConfig;
import dev.egret.enforce.IptablesCommand;
import dev.egret.failure.ProxyFailure;
import dev.egret.exchange.RequestTarget;
import dev.egret.identity.Client;
import dev.egret.policy.Decision;
import dev.egret.address.HostName;
import dev.egret.policy.Kind;
import dev.egret.policy.Rule;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The command line: {@code egret run|check|explain|propose|ready|iptables}. Exit codes: 0 success, 2 bad config or
 * arguments (with a message naming the problem), 1 anything else.
 */
public final class Egret {
  /** One command of the command line and its usage lines, as {@code egret --help} lists it. */
  private record Command(String name, String usage) {}

  /** Every command, in the order {@code egret --help} lists them; continuation lines line up. */
  private static final List<Command> COMMANDS = List.of(
      new Command("run", """
          egret [run] [--config FILE]            serve (config: $EGRET_CONFIG, else config/egret.yaml)
          """),
      new Command("check", """
          egret check FILE                       validate a config; exit 2 listing every error
          """),
      new Command("explain", """
          egret explain --config FILE [--client NAME] [--method M] [--no-resolve] URL
                                                 print the decision for http://h/p, https://h/p or h:port,
                                                 and the address guard's verdict for each address the
                                                 host resolves to (unless --no-resolve); --client decides
                                                 for that gateway client
          """),
      new Command("propose", """
          egret propose [--config FILE] [--group N] [LOG...]
                                                 print a proposed allowlist from access-log lines
          """),
      new Command("ready", """
          egret ready [--admin HOST:PORT]        exit 0 if the admin port's /readyz answers 200
          """),
      new Command("iptables", """
          egret iptables --config FILE [--uid UID] [--ipv6] [--allow-endpoint IP:PORT]...
                                                 print iptables-restore input that redirects this
                                                 namespace's TCP to the transparent listeners and
                                                 rejects the rest (uid default 10001)
          """),
      new Command("lambda", """
          egret lambda [--config FILE] [--name N]
                                                 run as a Lambda external extension (the default
                                                 when AWS_LAMBDA_RUNTIME_API is set)
          """));

  static final String USAGE = "usage: " + COMMANDS.stream().map(c -> indent(c.usage()))
      .collect(Collectors.joining("       "));

  /** Lines after a command's first start under its first, past "usage: ". */
  private static String indent(String usage) {
    return usage.replace("\n ", "\n" + " ".repeat(7) + " ").stripTrailing() + "\n";
  }

  /** {@code egret CMD --help}, {@code -h} or {@code egret help CMD}: that command's usage alone. */
  private static int help(String command, PrintStream out, PrintStream err) {
    for (Command c : COMMANDS) {
      if (c.name().equals(command)) {
        out.print("usage: " + indent(c.usage()));
        return 0;
      }
    }
    return usage(err, "unknown command '" + command + "'");
  }

  private Egret() {}

  public static void main(String[] args) {
    int code = run(args, System.out, System.err);
    if (code >= 0) {
      System.exit(code);
    }
  }

  /** Runs a command; returns its exit code, or -1 when it keeps serving ({@code run}). */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    Deque<String> a = new ArrayDeque<>(Arrays.asList(args));
    boolean runFlags = !a.isEmpty() && a.peek().startsWith("--") && !a.peek().equals("--help");
    // Under Lambda the launcher is started with no arguments; AWS_LAMBDA_RUNTIME_API says where.
    String command = a.isEmpty() || runFlags
        ? (System.getenv("AWS_LAMBDA_RUNTIME_API") == null ? "run" : "lambda") : a.pop();
    // Help before anything else: `egret run --help` must not load a config or start serving.
    boolean known = COMMANDS.stream().anyMatch(c -> c.name().equals(command));
    if (known && (a.contains("--help") || a.contains("-h"))) {
      return help(command, out, err);
    }
    try {
      return switch (command) {
        case "run" -> Run.serve(configPath(a, err), err);
        case "check" -> check(a, out, err);
        case "explain" -> explain(a, out, err);
        case "ready" -> ready(a, out, err);
        case "propose" -> propose(a, out, err);
        case "iptables" -> {
          try {
            yield IptablesCommand.run(a, out, err);
          } catch (IptablesCommand.BadArgument e) {
            throw new UsageException(e.getMessage());
          }
        }
        case "lambda" -> dev.egret.lambda.Extension.main(a, out, err);
        case "help", "--help", "-h" -> {
          if (a.isEmpty()) {
            out.print(USAGE);
            yield 0;
          }
          yield help(a.pop(), out, err);
        }
        default -> usage(err, "unknown command '" + command + "'");
      };
    } catch (UsageException e) {
      return usage(err, e.getMessage());
    } catch (ConfigException e) {
      for (ConfigError error : e.errors()) {
        err.println(error);
      }
      return 2;
    }
  }

  private static int usage(PrintStream err, String problem) {
    err.println("egret: " + problem);
    err.print(USAGE);
    return 2;
  }

  static final class UsageException extends RuntimeException {
    UsageException(String message) {
      super(message);
    }
  }

  private static Path configPath(Deque<String> a, PrintStream err) {
    String path = null;
    while (!a.isEmpty()) {
      String arg = a.pop();
      if (arg.equals("--config")) {
        if (a.isEmpty()) {
          throw new UsageException("--config needs a file");
        }
        path = a.pop();
      } else {
        throw new UsageException("unexpected argument '" + arg + "'");
      }
    }
    if (path == null) {
      path = System.getenv("EGRET_CONFIG");
    }
    return Path.of(path == null || path.isBlank() ? "config/egret.yaml" : path);
  }

  private static int check(Deque<String> a, PrintStream out, PrintStream err)
      throws ConfigException {
    if (a.size() != 1) {
      throw new UsageException("check takes exactly one FILE");
    }
    Path file = Path.of(a.pop());
    EgretConfig config = ConfigCompiler.load(file);
    out.println(file + ": ok (" + config.allowlist().rules().size() + " allow rules, sha256 "
        + config.sha256() + ")");
    return 0;
  }

  private static int explain(Deque<String> a, PrintStream out, PrintStream err)
      throws ConfigException {
    String config = null;
    String method = null;
    String url = null;
    String clientName = null;
    boolean resolve = true;
    while (!a.isEmpty()) {
      String arg = a.pop();
      switch (arg) {
        case "--config" -> config = next(a, "--config needs a file");
        case "--no-resolve" -> resolve = false;
        case "--client" -> clientName = next(a, "--client needs a client name");
        case "--method" -> method = next(a, "--method needs a method such as GET").toUpperCase(Locale.ROOT);
        default -> {
          if (url != null) {
            throw new UsageException("explain takes one URL, got '" + url + "' and '" + arg + "'");
          }
          url = arg;
        }
      }
    }
    if (config == null || url == null) {
      throw new UsageException("explain needs --config FILE and a URL");
    }
    EgretConfig c = ConfigCompiler.load(Path.of(config));
    boolean tunnel = !url.contains("://");
    RequestTarget rt;
    try {
      rt = RequestTargets.target(tunnel ? "CONNECT" : (method == null ? "GET" : method), url);
    } catch (ProxyFailure f) {
      throw new UsageException(f.details());
    }
    var allowlist = c.allowlist();
    if (clientName != null) {
      Client client = c.clients().named(clientName);
      if (client == null) {
        throw new UsageException(c.clients().gateway()
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

  private static String next(Deque<String> a, String problem) {
    if (a.isEmpty()) {
      throw new UsageException(problem);
    }
    return a.pop();
  }

  private static int propose(Deque<String> a, PrintStream out, PrintStream err)
      throws ConfigException {
    try {
      return dev.egret.propose.Propose.run(a, System.in, out, err);
    } catch (dev.egret.propose.Propose.UsageError e) {
      throw new UsageException(e.getMessage());
    }
  }

  private static int ready(Deque<String> a, PrintStream out, PrintStream err) {
    String admin = "127.0.0.1:9901";
    while (!a.isEmpty()) {
      String arg = a.pop();
      if (arg.equals("--admin")) {
        admin = next(a, "--admin needs HOST:PORT");
      } else {
        throw new UsageException("unexpected argument '" + arg + "'");
      }
    }
    try {
      HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
      HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create("http://" + admin + "/readyz"))
          .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.ofString());
      out.println("readyz: " + r.statusCode());
      return r.statusCode() == 200 ? 0 : 1;
    } catch (Exception e) {
      err.println("egret: readyz at " + admin + " did not answer: " + e.getMessage());
      return 1;
    }
  }
}
