package dev.egret.propose;

import dev.egret.policy.Kind;
import dev.egret.policy.Target;
import java.util.regex.Pattern;

/**
 * What was seen for one proposed rule: hop counts by kind, method, path prefix and error. Each
 * tally is created on its first key and capped at {@link #MAX_KEYS}, and all of them together at
 * {@link #MAX_KEYS_IN_ALL} (past either, new keys are counted under "other"), so memory is
 * bounded however the log varies, and a host seen only through tunnels carries no method or path
 * tally at all.
 */
final class Seen {
  /** Keys kept per tally: twice the most any comment shows, so its top entries are real ones. */
  static final int MAX_KEYS = 16;
  /**
   * New keys kept in all destinations' tallies together (a key is a string of at most 160
   * characters): about 100 MB at worst, and a log of 100,000 hosts that each saw a method and a
   * path stays well inside it. Past it, new keys are counted under "other".
   */
  static final int MAX_KEYS_IN_ALL = 400_000;
  private static final Pattern METHOD = Pattern.compile("[A-Z]{1,16}");

  long hops;
  /** Hops by {@link Kind#ordinal()}. */
  final long[] kinds = new long[Kind.values().length];
  Tally methods;
  Tally paths;
  Tally errors;
  /** FILE's reasons for denying these hops (with --config), e.g. "path /x is not in ...". */
  Tally deniedBecause;
  /** For a {@code **.} rule: its hosts by hops. */
  Tally hosts;
  /** For a {@code **.} rule: how many seen hosts it folds (exact; {@link #hosts} is capped). */
  long folded;

  /** Counts one hop; its new keys take from {@code budget}, shared by every destination. */
  void add(Sighting s, Tally.Budget budget) {
    Target t = s.target();
    hops++;
    kinds[t.kind().ordinal()]++;
    if (t.kind() != Kind.TUNNEL) {
      methods = count(methods, METHOD.matcher(t.method()).matches() ? t.method() : "other", budget);
      paths = count(paths, prefix(t.path()), budget);
    }
    if (!s.error().equals("none")) {
      errors = count(errors, Comments.safe(s.error(), 40), budget);
    }
  }

  void denied(String because, Tally.Budget budget) {
    deniedBecause = count(deniedBecause, because, budget);
  }

  private static Tally count(Tally t, String key, Tally.Budget budget) {
    Tally into = t == null ? new Tally(MAX_KEYS) : t;
    into.add(key, 1, budget);
    return into;
  }

  /** Adds one host's sightings to this {@code **.} rule's. */
  void fold(String host, Seen other) {
    hops += other.hops;
    for (int i = 0; i < kinds.length; i++) {
      kinds[i] += other.kinds[i];
    }
    methods = merge(methods, other.methods);
    paths = merge(paths, other.paths);
    errors = merge(errors, other.errors);
    deniedBecause = merge(deniedBecause, other.deniedBecause);
    hosts = hosts == null ? new Tally(MAX_KEYS) : hosts;
    hosts.add(host, other.hops);
    folded++;
  }

  boolean plaintext() {
    return kinds[Kind.UPGRADE.ordinal()] > 0;
  }

  /** {@code tunnel 3, upgrade 1}, the most frequent first. */
  String kinds() {
    Tally t = new Tally(kinds.length);
    for (Kind k : Kind.values()) {
      if (kinds[k.ordinal()] > 0) {
        t.add(k.label(), kinds[k.ordinal()]);
      }
    }
    return t.top(kinds.length);
  }

  private static Tally merge(Tally into, Tally from) {
    if (from == null) {
      return into;
    }
    Tally t = into == null ? new Tally(MAX_KEYS) : into;
    t.addAll(from);
    return t;
  }

  static boolean isEmpty(Tally t) {
    return t == null || t.isEmpty();
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
}
