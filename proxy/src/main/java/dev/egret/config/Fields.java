package dev.egret.config;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Typed reads from one YAML mapping, reporting wrong types and unknown keys to the shared error
 * list instead of throwing, so one pass finds every problem. A failed read returns the fallback
 * and the caller carries on.
 */
final class Fields {
  /** How the top-level mapping is named in messages; its keys' paths are the bare key. */
  static final String TOP = "the config";
  private static final Pattern DURATION = Pattern.compile("([0-9]{1,9})(ms|s|m|h)");

  private final YamlNode.Mapping map;
  private final String where;
  private final ConfigErrors errors;

  private Fields(YamlNode.Mapping map, String where, ConfigErrors errors) {
    this.map = map;
    this.where = where;
    this.errors = errors;
  }

  /**
   * Opens a mapping for reading, reporting keys outside {@code known}; returns null (after
   * reporting) when the node is not a mapping.
   */
  static Fields of(YamlNode node, String where, Set<String> known, ConfigErrors errors) {
    if (!(node instanceof YamlNode.Mapping m)) {
      errors.add(node, where + " must be a mapping (key: value lines), not " + node.describe());
      return null;
    }
    for (YamlNode.Entry e : m.entries().values()) {
      if (!known.contains(e.key())) {
        errors.add(e.line(), e.column(), "unknown key '" + e.key() + "' in " + where
            + closest(e.key(), known) + "; accepted keys: " + String.join(", ", known));
      }
    }
    return new Fields(m, where, errors);
  }

  private static String closest(String key, Set<String> known) {
    for (String k : known) {
      if (k.equalsIgnoreCase(key) || distance(k.toLowerCase(Locale.ROOT), key.toLowerCase(Locale.ROOT)) <= 2) {
        return " (did you mean '" + k + "'?)";
      }
    }
    return "";
  }

