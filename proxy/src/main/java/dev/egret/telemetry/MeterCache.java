package dev.egret.telemetry;

import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * The meters already built, by their label values, so that recording one is a map lookup rather
 * than a Micrometer builder and registry lookup per call. Usage: {@code cache.get(key, k ->
 * Counter.builder(...).tags(...).register(registry))}.
 *
 * <p>Bounded: label values come from fixed sets and the config, so the number of keys is small;
 * should a bug (or many reloads with changing rules) ever push it past {@link #MAX_ENTRIES}, new
 * keys are no longer remembered and each call registers again, which Micrometer answers with the
 * already registered meter. Slower, never wrong, never growing. Thread-safe.
 */
final class MeterCache<K, M> {
  /** Far above what a config produces (rules × kinds × outcomes × errors in use). */
  static final int MAX_ENTRIES = 4096;

  private final ConcurrentHashMap<K, M> meters = new ConcurrentHashMap<>();
  private final int maxEntries;

  MeterCache() {
    this(MAX_ENTRIES);
  }

  MeterCache(int maxEntries) {
    this.maxEntries = maxEntries;
  }

  /** The meter for {@code key}, built by {@code build} the first time. */
  M get(K key, Function<? super K, ? extends M> build) {
    M m = meters.get(key);
    if (m != null) {
      return m;
    }
    if (meters.size() >= maxEntries) {
      return build.apply(key);
    }
    return meters.computeIfAbsent(key, build);
  }

  int size() {
    return meters.size();
  }
}
