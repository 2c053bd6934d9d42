package dev.egret.propose;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.egret.config.ConfigFiles;
import dev.egret.config.EgretConfig;
import dev.egret.policy.Mode;
import dev.egret.policy.Rule;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Prints a proposal as config YAML: on its own (a complete config with {@code mode: enforce}
 * and {@code plaintext: block}, so plain {@code http://} is upgraded only where a rule says so
 * because it was seen there), or merged into FILE's text: FILE's lines as written (comments
 * kept), a comment above each of its rules that admitted no hop, and the proposed rules at the
 * end of its {@code allow:} list, indented as FILE indents it.
 *
 * <p>The text is written rule by rule to an {@link Appendable}, never held whole, and is never
 * larger than {@link #MAX_BYTES}, the most a config file may have: {@link #plan} first measures
 * each rule and keeps those that fit, in order; the rest are counted in an {@code INCOMPLETE}
 * comment at the end of the allow list, with another on the first line.
 */
final class ProposalWriter {
  static final int MAX_BYTES = ConfigFiles.MAX_CONFIG_BYTES;
  /** As the config reader's: a FILE of up to MAX_BYTES parses (SnakeYAML stops at 3 Mi). */
  private static final YAMLFactory YAML = YAMLFactory.builder().loaderOptions(loaderOptions())
      .build();
  private static final Pattern EMPTY_FLOW = Pattern.compile("^(\\s*allow:)\\s*\\[\\s*\\](\\s*#.*)?$");
  static final String UNUSED = "# egret propose: no hop in the log matched this rule";
  static final String INCOMPLETE = "# INCOMPLETE: ";
  /** Room for the few bytes a layout may differ by between the measure and the write. */
  private static final int SLACK = 256;

  private final String summary;
  private final List<Proposed> rules;
  private final Tally notes;
  /** Hops to destinations past {@link Propose#MAX_DESTINATIONS}, never counted per host. */
  private final long uncounted;

  ProposalWriter(String summary, List<Proposed> rules, Tally notes, long uncounted) {
    this.summary = summary;
    this.rules = rules;
    this.notes = notes;
    this.uncounted = uncounted;
  }

  private static org.yaml.snakeyaml.LoaderOptions loaderOptions() {
    org.yaml.snakeyaml.LoaderOptions o = new org.yaml.snakeyaml.LoaderOptions();
    o.setCodePointLimit(MAX_BYTES);
    return o;
  }

  /** FILE's layout is one propose cannot edit safely, or FILE leaves no room for a proposal. */
  static final class CannotMerge extends Exception {
    CannotMerge(String message) {
      super(message);
    }
  }

  /**
   * The lines around the proposed rules: {@code before} ends where they start, {@code after}
   * (FILE's lines after its allow list) follows them; {@code merged} says a block header goes
   * first.
   */
  record Frame(List<String> before, List<String> after, String indent, boolean merged) {}

  /**
   * What will be written: the frame and how many of the rules fit.
   *
   * @param leftRules rules that did not fit, for {@code leftHosts} hosts and {@code leftHops} hops
   */
  record Plan(Frame frame, int fitted, long leftRules, long leftHosts, long leftHops,
      long uncounted) {
    boolean complete() {
      return leftRules == 0 && uncounted == 0;
    }
  }

  /** A complete config of the proposed rules. */
  Plan standalone() throws CannotMerge {
    List<String> before = new ArrayList<>();
    before.add("# Proposed by egret propose: " + summary + ".");
    before.add("# Review every rule (the comments say what was seen), then deploy it.");
    before.add("version: 1");
    before.add("mode: enforce");
    before.add("plaintext: block      # http:// is upgraded only where a rule says so (it was seen there)");
    before.add(rules.isEmpty() ? "allow: []             # the log showed no destination" : "allow:");
    return plan(new Frame(before, List.of(), "  ", false));
  }

  /** FILE's text with the proposed rules at the end of its allow list. */
  Plan merged(EgretConfig config, Set<Integer> used) throws CannotMerge {
    // FILE is at most MAX_BYTES: the config compiler read it whole already.
    List<String> lines;
    try {
      lines = new ArrayList<>(List.of(new String(Files.readAllBytes(config.file()),
          StandardCharsets.UTF_8).split("\r?\n", -1)));
    } catch (IOException e) {
      throw new CannotMerge("cannot read " + config.file() + " again: " + e.getMessage());
    }
    if (!lines.isEmpty() && lines.get(lines.size() - 1).isEmpty()) {
      lines.remove(lines.size() - 1);
    }
    Layout layout = layout(String.join("\n", lines), config);
    Map<Integer, List<String>> above = new HashMap<>(); // 0-based line -> lines to print before it
    if (layout.modeLine > 0 && config.allowlist().mode() == Mode.REPORT) {
      above.computeIfAbsent(layout.modeLine - 1, k -> new ArrayList<>()).add("# egret propose: "
          + "still report mode; set 'mode: enforce' once the rules below are reviewed");
    }
    String indent = "  ";
    List<Rule> fileRules = config.allowlist().rules();
    if (!fileRules.isEmpty()) {
      String first = lines.get(fileRules.get(0).line() - 1);
      int dash = first.indexOf('-');
      indent = dash < 0 ? "  " : first.substring(0, dash).replaceAll("\\S", " ");
    }
    for (Rule r : fileRules) {
      if (!used.contains(r.line())) {
        String text = lines.get(r.line() - 1);
        int dash = text.indexOf('-');
        above.computeIfAbsent(r.line() - 1, k -> new ArrayList<>())
            .add((dash < 0 ? indent : text.substring(0, dash)) + UNUSED);
      }
    }
    int insertAt; // 0-based: the proposed rules go before this line
    if (layout.emptyFlow) {
      Matcher m = EMPTY_FLOW.matcher(lines.get(layout.allowLine - 1));
      if (!m.matches()) {
        throw new CannotMerge(config.file() + ":" + layout.allowLine + ": write 'allow: []' on a "
            + "line of its own, or as a block list (- host: ...), so propose can add rules to it");
      }
      if (!rules.isEmpty()) {
        lines.set(layout.allowLine - 1, m.group(1) + (m.group(2) == null ? "" : m.group(2)));
      }
      insertAt = layout.allowLine;
    } else {
      insertAt = layout.nextKeyLine < 0 ? lines.size() : layout.nextKeyLine - 1;
      // Blank lines and top-level comments just above the next key belong to that key.
      while (insertAt > layout.allowLine && (lines.get(insertAt - 1).isBlank()
          || lines.get(insertAt - 1).startsWith("#"))) {
        insertAt--;
      }
    }
    List<String> before = new ArrayList<>();
    List<String> after = new ArrayList<>();
    for (int i = 0; i < lines.size(); i++) {
      List<String> into = i < insertAt ? before : after;
      into.addAll(above.getOrDefault(i, List.of()));
      into.add(lines.get(i));
    }
    Plan plan = plan(new Frame(before, after, indent, true));
    if (plan.fitted() == 0 && !rules.isEmpty() && layout.emptyFlow) {
      throw new CannotMerge(config.file() + " leaves no room under the " + (MAX_BYTES >> 20)
          + " MiB a config file may have for a proposed rule");
    }
    return plan;
  }

  private Plan plan(Frame f) throws CannotMerge {
    StringBuilder scratch = new StringBuilder();
    long fixed = 0;
    for (String line : f.before()) {
      fixed += bytes(line) + 1;
    }
    for (String line : f.after()) {
      fixed += bytes(line) + 1;
    }
    blockHeader(scratch, f);
    notes(scratch, f.indent());
    fixed += bytes(scratch);
    long[] sizes = new long[rules.size()];
    long all = 0;
    for (int i = 0; i < rules.size(); i++) {
      scratch.setLength(0);
      rule(scratch, rules.get(i), f.indent());
      sizes[i] = bytes(scratch);
      all += sizes[i];
    }
    if (uncounted == 0 && fixed + all + SLACK <= MAX_BYTES) {
      return new Plan(f, rules.size(), 0, 0, 0, 0);
    }
    // Incomplete: keep room for the INCOMPLETE lines with the widest numbers they can hold.
    scratch.setLength(0);
    incomplete(scratch, f.indent(), Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE);
    long room = MAX_BYTES - fixed - bytes(scratch) - bytes(top()) - 1 - SLACK;
    if (room < 0) {
      throw new CannotMerge((f.merged() ? "FILE with its comments" : "the proposal's frame")
          + " leaves no room for a proposed rule under the " + (MAX_BYTES >> 20) + " MiB a config "
          + "file may have");
    }
    int fitted = 0;
    for (long used = 0; fitted < rules.size() && used + sizes[fitted] <= room; fitted++) {
      used += sizes[fitted];
    }
    long hosts = 0;
    long hops = 0;
    for (int i = fitted; i < rules.size(); i++) {
      Seen s = rules.get(i).seen();
      hosts += Math.max(1, s.folded);
      hops += s.hops;
    }
    return new Plan(f, fitted, rules.size() - fitted, hosts, hops, uncounted);
  }

  /** Writes the planned text; at most {@link #MAX_BYTES} bytes in UTF-8. */
  void write(Plan plan, Appendable out) throws IOException {
    Frame f = plan.frame();
    if (!plan.complete()) {
      out.append(top()).append('\n');
    }
    for (String line : f.before()) {
      out.append(line).append('\n');
    }
    StringBuilder b = new StringBuilder();
    blockHeader(b, f);
    out.append(b);
    for (int i = 0; i < plan.fitted(); i++) {
      b.setLength(0);
      rule(b, rules.get(i), f.indent());
      out.append(b);
    }
    b.setLength(0);
    notes(b, f.indent());
    incomplete(b, f.indent(), plan.leftRules(), plan.leftHosts(), plan.leftHops(),
        plan.uncounted());
    out.append(b);
    for (String line : f.after()) {
      out.append(line).append('\n');
    }
  }

  private static String top() {
    return INCOMPLETE + "this proposal leaves out destinations the log shows (see the end of the "
        + "allow list), so enforcing it as it is denies them";
  }

  private void blockHeader(StringBuilder b, Frame f) {
    if (!f.merged()) {
      return;
    }
    b.append(f.indent()).append("# ---- proposed by egret propose: ").append(summary).append(".\n");
    if (rules.isEmpty()) {
      b.append(f.indent()).append("# no hop in the log needs a rule FILE does not have\n");
    }
  }

  private void notes(StringBuilder b, String indent) {
    if (notes == null) {
      return;
    }
    for (int i = 0; i < notes.size(); i++) {
      b.append(indent).append("# not proposed (").append(plural(notes.count(i), "hop"))
          .append("): ").append(notes.key(i)).append('\n');
    }
    if (notes.other() > 0) {
      b.append(indent).append("# not proposed (").append(plural(notes.other(), "hop"))
          .append("): more kinds of hops that only a change to FILE can admit\n");
    }
  }

  private static void incomplete(StringBuilder b, String indent, long leftRules, long leftHosts,
      long leftHops, long uncounted) {
    if (leftRules > 0) {
      b.append(indent).append(INCOMPLETE).append(leftRules).append(" proposed rules (for ")
          .append(leftHosts).append(" hosts, ").append(leftHops).append(" hops) did not fit in "
              + "the ").append(MAX_BYTES >> 20).append(" MiB a config file may have; they are "
              + "the last in name order. Fold hosts with --group N, or propose from a part of "
              + "the log at a time.\n");
    }
    if (uncounted > 0) {
      b.append(indent).append(INCOMPLETE).append(uncounted).append(" hops to destinations past "
          + "the first ").append(Propose.MAX_DESTINATIONS).append(" (host and port) were not "
          + "counted, and no rule here names them. Propose from a part of the log at a time.\n");
    }
  }

  private static void rule(StringBuilder b, Proposed r, String indent) {
    Seen s = r.seen();
    b.append(indent).append("# ").append(plural(s.hops, "hop")).append(" (").append(s.kinds())
        .append(")");
    if (!Seen.isEmpty(s.methods)) {
      b.append("; methods ").append(s.methods.top(6));
    }
    b.append('\n');
    if (!Seen.isEmpty(s.paths)) {
      b.append(indent).append("#   paths ").append(s.paths.top(8)).append('\n');
    }
    if (r.host().startsWith("**.")) {
      int named = Math.min(8, s.hosts.size());
      b.append(indent).append("#   folds ").append(s.folded).append(" hosts, most hops: ")
          .append(s.hosts.top(named, false));
      if (s.folded > named) {
        b.append(", +").append(s.folded - named).append(" more");
      }
      b.append('\n');
    }
    if (!Seen.isEmpty(s.errors)) {
      b.append(indent).append("#   errors ").append(s.errors.top(4)).append('\n');
    }
    if (s.deniedBecause != null) {
      for (int i = 0; i < s.deniedBecause.size(); i++) {
        b.append(indent).append("#   FILE denied: ").append(s.deniedBecause.key(i)).append('\n');
      }
    }
    b.append(indent).append("- host: \"").append(r.host()).append("\"\n");
    String inner = indent + "  ";
    b.append(inner).append("ports: [").append(r.port()).append("]\n");
    if (s.plaintext()) {
      b.append(inner).append("plaintext: upgrade   # http:// seen in ")
          .append(plural(s.kinds[dev.egret.policy.Kind.UPGRADE.ordinal()], "hop")).append('\n');
    }
  }

  private static String plural(long n, String noun) {
    return n + " " + noun + (n == 1 ? "" : "s");
  }

  /** UTF-8 length of {@code s}, without encoding it. */
  static long bytes(CharSequence s) {
    long n = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < 0x80) {
        n++;
      } else if (c < 0x800) {
        n += 2;
      } else if (Character.isHighSurrogate(c) && i + 1 < s.length()
          && Character.isLowSurrogate(s.charAt(i + 1))) {
        n += 4;
        i++;
      } else {
        n += 3;
      }
    }
    return n;
  }

  /** Where FILE's {@code allow:} key is, and the next top-level key after it. */
  private record Layout(int allowLine, boolean emptyFlow, int nextKeyLine, int modeLine) {}

  private static Layout layout(String text, EgretConfig config) throws CannotMerge {
    try (JsonParser p = YAML.createParser(text)) {
      if (p.nextToken() != JsonToken.START_OBJECT) {
        throw new CannotMerge(config.file() + " is not a YAML mapping");
      }
      int allowLine = -1;
      boolean emptyFlow = false;
      int next = -1;
      int mode = -1;
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        int line = p.currentTokenLocation().getLineNr();
        String key = p.currentName();
        if (allowLine > 0 && next < 0) {
          next = line;
        }
        JsonToken value = p.nextToken();
        if (key.equals("mode")) {
          mode = line;
        }
        if (key.equals("allow")) {
          allowLine = line;
          JsonLocation at = p.currentTokenLocation();
          String valueLine = text.split("\n", -1)[at.getLineNr() - 1];
          boolean flow = at.getColumnNr() - 1 < valueLine.length()
              && valueLine.charAt(at.getColumnNr() - 1) == '[';
          if (flow) {
            boolean empty = p.nextToken() == JsonToken.END_ARRAY;
            if (!empty) {
              throw new CannotMerge(config.file() + ":" + line + ": allow: is a flow list "
                  + "([...]); write it as a block list (- host: ...) so propose can add rules");
            }
            emptyFlow = true;
            continue;
          }
        }
        if (value == JsonToken.START_OBJECT || value == JsonToken.START_ARRAY) {
          p.skipChildren();
        }
      }
      if (allowLine < 0) {
        throw new CannotMerge(config.file() + " has no allow: list");
      }
      return new Layout(allowLine, emptyFlow, next, mode);
    } catch (IOException e) {
      throw new CannotMerge("cannot read the layout of " + config.file() + ": " + e.getMessage());
    }
  }
}
