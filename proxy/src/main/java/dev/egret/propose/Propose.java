package dev.egret.propose;

import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigException;
import dev.egret.config.EgretConfig;
import dev.egret.policy.Decision;
import dev.egret.policy.Reason;
import dev.egret.policy.Rule;
import dev.egret.policy.Verdict;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.GZIPInputStream;

/**
 * {@code egret propose [--config FILE] [--group N] [LOG...]}: reads Egret's access log (files,
 * {@code .gz} files, or stdin when none or {@code -} is named) and prints a proposed allowlist
 * on stdout, a summary on stderr. The proposal is compiled before it is printed, so what comes
 * out passes {@code egret check}.
 *
 * <pre>
 * egret run --config report.yaml > access.log         # mode: report, for a while
 * egret propose --config report.yaml --group 3 access.log > proposed.yaml
 * egret check proposed.yaml                             # review it, set mode: enforce, deploy
 * </pre>
 *
 * <p>Without {@code --config}, every destination seen gets a rule. With it, each hop is judged
 * by FILE as {@code mode: enforce} would judge it: FILE's rules that admitted nothing are marked
 * with a comment, and rules are proposed only for hops FILE would deny. A hop that no rule added
 * after FILE's could admit (FILE's deny list, a rule of FILE that blocks plaintext, a tunnel to a
 * rule with injected headers) is listed as a comment saying what to change instead.
 */
public final class Propose {
  /** Bounds the memory a log of endless distinct host names can take. */
  static final int MAX_DESTINATIONS = 100_000;
  static final String USAGE_LINE = "egret propose [--config FILE] [--group N] [LOG...]";

  private Propose() {}

  /** Wrong arguments; the caller prints the message and the usage, and exits 2. */
  public static final class UsageError extends RuntimeException {
    UsageError(String message) {
      super(message);
    }
  }

  /**
   * Runs the command with the arguments after {@code propose}.
   *
   * @return the exit code: 0, or 1 when the log could not be read or the proposal is incomplete
   * @throws UsageError for bad arguments
   * @throws ConfigException when {@code --config FILE} does not load
   */
  public static int run(Deque<String> args, InputStream stdin, PrintStream out, PrintStream err)
      throws ConfigException {
    Path configFile = null;
    int group = 0;
    List<String> logs = new ArrayList<>();
    while (!args.isEmpty()) {
      String a = args.pop();
      switch (a) {
        case "--config" -> {
          if (args.isEmpty()) {
            throw new UsageError("--config needs a file");
          }
          configFile = Path.of(args.pop());
        }
        case "--group" -> {
          String n = args.isEmpty() ? "" : args.pop();
          if (!n.matches("[0-9]{1,6}") || Integer.parseInt(n) < 2) {
            throw new UsageError("--group needs a number of hosts, 2 or more (got '" + n + "')");
          }
          group = Integer.parseInt(n);
        }
        default -> {
          if (a.startsWith("--")) {
            throw new UsageError("propose does not know '" + a + "'");
          }
          logs.add(a);
        }
      }
    }
    EgretConfig config = configFile == null ? null : ConfigCompiler.load(configFile);
    Propose.Collector collector = new Collector(config);
    AccessLogReader reader = new AccessLogReader();
    if (logs.isEmpty()) {
      logs.add("-");
    }
    for (String log : logs) {
      try (Reader r = open(log, stdin)) {
        reader.read(r, collector::add);
      } catch (IOException e) {
        err.println("egret propose: cannot read " + log + ": " + e.getMessage());
        return 1;
      }
    }
    List<Proposed> rules = collector.proposals();
    if (group > 0) {
      rules = Grouping.fold(rules, group);
    }
    String summary = "read " + reader.lines + " lines from " + String.join(", ", logs) + ": "
        + reader.hops + " hops, " + reader.skipped + " lines skipped (not Egret's access log), "
        + reader.withoutDestination + " hops without a destination (malformed requests, loops)";
    ProposalWriter writer = new ProposalWriter(summary, rules, collector.notes, collector.leftOut);
    String yaml;
    try {
      yaml = config == null ? writer.standalone() : writer.merged(config, collector.used);
    } catch (ProposalWriter.CannotMerge e) {
      err.println("egret propose: " + e.getMessage());
      return 1;
    }
    Path checkAs = configFile != null ? configFile : Path.of("proposed.yaml");
    try {
      ConfigCompiler.compile(checkAs, yaml.getBytes(StandardCharsets.UTF_8));
    } catch (ConfigException e) {
      // A proposal that does not pass check is never printed as if it did.
      err.println("egret propose: the proposal does not compile, which is a bug in propose:");
      e.errors().forEach(x -> err.println("  " + x));
      return 1;
    }
    out.print(yaml);
    err.println("egret propose: " + summary + "; proposed " + rules.size() + " rules"
        + (config == null ? "" : ", " + collector.unusedCount() + " of FILE's rules saw no traffic")
        + (collector.notes.isEmpty() ? "" : "; " + collector.notes.size()
            + " kinds of hops need a change to FILE instead (see the comments)"));
    if (collector.leftOut > 0) {
      err.println("egret propose: " + collector.leftOut + " hops to more than "
          + MAX_DESTINATIONS + " destinations were left out; the proposal does not cover them");
      return 1;
    }
    return 0;
  }

