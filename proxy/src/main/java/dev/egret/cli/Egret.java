package dev.egret.cli;

import dev.egret.Run;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigError;
import dev.egret.config.ConfigException;
import dev.egret.config.EgretConfig;
import dev.egret.enforce.IptablesCommand;
import java.io.PrintStream;
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
        case "explain" -> Explain.run(a, out, err);
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

  static String next(Deque<String> a, String problem) {
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
