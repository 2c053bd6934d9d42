package dev.egret.propose;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
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
 */
final class ProposalWriter {
  private static final YAMLFactory YAML = new YAMLFactory();
  private static final Pattern EMPTY_FLOW = Pattern.compile("^(\\s*allow:)\\s*\\[\\s*\\](\\s*#.*)?$");
  static final String UNUSED = "# egret propose: no hop in the log matched this rule";

  private final String summary;
  private final List<Proposed> rules;
  private final Map<String, Long> notes;
  private final long leftOut;

  ProposalWriter(String summary, List<Proposed> rules, Map<String, Long> notes, long leftOut) {
    this.summary = summary;
    this.rules = rules;
    this.notes = notes;
    this.leftOut = leftOut;
  }

  /** FILE's layout is one propose cannot edit safely. */
  static final class CannotMerge extends Exception {
    CannotMerge(String message) {
      super(message);
    }
  }

  String standalone() {
    StringBuilder b = new StringBuilder();
    b.append("# Proposed by egret propose: ").append(summary).append(".\n");
    b.append("# Review every rule (the comments say what was seen), then deploy it.\n");
    b.append("version: 1\n");
    b.append("mode: enforce\n");
    b.append("plaintext: block      # http:// is upgraded only where a rule says so (it was seen there)\n");
    if (rules.isEmpty()) {
      b.append("allow: []             # the log showed no destination\n");
    } else {
      b.append("allow:\n");
      rules(b, "  ");
    }
    return b.toString();
  }

  String merged(EgretConfig config, Set<Integer> used) throws CannotMerge {
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
    Map<Integer, List<String>> before = new HashMap<>(); // 0-based line -> lines to print before it
    if (layout.modeLine > 0 && config.allowlist().mode() == Mode.REPORT) {
      before.computeIfAbsent(layout.modeLine - 1, k -> new ArrayList<>()).add("# egret propose: "
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
        before.computeIfAbsent(r.line() - 1, k -> new ArrayList<>())
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
      lines.set(layout.allowLine - 1, m.group(1) + (m.group(2) == null ? "" : m.group(2)));
      insertAt = layout.allowLine;
    } else {
      insertAt = layout.nextKeyLine < 0 ? lines.size() : layout.nextKeyLine - 1;
      // Blank lines and top-level comments just above the next key belong to that key.
      while (insertAt > layout.allowLine && (lines.get(insertAt - 1).isBlank()
          || lines.get(insertAt - 1).startsWith("#"))) {
        insertAt--;
      }
    }
    StringBuilder proposed = new StringBuilder();
    proposed.append(indent).append("# ---- proposed by egret propose: ").append(summary)
        .append(".\n");
    if (rules.isEmpty()) {
      proposed.append(indent).append("# no hop in the log needs a rule FILE does not have\n");
    }
    rules(proposed, indent);
    List<String> add = new ArrayList<>(List.of(proposed.toString().split("\n")));
    before.computeIfAbsent(insertAt, k -> new ArrayList<>()).addAll(add);

    StringBuilder b = new StringBuilder();
    for (int i = 0; i <= lines.size(); i++) {
      for (String extra : before.getOrDefault(i, List.of())) {
        b.append(extra).append('\n');
      }
      if (i < lines.size()) {
        b.append(lines.get(i)).append('\n');
      }
    }
    return b.toString();
  }

  private void rules(StringBuilder b, String indent) {
    for (Proposed r : rules) {
      Seen s = r.seen();
      b.append(indent).append("# ").append(plural(s.hops, "hop")).append(" (").append(Seen.top(s.kinds, 3))
          .append(")");
      if (!s.methods.isEmpty()) {
        b.append("; methods ").append(Seen.top(s.methods, 6));
      }
      b.append('\n');
      if (!s.paths.isEmpty()) {
        b.append(indent).append("#   paths ").append(Seen.top(s.paths, 8)).append('\n');
      }
      if (r.host().startsWith("**.")) {
        Map<String, Long> named = new java.util.LinkedHashMap<>(s.hosts);
        named.remove("other"); // the capped remainder, not a host
        b.append(indent).append("#   folds ").append(s.folded).append(" hosts, most hops: ")
            .append(Seen.top(named, 8)).append('\n');
      }
      if (!s.errors.isEmpty()) {
        b.append(indent).append("#   errors ").append(Seen.top(s.errors, 4)).append('\n');
      }
      for (String why : s.deniedBecause.keySet()) {
        b.append(indent).append("#   FILE denied: ").append(why).append('\n');
      }
      b.append(indent).append("- host: \"").append(r.host()).append("\"\n");
      String inner = indent + "  ";
      b.append(inner).append("ports: [").append(r.port()).append("]\n");
      if (s.plaintext) {
        b.append(inner).append("plaintext: upgrade   # http:// seen in ")
            .append(plural(s.kinds.getOrDefault("upgrade", 0L), "hop")).append('\n');
      }
    }
    for (Map.Entry<String, Long> n : notes.entrySet()) {
      b.append(indent).append("# not proposed (").append(plural(n.getValue(), "hop")).append("): ")
          .append(n.getKey()).append('\n');
    }
    if (leftOut > 0) {
      b.append(indent).append("# INCOMPLETE: ").append(leftOut).append(" hops to more than ")
          .append(Propose.MAX_DESTINATIONS).append(" destinations were left out\n");
    }
  }

  private static String plural(long n, String noun) {
    return n + " " + noun + (n == 1 ? "" : "s");
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
