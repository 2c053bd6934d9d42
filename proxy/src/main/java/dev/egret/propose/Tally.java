package dev.egret.propose;

import java.util.Arrays;
import java.util.Comparator;

/**
 * Counts per key for at most {@code cap} keys; once full, a new key is counted under "other", so
 * a log of endless distinct paths costs a bounded amount per rule. The counts shown are exact:
 * the first {@code cap} keys seen, and the rest summed. Small parallel arrays rather than a map:
 * most rules see one or two keys, and there are up to {@link Propose#MAX_DESTINATIONS} of them.
 */
final class Tally {
  static final String OTHER = "other";

  /**
   * New keys left for every tally that shares it: past the per-tally cap, this bounds what all
   * destinations' tallies hold together, however each log line varies its paths and errors.
   */
  static final class Budget {
    private long left;

    Budget(long keys) {
      this.left = keys;
    }

    boolean take() {
      if (left <= 0) {
        return false;
      }
      left--;
      return true;
    }
  }

  private final int cap;
  private String[] keys = new String[1];
  private long[] counts = new long[1];
  private int size;
  private long other;

  Tally(int cap) {
    this.cap = cap;
  }

  void add(String key, long n) {
    add(key, n, null);
  }

  /** Counts {@code n} for {@code key}; a new key takes one from {@code budget} (null: none). */
  void add(String key, long n, Budget budget) {
    for (int i = 0; i < size; i++) {
      if (keys[i].equals(key)) {
        counts[i] += n;
        return;
      }
    }
    if (size == cap || (budget != null && !budget.take())) {
      other += n;
      return;
    }
    if (size == keys.length) {
      int grown = Math.min(cap, size * 2);
      keys = Arrays.copyOf(keys, grown);
      counts = Arrays.copyOf(counts, grown);
    }
    keys[size] = key;
    counts[size++] = n;
  }

  void addAll(Tally t) {
    for (int i = 0; i < t.size; i++) {
      add(t.keys[i], t.counts[i]);
    }
    other += t.other;
  }

  boolean isEmpty() {
    return size == 0 && other == 0;
  }

  /** Distinct keys, "other" counted as one. */
  int entries() {
    return size + (other > 0 ? 1 : 0);
  }

  String key(int i) {
    return keys[i];
  }

  long count(int i) {
    return counts[i];
  }

  /** Keys kept, "other" not counted. */
  int size() {
    return size;
  }

  /** The hops counted under "other": keys past the cap. */
  long other() {
    return other;
  }

  /** {@code GET 10, POST 2}: the most frequent first, at most {@code max}, then "+N more". */
  String top(int max) {
    return top(max, true);
  }

  /**
   * The most frequent keys first, at most {@code max}; with {@code withOther}, "other" among
   * them and "+N more" after them. Without, only keys: the caller knows what "more" is.
   */
  String top(int max, boolean withOther) {
    Integer[] order = new Integer[withOther ? entries() : size];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, Comparator.<Integer>comparingLong(this::countOrOther).reversed()
        .thenComparing(this::name));
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < order.length && i < max; i++) {
      if (i > 0) {
        b.append(", ");
      }
      b.append(name(order[i])).append(' ').append(countOrOther(order[i]));
    }
    if (withOther && order.length > max) {
      b.append(", +").append(order.length - max).append(" more");
    }
    return b.toString();
  }

  private long countOrOther(int i) {
    return i < size ? counts[i] : other;
  }

  private String name(int i) {
    return i < size ? keys[i] : OTHER;
  }
}
