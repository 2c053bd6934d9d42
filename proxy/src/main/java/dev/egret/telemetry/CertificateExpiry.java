package dev.egret.telemetry;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.RemovalCause;
import com.github.benmanes.caffeine.cache.Ticker;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The {@code egret_upstream_certificate_expiry_timestamp_seconds} series: one gauge per
 * (destination, host) that completed a handshake, holding the leaf's notAfter.
 *
 * <p>Bounded twice, because a wildcard rule admits any number of host names: each destination
 * (rule) keeps at most {@code hostsPerDestination} hosts in its own cache (Caffeine's size
 * eviction: a host seen once gives way to the ones seen often), and an entry not refreshed by a
 * new handshake within the retention ages out. Either way its series disappears, so a host a
 * wildcard rule reached once does not stay on the dashboard (or trigger an expiry alert)
 * forever. The destinations themselves come from the config; {@link #MAX_DESTINATIONS} caps them
 * in case many reloads keep naming new rules. Thread-safe.
 */
final class CertificateExpiry {
  /** Hosts one rule exports at once: enough for a wildcard's real instances, not for a scan. */
  static final int MAX_HOSTS_PER_DESTINATION = 64;
  /** Rules with an expiry cache; far above a real allowlist's size. */
  static final int MAX_DESTINATIONS = 1024;

  /** Registers the gauge of one (destination, host, notAfter supplier). */
  interface GaugeFactory {
    Gauge register(String destination, String host, Supplier<Number> notAfterSeconds);
  }

  /** The exported value and the gauge that reads it; the gauge goes when the entry goes. */
  private record Entry(AtomicLong notAfterSeconds, Gauge gauge) {}

  private final GaugeFactory gauges;
  private final Consumer<Meter> remove;
  private final Duration retention;
  private final Ticker ticker;
  private final int hostsPerDestination;
  private final ConcurrentHashMap<String, Cache<String, Entry>> byDestination =
      new ConcurrentHashMap<>();

  CertificateExpiry(GaugeFactory gauges, Consumer<Meter> remove, Duration retention,
      Ticker ticker, int hostsPerDestination) {
    this.gauges = gauges;
    this.remove = remove;
    this.retention = retention;
    this.ticker = ticker;
    this.hostsPerDestination = hostsPerDestination;
  }

  /** Records the leaf an upstream presented; a new handshake refreshes the entry's age. */
  void record(String destination, String host, X509Certificate leaf) {
    Cache<String, Entry> hosts = byDestination.get(destination);
    if (hosts == null) {
      if (byDestination.size() >= MAX_DESTINATIONS) {
        return;
      }
      hosts = byDestination.computeIfAbsent(destination, d -> newCache());
    }
    long notAfter = leaf.getNotAfter().toInstant().getEpochSecond();
    hosts.asMap().compute(host, (h, current) -> {
      if (current != null) {
        current.notAfterSeconds().set(notAfter);
        return current;
      }
      AtomicLong value = new AtomicLong(notAfter);
      return new Entry(value, gauges.register(destination, h, value::get));
    });
  }

  private Cache<String, Entry> newCache() {
    return Caffeine.newBuilder()
        .expireAfterWrite(retention)
        .maximumSize(hostsPerDestination)
        .ticker(ticker)
        // Run maintenance on the calling thread: no pool threads, and cleanUp() is synchronous.
        .executor(Runnable::run)
        // An eviction listener runs atomically with the eviction, before a new handshake for the
        // same key can register a gauge again; Micrometer would otherwise hand the new entry the
        // old gauge (same name and tags) and the listener would then remove it.
        .evictionListener((String host, Entry entry, RemovalCause cause) -> {
          if (entry != null) {
            remove.accept(entry.gauge());
          }
        })
        .build();
  }

  /** Drops aged-out and over-cap entries now, rather than on the next write. Before each scrape. */
  void cleanUp() {
    byDestination.values().forEach(Cache::cleanUp);
  }

  /** Hosts exported now, over every destination (an estimate until {@link #cleanUp}). */
  long size() {
    return byDestination.values().stream().mapToLong(Cache::estimatedSize).sum();
  }
}
