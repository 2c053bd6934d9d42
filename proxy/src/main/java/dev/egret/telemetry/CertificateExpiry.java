package dev.egret.telemetry;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Ticker;
import io.micrometer.core.instrument.Gauge;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The {@code egret_upstream_certificate_expiry_timestamp_seconds} series: one gauge per
 * (destination, host) that completed a handshake, holding the leaf's notAfter. An entry not
 * refreshed by a new handshake within the retention ages out and its series disappears, so a host
 * a wildcard rule reached once does not stay on the dashboard (or trigger an expiry alert)
 * forever. Thread-safe.
 */
final class CertificateExpiry {
  /** At most this many series, whatever the wildcard rules let through. */
  static final long MAX_ENTRIES = 10_000;

  private record Key(String destination, String host) {}

  /** The exported value and the gauge that reads it; the gauge goes when the entry goes. */
  private record Entry(AtomicLong notAfterSeconds, Gauge gauge) {}

  private final EgretMeters meters;
  private final Cache<Key, Entry> entries;

  CertificateExpiry(EgretMeters meters, Duration retention, Ticker ticker) {
    this.meters = meters;
    this.entries = Caffeine.newBuilder()
        .expireAfterWrite(retention)
        .maximumSize(MAX_ENTRIES)
        .ticker(ticker)
        // Run maintenance on the calling thread: no pool threads, and cleanUp() is synchronous.
        .executor(Runnable::run)
        // An eviction listener runs atomically with the eviction, before a new handshake for the
        // same key can register a gauge again; Micrometer would otherwise hand the new entry the
        // old gauge (same name and tags) and the listener would then remove it.
        .evictionListener((Key key, Entry entry, com.github.benmanes.caffeine.cache.RemovalCause
            cause) -> {
          if (entry != null) {
            meters.remove(entry.gauge());
          }
        })
        .build();
  }

  /** Records the leaf an upstream presented; a new handshake refreshes the entry's age. */
  void record(String destination, String host, X509Certificate leaf) {
    long notAfter = leaf.getNotAfter().toInstant().getEpochSecond();
    entries.asMap().compute(new Key(destination, host), (key, current) -> {
      if (current != null) {
        current.notAfterSeconds().set(notAfter);
        return current;
      }
      AtomicLong value = new AtomicLong(notAfter);
      return new Entry(value, meters.certificateExpiry(destination, host, value::get));
    });
  }

  /** Drops aged-out entries now, rather than on the next write. Called before each scrape. */
  void cleanUp() {
    entries.cleanUp();
  }

  long size() {
    return entries.estimatedSize();
  }
}
