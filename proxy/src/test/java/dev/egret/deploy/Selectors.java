package dev.egret.deploy;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The series selectors of a PromQL text, enough to ask "could this selector ever match the series
 * Egret exports?": {@code Selectors.in(expr)} gives every {@code metric{label op "value", ...}}
 * with its matchers, and {@link Selector#matches} evaluates them as Prometheus does (regexes are
 * fully anchored; a missing label is the empty string).
 *
 * <p>Grafana variables must be substituted first ({@code $destination} is not a value).
 */
record Selectors(List<Selector> all) {

  private static final Pattern SELECTOR =
      Pattern.compile("([a-zA-Z_:][a-zA-Z0-9_:]*)?\\{([^{}]*)\\}");
  private static final Pattern MATCHER =
      Pattern.compile("\\s*([a-zA-Z_][a-zA-Z0-9_]*)\\s*(=~|!~|!=|=)\\s*\"((?:[^\"\\\\]|\\\\.)*)\"\\s*(,|$)");

  /** One matcher: {@code label op value}. */
  record LabelMatcher(String label, String op, String value) {
    boolean matches(Map<String, String> labels) {
      String actual = labels.getOrDefault(label, "");
      return switch (op) {
        case "=" -> actual.equals(value);
        case "!=" -> !actual.equals(value);
        case "=~" -> Pattern.compile("^(?:" + value + ")$").matcher(actual).matches();
        case "!~" -> !Pattern.compile("^(?:" + value + ")$").matcher(actual).matches();
        default -> throw new IllegalStateException(op);
      };
    }
  }

  /** {@code metric{matchers}}; metric is empty for a bare {@code {...}}. */
  record Selector(String metric, List<LabelMatcher> matchers, String text) {
    boolean matches(String name, Map<String, String> labels) {
      if (!metric.isEmpty() && !metric.equals(name)) {
        return false;
      }
      return matchers.stream().allMatch(m -> m.matches(labels));
    }

    /** The matchers on one label (none when the selector does not filter on it). */
    List<LabelMatcher> on(String label) {
      return matchers.stream().filter(m -> m.label().equals(label)).toList();
    }
  }

  static Selectors in(String promql) {
    List<Selector> found = new ArrayList<>();
    // by (...) and without (...) use parentheses, so braces are always selectors here.
    Matcher m = SELECTOR.matcher(promql);
    while (m.find()) {
      String metric = m.group(1) == null ? "" : m.group(1);
      found.add(new Selector(metric, parseMatchers(m.group(2), m.group()), m.group()));
    }
    return new Selectors(List.copyOf(found));
  }

  private static List<LabelMatcher> parseMatchers(String body, String context) {
    List<LabelMatcher> out = new ArrayList<>();
    Matcher m = MATCHER.matcher(body);
    int at = 0;
    while (at < body.length() && !body.substring(at).isBlank()) {
      if (!m.find(at) || m.start() != at) {
        throw new IllegalArgumentException("cannot read the label matchers of " + context + " at: " + body.substring(at));
      }
      out.add(new LabelMatcher(m.group(1), m.group(2), m.group(3).replace("\\\\", "\\").replace("\\\"", "\"")));
      at = m.end();
    }
    return out;
  }

  /** A series as a map, for tests: {@code series("job", "egret", "outcome", "denied")}. */
  static Map<String, String> labels(String... pairs) {
    Map<String, String> map = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2) {
      map.put(pairs[i], pairs[i + 1]);
    }
    return map;
  }
}