  private static int distance(String a, String b) {
    int[] prev = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      prev[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      int[] cur = new int[b.length() + 1];
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
        cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
      }
      prev = cur;
    }
    return prev[b.length()];
  }

  YamlNode.Mapping node() {
    return map;
  }

  /** The value node of a key, or null when absent (an explicit empty value counts as absent). */
  YamlNode get(String key) {
    YamlNode.Entry e = map.entries().get(key);
    if (e == null) {
      return null;
    }
    if (e.value() instanceof YamlNode.Scalar s && s.type() == YamlNode.ScalarType.NULL) {
      return null;
    }
    return e.value();
  }

  String path(String key) {
    return where.isEmpty() || where.equals(TOP) ? key : where + "." + key;
  }

  /** A required string; reports and returns null when missing or not a string. */
  String requiredString(String key) {
    YamlNode n = get(key);
    if (n == null) {
      errors.add(map, where + " needs '" + key + "'");
      return null;
    }
    return string(n, path(key));
  }

  String string(String key, String fallback) {
    YamlNode n = get(key);
    if (n == null) {
      return fallback;
    }
    String s = string(n, path(key));
    return s == null ? fallback : s;
  }

  String string(YamlNode n, String what) {
    if (n instanceof YamlNode.Scalar s && s.type() == YamlNode.ScalarType.STRING) {
      return s.text();
    }
    errors.add(n, what + " must be text, not " + n.describe());
    return null;
  }

  /** One of a fixed set of words, case-insensitive; returns the canonical (lower-case) form. */
  String choice(String key, List<String> allowed, String fallback) {
    YamlNode n = get(key);
    if (n == null) {
      return fallback;
    }
    String s = string(n, path(key));
    if (s == null) {
      return fallback;
    }
    for (String a : allowed) {
      if (a.equalsIgnoreCase(s)) {
        return a;
      }
    }
    errors.add(n, path(key) + " is '" + s + "'; use one of: " + String.join(", ", allowed));
    return fallback;
  }

  Integer integer(String key, int min, int max, Integer fallback) {
    YamlNode n = get(key);
    if (n == null) {
      return fallback;
    }
    Integer v = integer(n, path(key), min, max);
    return v == null ? fallback : v;
  }

  Integer integer(YamlNode n, String what, int min, int max) {
    if (n instanceof YamlNode.Scalar s && s.type() == YamlNode.ScalarType.INTEGER) {
      try {
        long v = Long.parseLong(s.text());
        if (v >= min && v <= max) {
          return (int) v;
        }
      } catch (NumberFormatException e) {
        // falls through to the range message
      }
      errors.add(n, what + " is " + s.text() + "; it must be a whole number from " + min + " to " + max);
      return null;
    }
    errors.add(n, what + " must be a whole number from " + min + " to " + max + ", not " + n.describe());
    return null;
  }

  Boolean bool(String key, Boolean fallback) {
    YamlNode n = get(key);
    if (n == null) {
      return fallback;
    }
    if (n instanceof YamlNode.Scalar s && s.type() == YamlNode.ScalarType.BOOLEAN) {
      return Boolean.parseBoolean(s.text().toLowerCase(Locale.ROOT));
    }
    errors.add(n, path(key) + " must be true or false, not " + n.describe());
    return fallback;
  }

  /** A number from {@code min} to {@code max}, both included ({@code 0}, {@code 0.25}, {@code 1}). */
  Double number(String key, double min, double max, Double fallback) {
    YamlNode n = get(key);
    if (n == null) {
      return fallback;
    }
    if (n instanceof YamlNode.Scalar s && (s.type() == YamlNode.ScalarType.FLOAT
        || s.type() == YamlNode.ScalarType.INTEGER)) {
      try {
        double v = Double.parseDouble(s.text());
        if (v >= min && v <= max) {
          return v;
        }
      } catch (NumberFormatException e) {
        // falls through to the range message
      }
    }
    errors.add(n, path(key) + " must be a number from " + min + " to " + max + ", not "
        + n.describe());
    return fallback;
  }

  Duration duration(String key, Duration fallback) {
    YamlNode n = get(key);
    if (n == null) {
      return fallback;
    }
    String text = n instanceof YamlNode.Scalar s ? s.text() : null;
    Matcher m = text == null ? null : DURATION.matcher(text);
    if (m == null || !m.matches() || Long.parseLong(m.group(1)) == 0) {
      errors.add(n, path(key) + " must be a positive duration such as 250ms, 5s or 2m, not "
          + n.describe());
      return fallback;
    }
    long v = Long.parseLong(m.group(1));
    return switch (m.group(2)) {
      case "ms" -> Duration.ofMillis(v);
      case "s" -> Duration.ofSeconds(v);
      case "m" -> Duration.ofMinutes(v);
      default -> Duration.ofHours(v);
    };
  }

  /** A list; a single scalar is an error (not silently wrapped), absent gives null. */
  List<YamlNode> list(String key) {
    YamlNode n = get(key);
    if (n == null) {
      return null;
    }
    if (n instanceof YamlNode.Sequence s) {
      return s.items();
    }
    errors.add(n, path(key) + " must be a list such as [a, b], not " + n.describe());
    return null;
  }

  /** A list of strings, each mapped by {@code parse} (which throws IllegalArgumentException). */
  <T> List<T> stringList(String key, Function<String, T> parse) {
    List<YamlNode> items = list(key);
    if (items == null) {
      return null;
    }
    List<T> out = new ArrayList<>();
    for (int i = 0; i < items.size(); i++) {
      YamlNode item = items.get(i);
      String s = string(item, path(key) + "[" + i + "]");
      if (s == null) {
        continue;
      }
      try {
        out.add(parse.apply(s));
      } catch (IllegalArgumentException e) {
        errors.add(item, path(key) + "[" + i + "]: " + e.getMessage());
      }
    }
    return out;
  }

  ConfigErrors errors() {
    return errors;
  }
}
