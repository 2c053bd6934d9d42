package dev.egret.propose;

import dev.egret.policy.Kind;
import dev.egret.policy.Target;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * What was seen for one proposed rule: hop counts by kind, method, path prefix and error, and
 * whether plain {@code http://} was seen. Every map is capped: past the cap, new keys are counted
 * under "other", so a log full of distinct paths costs a bounded amount of memory.
 */
final class Seen {
  static final int MAX_KEYS = 64;
  private static final Pattern METHOD = Pattern.compile("[A-Z]{1,16}");

  long hops;
  final Map<String, Long> kinds = new LinkedHashMap<>();
  final Map<String, Long> methods = new LinkedHashMap<>();
  final Map<String, Long> paths = new LinkedHashMap<>();
  final Map<String, Long> errors = new LinkedHashMap<>();
  final Map<String, Long> hosts = new LinkedHashMap<>();
  /** FILE's reasons for denying these hops (with --config), e.g. "path /x is not in ...". */
  final Map<String, Long> deniedBecause = new LinkedHashMap<>();
  boolean plaintext;
  /** For a {@code **.} rule: how many seen hosts it folds (exact; {@link #hosts} is capped). */
  long folded;

  void add(Sighting s) {
    Target t = s.target();
    hops++;
    count(kinds, t.kind().label());
    count(hosts, t.host());
    if (t.kind() == Kind.UPGRADE) {
      plaintext = true;
    }
    if (t.kind() != Kind.TUNNEL) {
      count(methods, METHOD.matcher(t.method()).matches() ? t.method() : "other");
      count(paths, prefix(t.path()));
    }
    if (!s.error().equals("none")) {
      count(errors, Comments.safe(s.error(), 40));
    }
  }

  void addAll(Seen other) {
    hops += other.hops;
    plaintext |= other.plaintext;
    other.kinds.forEach((k, v) -> count(kinds, k, v));
    other.methods.forEach((k, v) -> count(methods, k, v));
    other.paths.forEach((k, v) -> count(paths, k, v));
    other.errors.forEach((k, v) -> count(errors, k, v));
    other.hosts.forEach((k, v) -> count(hosts, k, v));
    other.deniedBecause.forEach((k, v) -> count(deniedBecause, k, v));
    folded++;
  }

  static void count(Map<String, Long> map, String key) {
    count(map, key, 1);
  }

  static void count(Map<String, Long> map, String key, long n) {
    if (map.containsKey(key) || map.size() < MAX_KEYS) {
      map.merge(key, n, Long::sum);
    } else {
      map.merge("other", n, Long::sum);
    }
  }

  /** The first two segments of a path: {@code /v1/orders/123} gives {@code /v1/orders}. */
  static String prefix(String path) {
    if (path == null || path.isEmpty()) {
      return "/";
    }
    int slashes = 0;
    int end = path.length();
    for (int i = 0; i < path.length(); i++) {
      if (path.charAt(i) == '/' && ++slashes == 3) {
        end = i;
        break;
      }
    }
    return Comments.safe(path.substring(0, end), 80);
  }

  /** {@code GET 10, POST 2}: the most frequent first, at most {@code max}, then "+N more". */
  static String top(Map<String, Long> map, int max) {
    List<Map.Entry<String, Long>> entries = new ArrayList<>(map.entrySet());
    entries.sort(Map.Entry.<String, Long>comparingByValue(Comparator.reverseOrder())
        .thenComparing(Map.Entry.comparingByKey()));
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < entries.size() && i < max; i++) {
      if (i > 0) {
        b.append(", ");
      }
      b.append(entries.get(i).getKey()).append(' ').append(entries.get(i).getValue());
    }
    if (entries.size() > max) {
      b.append(", +").append(entries.size() - max).append(" more");
    }
    return b.toString();
  }
}