  private static Reader open(String log, InputStream stdin) throws IOException {
    InputStream in = log.equals("-") ? stdin : Files.newInputStream(Path.of(log));
    if (log.endsWith(".gz")) {
      in = new GZIPInputStream(in);
    }
    // Malformed UTF-8 becomes U+FFFD rather than an error: such a line is skipped, not fatal.
    return new InputStreamReader(in, StandardCharsets.UTF_8);
  }

  /** Sorts sightings into destinations to propose, FILE's used rules, and notes. */
  private static final class Collector {
    private final EgretConfig config;
    private final Map<String, Proposed> destinations = new LinkedHashMap<>();
    /** Lines of FILE's rules that admitted a hop. */
    final Set<Integer> used = new HashSet<>();
    /** Hops a rule appended after FILE's cannot admit, by what to change instead. */
    final Map<String, Long> notes = new LinkedHashMap<>();
    long leftOut;

    Collector(EgretConfig config) {
      this.config = config;
    }

    void add(Sighting s) {
      String deniedBecause = null;
      if (config != null) {
        Decision d = config.allowlist().decideEnforced(s.target());
        if (d.verdict() == Verdict.ALLOW) {
          used.add(d.rule().line());
          return;
        }
        String note = note(d);
        if (note != null) {
          Seen.count(notes, note);
          return;
        }
        // "no allow rule names h" says nothing the rule below does not; a near miss does.
        deniedBecause = d.reason() == Reason.NO_MATCHING_RULE ? null : Comments.safe(d.details(), 160);
      }
      String key = s.target().host() + " " + s.upstreamPort();
      Proposed p = destinations.get(key);
      if (p == null) {
        if (destinations.size() >= MAX_DESTINATIONS) {
          leftOut++;
          return;
        }
        p = new Proposed(s.target().host(), s.upstreamPort(), new Seen());
        destinations.put(key, p);
      }
      p.seen().add(s);
      if (deniedBecause != null) {
        Seen.count(p.seen().deniedBecause, deniedBecause);
      }
    }

    /** What to change in FILE for a hop that an appended rule could not admit; else null. */
    private static String note(Decision d) {
      String host = Comments.safe(d.target().describe(), 120);
      Reason r = d.reason();
      if (r == Reason.DENIED_BY_RULE) {
        return host + ": " + Comments.safe(d.details(), 160) + "; a deny rule wins over any allow "
            + "rule, so remove it from deny: to admit this";
      }
      if (r == Reason.PLAINTEXT_BLOCKED || r == Reason.TUNNEL_BYPASSES_HEADERS) {
        Rule rule = d.rule();
        return host + ": denied by rule '" + rule.host().pattern() + "' (line " + rule.line()
            + ") itself, which a later rule cannot override: " + Comments.safe(d.details(), 240);
      }
      return null;
    }

    List<Proposed> proposals() {
      List<Proposed> out = new ArrayList<>(destinations.values());
      out.sort(Comparator.comparing((Proposed p) -> reversedLabels(p.host()))
          .thenComparingInt(Proposed::port));
      return out;
    }

    long unusedCount() {
      return config.allowlist().rules().stream().filter(r -> !used.contains(r.line())).count();
    }
  }

  /** {@code api.example.com} sorts as {@code com.example.api}, so a domain's hosts sit together. */
  static String reversedLabels(String host) {
    if (host.indexOf(':') >= 0 || host.chars().allMatch(c -> c == '.' || Character.isDigit(c))) {
      return "~" + host; // IP literals after names
    }
    String[] labels = host.split("\\.");
    StringBuilder b = new StringBuilder();
    for (int i = labels.length - 1; i >= 0; i--) {
      b.append(labels[i]).append(i > 0 ? "." : "");
    }
    return b.toString();
  }
}
