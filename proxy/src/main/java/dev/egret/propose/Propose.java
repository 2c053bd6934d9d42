package dev.egret.propose;

import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigException;
import dev.egret.config.EgretConfig;
import dev.egret.policy.Decision;
import dev.egret.address.HostName;
import dev.egret.policy.Reason;
import dev.egret.policy.Rule;
import dev.egret.policy.Verdict;
import java.io.BufferedWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
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
 *
 * <p>Bounded: at most {@link #MAX_DESTINATIONS} destinations (host and port) are counted, each
 * with a capped tally of what was seen ({@link Seen}), and the proposal is at most the 4 MiB a
 * config file may have. When it cannot hold every destination seen, what fits is written (in
 * name order; it still passes {@code egret check}), an {@code # INCOMPLETE:} comment on the
 * first line and at the end of the allow list says what was left out, stderr says the same, and
 * the exit code is 1: a script that deploys the proposal must not take it for the whole log,
 * since enforcing it would deny what was left out. {@code --group N} folds hosts so more fit.
 */
public final class Propose {
  /**
   * Bounds the memory a log of endless distinct host names can take: a few hundred bytes per
   * destination, plus the keys of what they saw ({@link Seen#MAX_KEYS_IN_ALL}). A proposal of
   * this many rules would not fit in a config file; with {@code --group} many fold into one.
   */
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
   *     (what fits is still printed)
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
    List<String> names = logs.stream().map(l -> Comments.safe(l, 200)).toList();
    String summary = "read " + reader.lines + " lines from " + String.join(", ", names) + ": "
        + reader.hops + " hops, " + reader.skipped + " lines skipped (not Egret's access log), "
        + reader.withoutDestination + " hops without a destination (malformed requests, loops)";
    ProposalWriter writer = new ProposalWriter(summary, rules, collector.notes, collector.leftOut);
    ProposalWriter.Plan plan;
    try {
      plan = config == null ? writer.standalone() : writer.merged(config, collector.used);
    } catch (ProposalWriter.CannotMerge e) {
      err.println("egret propose: " + e.getMessage());
      return 1;
    }
    // A proposal that does not pass check is never printed as if it did. The check reads the
    // text as `egret check` would, at most MAX_BYTES of it; what is printed is written again.
    Path checkAs = configFile != null ? configFile : Path.of("proposed.yaml");
    try {
      ByteArrayOutputStream text = new ByteArrayOutputStream(1 << 16);
      try (Writer w = new OutputStreamWriter(text, StandardCharsets.UTF_8)) {
        writer.write(plan, w);
      }
      if (text.size() > ProposalWriter.MAX_BYTES) {
        throw new IllegalStateException("the proposal is " + text.size() + " bytes, over the "
            + ProposalWriter.MAX_BYTES + " it was planned to fit");
      }
      ConfigCompiler.compile(checkAs, text.toByteArray());
    } catch (ConfigException e) {
      err.println("egret propose: the proposal does not compile, which is a bug in propose:");
      e.errors().forEach(x -> err.println("  " + x));
      return 1;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    Writer w = new BufferedWriter(new OutputStreamWriter(out, StandardCharsets.UTF_8), 1 << 16);
    try {
      writer.write(plan, w);
      w.flush();
    } catch (IOException e) {
      err.println("egret propose: cannot write the proposal: " + e.getMessage());
      return 1;
    }
    if (out.checkError()) {
      err.println("egret propose: cannot write the proposal to stdout");
      return 1;
    }
    err.println("egret propose: " + summary + "; proposed " + plan.fitted() + " rules"
        + (config == null ? "" : ", " + collector.unusedCount() + " of FILE's rules saw no traffic")
        + (collector.notes.isEmpty() ? "" : "; " + collector.notes.entries()
            + " kinds of hops need a change to FILE instead (see the comments)"));
    if (plan.leftRules() > 0) {
      err.println("egret propose: INCOMPLETE: " + plan.leftRules() + " proposed rules (for "
          + plan.leftHosts() + " hosts, " + plan.leftHops() + " hops) did not fit in the "
          + (ProposalWriter.MAX_BYTES >> 20) + " MiB a config file may have; fold hosts with "
          + "--group N, or propose from a part of the log at a time");
    }
    if (plan.uncounted() > 0) {
      err.println("egret propose: INCOMPLETE: " + plan.uncounted() + " hops to destinations past "
          + "the first " + MAX_DESTINATIONS + " were not counted; the proposal does not cover them");
    }
    return plan.complete() ? 0 : 1;
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
    /** At most MAX_DESTINATIONS entries; the host strings are the sightings' own. */
    private final Map<Destination, Seen> destinations = new HashMap<>();
    /** Lines of FILE's rules that admitted a hop. */
    final Set<Integer> used = new HashSet<>();
    /** Hops a rule appended after FILE's cannot admit, by what to change instead. */
    final Tally notes = new Tally(64);
    /** Hops to destinations past MAX_DESTINATIONS. */
    long leftOut;
    private final Tally.Budget keys = new Tally.Budget(Seen.MAX_KEYS_IN_ALL);

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
          notes.add(note, 1);
          return;
        }
        // "no allow rule names h" says nothing the rule below does not; a near miss does.
        deniedBecause = d.reason() == Reason.NO_MATCHING_RULE ? null : Comments.safe(d.details(), 160);
      }
      Destination key = new Destination(s.target().host(), s.upstreamPort());
      Seen seen = destinations.get(key);
      if (seen == null) {
        if (destinations.size() >= MAX_DESTINATIONS) {
          leftOut++;
          return;
        }
        seen = new Seen();
        destinations.put(key, seen);
      }
      seen.add(s, keys);
      if (deniedBecause != null) {
        seen.denied(deniedBecause, keys);
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

    /** The destinations as rules, in {@link #BY_LABELS} order, then by port. */
    List<Proposed> proposals() {
      List<Proposed> out = new ArrayList<>(destinations.size());
      destinations.forEach((d, seen) -> out.add(new Proposed(d.host(), d.port(), seen)));
      destinations.clear();
      out.sort(Comparator.comparing(Proposed::host, BY_LABELS).thenComparingInt(Proposed::port));
      return out;
    }

    long unusedCount() {
      return config.allowlist().rules().stream().filter(r -> !used.contains(r.line())).count();
    }
  }

  private record Destination(String host, int port) {}

  /**
   * Host names by their labels from the right ({@code api.example.com} as {@code com, example,
   * api}), so the hosts under any parent sit together; IP literals after the names. Labels are
   * compared one by one: as text, {@code x-y.example.com} would sort between {@code x.example.com}
   * and {@code a.x.example.com}.
   */
  static final Comparator<String> BY_LABELS = Propose::compareByLabels;

  static int compareByLabels(String a, String b) {
    boolean ipA = HostName.isIpLiteral(a);
    boolean ipB = HostName.isIpLiteral(b);
    if (ipA || ipB) {
      return ipA && ipB ? a.compareTo(b) : ipA ? 1 : -1;
    }
    int endA = a.length();
    int endB = b.length();
    while (true) {
      int startA = a.lastIndexOf('.', endA - 1) + 1;
      int startB = b.lastIndexOf('.', endB - 1) + 1;
      int lenA = endA - startA;
      int lenB = endB - startB;
      for (int i = 0; i < Math.min(lenA, lenB); i++) {
        int c = Character.compare(a.charAt(startA + i), b.charAt(startB + i));
        if (c != 0) {
          return c;
        }
      }
      if (lenA != lenB) {
        return lenA - lenB;
      }
      if (startA == 0 || startB == 0) {
        return startA == 0 && startB == 0 ? 0 : startA == 0 ? -1 : 1;
      }
      endA = startA - 1;
      endB = startB - 1;
    }
  }
}
