package dev.egret.telemetry;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The catalogue of Egret's own meters: every name, label and bucket exported on the admin port is
 * defined here and nowhere else, with a comment saying what it counts. Usage: create one per
 * registry and call the recording methods; {@link Observability} does this for every hop.
 *
 * <p>Micrometer names are dotted and the Prometheus registry renders them: a counter {@code
 * egret.requests} becomes {@code egret_requests_total}, a timer {@code egret.request.duration}
 * becomes the histogram {@code egret_request_duration_seconds}. The exported names are the SPEC's
 * contract and {@code ObservabilityTest} checks them on a real scrape.
 *
 * <p>Label values come only from fixed sets (kind, outcome, error, direction, result, TLS version)
 * or from the config ({@code destination} is a rule's host pattern or {@code denied}), so the
 * number of series is bounded by the allowlist. Raw host names appear in one place only: the
 * {@code host} label of the certificate-expiry gauge, for upstreams a rule allowed, and those age
 * out (see {@link CertificateExpiry}).
 *
 * <p>Thread-safe: Micrometer's builders return the already-registered meter for a known name and
 * label set, so meters are created lazily on first use from any event loop.
 */
public final class EgretMeters {

  /**
   * Buckets for every latency histogram: from a loopback hop (half a millisecond) to a slow
   * third-party API (30 s, the default response timeout). Explicit, so that dashboards and
   * alerts can rely on the {@code le} values.
   */
  static final Duration[] LATENCY_BUCKETS = {
      Duration.ofNanos(500_000), Duration.ofMillis(1), Duration.ofNanos(2_500_000),
      Duration.ofMillis(5), Duration.ofMillis(10), Duration.ofMillis(25), Duration.ofMillis(50),
      Duration.ofMillis(100), Duration.ofMillis(250), Duration.ofMillis(500), Duration.ofSeconds(1),
      Duration.ofMillis(2500), Duration.ofSeconds(5), Duration.ofSeconds(10), Duration.ofSeconds(30)
  };

  /** egret_requests_total{destination, kind, outcome, error}: every finished request or tunnel. */
  static final String REQUESTS = "egret.requests";
  /** egret_request_duration_seconds{destination, kind}: arrival to last byte (or tunnel close). */
  static final String REQUEST_DURATION = "egret.request.duration";
  /** egret_upstream_connect_duration_seconds{destination}: TCP connect of a new upstream connection. */
  static final String CONNECT_DURATION = "egret.upstream.connect.duration";
  /** egret_upstream_tls_handshake_duration_seconds{destination, version}: upstream TLS handshakes. */
  static final String HANDSHAKE_DURATION = "egret.upstream.tls.handshake.duration";
  /** egret_upstream_tls_handshakes_total{destination, version, cipher, result}: handshake outcomes. */
  static final String HANDSHAKES = "egret.upstream.tls.handshakes";
  /**
   * egret_upstream_certificate_expiry_timestamp_seconds{destination, host}: the notAfter of the
   * leaf certificate an upstream last presented, as Unix seconds.
   */
  static final String CERTIFICATE_EXPIRY = "egret.upstream.certificate.expiry.timestamp.seconds";
  /** egret_bytes_total{destination, direction}: payload bytes relayed, upstream or downstream. */
  static final String BYTES = "egret.bytes";
  /** egret_tunnels_active: CONNECT tunnels relaying right now. */
  static final String TUNNELS_ACTIVE = "egret.tunnels.active";
  /** egret_config_reloads_total{result}: config reloads after the first load, success or failure. */
  static final String CONFIG_RELOADS = "egret.config.reloads";
  /** egret_config_info{sha256}: always 1; the label names the config file being served. */
  static final String CONFIG_INFO = "egret.config.info";
  /** egret_config_last_reload_success_timestamp_seconds: last config load (start included), Unix s. */
  static final String CONFIG_LOADED_AT = "egret.config.last.reload.success.timestamp.seconds";
  /**
   * egret_access_log_dropped_total: access-log lines dropped because the writer fell behind
   * (stdout blocked); not in the SPEC's table, exported beside it so a loss is visible.
   */
  static final String ACCESS_LOG_DROPPED = "egret.access.log.dropped";

  private final MeterRegistry registry;
  private final AtomicLong tunnelsActive = new AtomicLong();
  private final AtomicLong configLoadedAtMillis = new AtomicLong();
  private final Object configInfoLock = new Object();
  // Guarded by configInfoLock: only the loaded file's hash may be exported.
  private Gauge configInfo;
  private String configSha256;

  public EgretMeters(MeterRegistry registry) {
    this.registry = registry;
    Gauge.builder(TUNNELS_ACTIVE, tunnelsActive, AtomicLong::get)
        .description("CONNECT tunnels relaying right now")
        .register(registry);
    Gauge.builder(CONFIG_LOADED_AT, configLoadedAtMillis, m -> m.get() / 1000.0)
        .description("When a config was last loaded, at start or by a reload, Unix seconds")
        .register(registry);
    // Both reload series exist from the start, so increase() sees the first failure.
    reloads("success");
    reloads("failure");
  }

  /** Counts one finished hop and records its duration ({@code totalNanos} < 0 skips the latter). */
  public void request(String destination, String kind, String outcome, String error,
      long totalNanos) {
    Counter.builder(REQUESTS)
        .description("Requests and tunnels by destination rule, kind, outcome and Proxy-Status error")
        .tag("destination", destination)
        .tag("kind", kind)
        .tag("outcome", outcome)
        .tag("error", error)
        .register(registry)
        .increment();
    if (totalNanos >= 0) {
      latency(REQUEST_DURATION, "Time from request arrival to its end, by destination and kind")
          .tag("destination", destination)
          .tag("kind", kind)
          .register(registry)
          .record(totalNanos, TimeUnit.NANOSECONDS);
    }
  }

  /** Records the TCP connect time of a new upstream connection. */
  public void upstreamConnected(String destination, double seconds) {
    latency(CONNECT_DURATION, "TCP connect time of new upstream connections")
        .tag("destination", destination)
        .register(registry)
        .record(toNanos(seconds), TimeUnit.NANOSECONDS);
  }

  /** Counts one upstream TLS handshake and records how long it took. */
  public void handshake(String destination, String version, String cipher, HandshakeResult result,
      double seconds) {
    Counter.builder(HANDSHAKES)
        .description("Upstream TLS handshakes by negotiated version and cipher, and result")
        .tag("destination", destination)
        .tag("version", version)
        .tag("cipher", cipher)
        .tag("result", result.label())
        .register(registry)
        .increment();
    latency(HANDSHAKE_DURATION, "Upstream TLS handshake time, certificate checks included")
        .tag("destination", destination)
        .tag("version", version)
        .register(registry)
        .record(toNanos(seconds), TimeUnit.NANOSECONDS);
  }

  /** Adds relayed payload bytes; zero amounts create no series. */
  public void bytes(String destination, long upstream, long downstream) {
    if (upstream > 0) {
      bytesCounter(destination, "upstream").increment(upstream);
    }
    if (downstream > 0) {
      bytesCounter(destination, "downstream").increment(downstream);
    }
  }

  public void tunnelOpened() {
    tunnelsActive.incrementAndGet();
  }

  public void tunnelClosed() {
    tunnelsActive.decrementAndGet();
  }

  /** Counts a config reload; {@code success} false means the last good config kept serving. */
  public void configReloaded(boolean success) {
    reloads(success ? "success" : "failure").increment();
  }

  /**
   * Exports {@code egret_config_info{sha256}=1} for the given hash and removes the series of the
   * previous one, so a query never sees two configs at once.
   */
  public void configInfo(String sha256) {
    configLoadedAtMillis.set(System.currentTimeMillis()); // every load, the hash unchanged or not
    synchronized (configInfoLock) {
      if (sha256.equals(configSha256)) {
        return;
      }
      Gauge next = Gauge.builder(CONFIG_INFO, () -> 1)
          .description("Always 1; the sha256 label is the hash of the config file being served")
          .tag("sha256", sha256)
          .register(registry);
      if (configInfo != null) {
        registry.remove(configInfo);
      }
      configInfo = next;
      configSha256 = sha256;
    }
  }

  /**
   * Registers the expiry gauge of one (destination, host) pair; the caller removes it with
   * {@link #remove} when the pair ages out.
   */
  Gauge certificateExpiry(String destination, String host, Supplier<Number> notAfterSeconds) {
    return Gauge.builder(CERTIFICATE_EXPIRY, notAfterSeconds)
        .description("notAfter of the leaf certificate an upstream last presented, Unix seconds")
        .tag("destination", destination)
        .tag("host", host)
        .strongReference(true)
        .register(registry);
  }

  void remove(Gauge gauge) {
    registry.remove(gauge);
  }

  /** Exports a running count of dropped access-log lines read from {@code dropped}. */
  <T> void accessLogDropped(T source, java.util.function.ToDoubleFunction<T> dropped) {
    FunctionCounter.builder(ACCESS_LOG_DROPPED, source, dropped)
        .description("Access-log lines dropped because the writer could not keep up")
        .register(registry);
  }

  private Counter bytesCounter(String destination, String direction) {
    return Counter.builder(BYTES)
        .description("Payload bytes relayed, by destination and direction")
        .tag("destination", destination)
        .tag("direction", direction)
        .register(registry);
  }

  private Counter reloads(String result) {
    return Counter.builder(CONFIG_RELOADS)
        .description("Config reloads after the first load; failure means the old config kept serving")
        .tag("result", result)
        .register(registry);
  }

  private static Timer.Builder latency(String name, String description) {
    return Timer.builder(name)
        .description(description)
        .serviceLevelObjectives(LATENCY_BUCKETS);
  }

  private static long toNanos(double seconds) {
    return seconds <= 0 ? 0 : (long) (seconds * 1e9);
  }
}
