package dev.egret.telemetry;

import dev.egret.failure.HandshakeResult;
import com.github.benmanes.caffeine.cache.Ticker;
import dev.egret.policy.Kind;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * The production {@link Telemetry} and the catalogue of Egret's own meters: every name, label and
 * bucket exported on the admin port is defined here and nowhere else, with a comment saying what
 * it counts; every finished hop also goes to the {@link AccessLog}. Usage:
 *
 * <pre>{@code
 * Metrics metrics = new Metrics();                      // registry + JVM meters
 * Vertx vertx = metrics.newVertx(new VertxOptions());  // Vert.x meters into the same registry
 * Observability telemetry = new Observability(metrics.registry(), AccessLog.toStdout());
 * AdminServer admin = new AdminServer(vertx, host, port, telemetry::scrape);
 * }</pre>
 *
 * <p>Micrometer names are dotted and the Prometheus registry renders them: a counter {@code
 * egret.requests} becomes {@code egret_requests_total}, a timer {@code egret.request.duration}
 * becomes the histogram {@code egret_request_duration_seconds}. The exported names are the documented ones (docs/operations.md)
 * contract and {@code ObservabilityTest} checks them on a real scrape.
 *
 * <p>Label values come only from fixed sets (kind, outcome, error, direction, result, TLS version,
 * cipher) or from the config ({@code destination} is a rule's host pattern or {@code denied}), so
 * the number of series is bounded by the allowlist. Raw host names appear in one place only: the
 * {@code host} label of the certificate-expiry gauge, for upstreams a rule allowed, capped per
 * rule and aged out (see {@link CertificateExpiry}).
 *
 * <p>Each meter is built once per label set and kept in a {@link MeterCache}, so a request costs
 * a map lookup and an atomic add, not Micrometer's builder, id and registry lookup on every call.
 *
 * <p>Thread-safe: called from every event loop at once. Nothing here blocks: meters are atomic
 * counters, the access log only enqueues.
 */
public final class Observability implements Telemetry, AutoCloseable {
  /** How long a host's certificate stays exported after its last handshake. */
  public static final Duration DEFAULT_EXPIRY_RETENTION = Duration.ofHours(24);

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

  // ---- The catalogue -------------------------------------------------------------------------

  /**
   * egret_requests_total{destination, kind, outcome, error}: every finished request or tunnel.
   * In gateway mode this, the request duration and the bytes also carry {@code client} (a
   * configured client name, or {@code unidentified}); a sidecar's have no such label.
   */
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
  /** egret_config_last_reload_success_timestamp_seconds: last config load (start included). */
  static final String CONFIG_LOADED_AT = "egret.config.last.reload.success.timestamp.seconds";
  /** egret_shutdown_cut_total{kind}: hops still in flight at shutdown.deadline, closed. */
  static final String SHUTDOWN_CUT = "egret.shutdown.cut";
  /** egret_client_connections: downstream connections open now, on every listener. */
  static final String CLIENT_CONNECTIONS = "egret.client.connections";
  /** egret_client_connections_limit: {@code limits.maxConnections}. */
  static final String CLIENT_CONNECTIONS_LIMIT = "egret.client.connections.limit";
  /**
   * egret_client_connections_refused_total: connections answered 503 because {@code
   * limits.maxConnections} were already open; not in the documented catalogue, exported beside it so that
   * a proxy refusing everyone shows a moving number, not only a gauge at its cap.
   */
  static final String CLIENT_CONNECTIONS_REFUSED = "egret.client.connections.refused";
  /** egret_admin_connections: admin connections open now ({@code limits.maxAdminConnections}). */
  static final String ADMIN_CONNECTIONS = "egret.admin.connections";
  /**
   * egret_access_log_dropped_total: access-log lines dropped because the writer fell behind
   * (stdout blocked); not in the documented catalogue, exported beside it so a loss is visible.
   */
  static final String ACCESS_LOG_DROPPED = "egret.access.log.dropped";
  /**
   * egret_trace_spans_dropped_total{reason}: spans not exported, by a fixed reason: queue_full
   * (the exporter fell behind), export_failed (the collector refused or did not answer in time),
   * rate_limited (more clients' sampled flags a second than Egret honours).
   */
  static final String TRACE_SPANS_DROPPED = "egret.trace.spans.dropped";
  private static final Set<String> TRACE_DROP_REASONS =
      Set.of("queue_full", "export_failed", "rate_limited");
  /** egret_trace_spans_dropped_total, one counter per reason. */
  private final java.util.Map<String, Counter> traceDrops;

  /**
   * egret_identity_failures_total{source, reason}: gateway-mode refusals for identity, by source
   * (certificate, token, address, proxy_protocol) and a fixed reason ({@link IdentityFailures}).
   * Registered at the first refusal, so that a sidecar's scrape does not change.
   */
  static final String IDENTITY_FAILURES = "egret.identity.failures";
  private final java.util.concurrent.ConcurrentHashMap<String, Counter> identityFailures =
      new java.util.concurrent.ConcurrentHashMap<>();

  /**
   * egret_upstream_proxy_connect_duration_seconds{proxy}: from dialling an upstream proxy to its
   * 2xx answer to CONNECT (TCP, TLS with the proxy, and the proxy's own connect).
   */
  static final String UPSTREAM_PROXY_CONNECT = "egret.upstream.proxy.connect.duration";
  /**
   * egret_upstream_proxy_failures_total{proxy, status}: legs to an upstream proxy that failed;
   * status is the proxy's HTTP answer (407, 403, 503, ...) or connect_failed, timeout, tls_error,
   * closed, malformed. Both are registered at their first event, so without upstreamProxies a
   * scrape does not change; proxy is a configured name, never a host.
   */
  static final String UPSTREAM_PROXY_FAILURES = "egret.upstream.proxy.failures";
  private static final Pattern UPSTREAM_PROXY_STATUS =
      Pattern.compile("[1-5][0-9][0-9]|connect_failed|timeout|tls_error|closed|malformed");
  private final MeterCache<String, Timer> proxyConnectMeters = new MeterCache<>();
  private final MeterCache<String, Counter> proxyFailureMeters = new MeterCache<>();

  private static final Set<String> TLS_VERSIONS =
      Set.of("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3", "unknown");
  /** IANA/JDK suite names; anything else (a bug upstream of us) must not mint new series. */
  private static final Pattern CIPHER = Pattern.compile("(TLS|SSL)_[A-Z0-9_]{1,100}|unknown");

  /** The meters of one (destination, kind, outcome, error): the counter and the kind's timer. */
  // The keys below spell out equals and hashCode: a record's generated ones go through
  // ObjectMethods' method handles, which the client compiler the image runs (C1) does not
  // inline, and these run on every request (DirectMethodHandle.allocateInstance in the profile).
  // client is null in a sidecar: its meters then have no client label at all.
  private record RequestKey(String destination, String kind, String outcome, String error,
      String client) {
    @Override
    public boolean equals(Object o) {
      return o instanceof RequestKey k && Objects.equals(destination, k.destination)
          && Objects.equals(kind, k.kind) && Objects.equals(outcome, k.outcome)
          && Objects.equals(error, k.error) && Objects.equals(client, k.client);
    }

    @Override
    public int hashCode() {
      return (((Objects.hashCode(destination) * 31 + Objects.hashCode(kind)) * 31
          + Objects.hashCode(outcome)) * 31 + Objects.hashCode(error)) * 31
          + Objects.hashCode(client);
    }
  }

  private record RequestMeters(Counter count, Timer duration) {}

  private record BytesKey(String destination, String direction, String client) {
    @Override
    public boolean equals(Object o) {
      return o instanceof BytesKey k && Objects.equals(destination, k.destination)
          && Objects.equals(direction, k.direction) && Objects.equals(client, k.client);
    }

    @Override
    public int hashCode() {
      return (Objects.hashCode(destination) * 31 + Objects.hashCode(direction)) * 31
          + Objects.hashCode(client);
    }
  }

  private record HandshakeKey(String destination, String version, String cipher,
      HandshakeResult result) {}

  private record HandshakeMeters(Counter count, Timer duration) {}

  private final PrometheusMeterRegistry registry;
  private final MeterCache<RequestKey, RequestMeters> requestMeters = new MeterCache<>();
  private final MeterCache<BytesKey, Counter> bytesMeters = new MeterCache<>();
  private final MeterCache<String, Timer> connectMeters = new MeterCache<>();
  private final MeterCache<HandshakeKey, HandshakeMeters> handshakeMeters = new MeterCache<>();
  private final Counter reloadSuccess;
  private final Counter reloadFailure;
  private final Counter connectionsRefused;
  private final AtomicLong tunnelsActive = new AtomicLong();
  private final AtomicLong configLoadedAtMillis = new AtomicLong();
  private final AtomicLong downstreamConnections = new AtomicLong();
  private final AtomicLong downstreamConnectionsLimit = new AtomicLong(-1);
  private final AtomicLong adminConnections = new AtomicLong();
  private final CertificateExpiry expiry;
  private final AccessLog accessLog;
  // The first configLoaded is the start-up load, not a reload.
  private final AtomicBoolean configSeen = new AtomicBoolean();
  private final Object configInfoLock = new Object();
  // Guarded by configInfoLock: only the loaded file's hash may be exported.
  private Gauge configInfo;
  private String configSha256;

  public Observability(PrometheusMeterRegistry registry, AccessLog accessLog) {
    this(registry, accessLog, DEFAULT_EXPIRY_RETENTION, Ticker.systemTicker());
  }

  /**
   * @param expiryRetention how long a (destination, host) expiry series outlives its last handshake
   * @param ticker the clock of that retention; tests pass a fake one
   */
  public Observability(PrometheusMeterRegistry registry, AccessLog accessLog,
      Duration expiryRetention, Ticker ticker) {
    this(registry, accessLog, expiryRetention, ticker, CertificateExpiry.MAX_HOSTS_PER_DESTINATION);
  }

  /** @param expiryHostsPerDestination how many hosts' expiry one rule may export at once */
  Observability(PrometheusMeterRegistry registry, AccessLog accessLog, Duration expiryRetention,
      Ticker ticker, int expiryHostsPerDestination) {
    this.registry = registry;
    this.accessLog = accessLog;
    this.expiry = new CertificateExpiry(this::certificateExpiryGauge, registry::remove,
        expiryRetention, ticker, expiryHostsPerDestination);
    Gauge.builder(CONFIG_LOADED_AT, configLoadedAtMillis, m -> m.get() / 1000.0)
        .description("When a config was last loaded, at start or by a reload, Unix seconds")
        .register(registry);
    Gauge.builder(TUNNELS_ACTIVE, tunnelsActive, AtomicLong::get)
        .description("CONNECT tunnels relaying right now")
        .register(registry);
    Gauge.builder(CLIENT_CONNECTIONS, downstreamConnections, AtomicLong::get)
        .description("Client connections open now, on every listener (limits.maxConnections caps"
            + " them)")
        .register(registry);
    Gauge.builder(ADMIN_CONNECTIONS, adminConnections, AtomicLong::get)
        .description("Admin connections open now (limits.maxAdminConnections caps them)")
        .register(registry);
    this.connectionsRefused = Counter.builder(CLIENT_CONNECTIONS_REFUSED)
        .description("Client connections refused with 503 because limits.maxConnections were open")
        .register(registry);
    // Both reload series exist from the start, so increase() sees the first failure.
    this.reloadSuccess = reloads("success");
    this.reloadFailure = reloads("failure");
    FunctionCounter.builder(ACCESS_LOG_DROPPED, accessLog, AccessLog::dropped)
        .description("Access-log lines dropped because the writer could not keep up")
        .register(registry);
    // Every reason exists from the start (0 while tracing is off), so the dashboard and the
    // alert see a series and increase() sees the first drop.
    java.util.Map<String, Counter> drops = new java.util.HashMap<>();
    for (String reason : TRACE_DROP_REASONS) {
      drops.put(reason, Counter.builder(TRACE_SPANS_DROPPED).tag("reason", reason)
          .description("Trace spans not exported: queue_full, export_failed or rate_limited")
          .register(registry));
    }
    this.traceDrops = java.util.Map.copyOf(drops);
  }

  public PrometheusMeterRegistry registry() {
    return registry;
  }

  /**
   * The Prometheus text exposition (format 0.0.4) of everything in the registry, after dropping
   * certificate-expiry series that aged out. Takes a few milliseconds; the admin server calls it
   * off the event loop.
   */
  public String scrape() {
    expiry.cleanUp();
    return registry.scrape();
  }

  // ---- Telemetry -----------------------------------------------------------------------------

  @Override
  public void hopFinished(Hop hop) {
    long total = hop.totalNanos >= 0 ? hop.totalNanos : System.nanoTime() - hop.startNanos;
    String destination = hop.destination();
    String kind = kindLabel(hop);
    String outcome = hop.outcome();
    String error = hop.errorLabel();
    LastRequest last = lastRequest;
    RequestMeters m;
    if (last != null && last.destination() == destination && last.kind() == kind
        && last.outcome() == outcome && last.error() == error && last.client() == hop.identity) {
      m = last.meters();
    } else {
      m = requestMeters.get(new RequestKey(destination, kind, outcome, error, hop.identity),
          newRequestMeters);
      lastRequest = new LastRequest(destination, kind, outcome, error, hop.identity, m);
    }
    m.count().increment();
    m.duration().record(total, java.util.concurrent.TimeUnit.NANOSECONDS);
    // Zero amounts create no series: a denied request relayed nothing.
    if (hop.bytesUpstream > 0) {
      LastBytes up = lastUpstreamBytes;
      if (up == null || up.destination() != destination || up.client() != hop.identity) {
        up = new LastBytes(destination, hop.identity, bytes(destination, "upstream", hop.identity));
        lastUpstreamBytes = up;
      }
      up.counter().increment(hop.bytesUpstream);
    }
    if (hop.bytesDownstream > 0) {
      LastBytes down = lastDownstreamBytes;
      if (down == null || down.destination() != destination || down.client() != hop.identity) {
        down = new LastBytes(destination, hop.identity,
            bytes(destination, "downstream", hop.identity));
        lastDownstreamBytes = down;
      }
      down.counter().increment(hop.bytesDownstream);
    }
    accessLog.write(hop);
  }

  /**
   * The meters of the last hop's labels, found again by comparing the label values by identity:
   * they are the matched rule's pattern and constants, the same instances hop after hop, so most
   * hops skip building a key and the map lookup. A hop whose values are other instances (another
   * rule, or an equal string made anew) only takes the map path. Read and replaced by every event
   * loop without a lock: a record's fields are final, so a racing reader sees one whole entry.
   */
  private record LastRequest(String destination, String kind, String outcome, String error,
      String client, RequestMeters meters) {}

  private LastRequest lastRequest;

  /** As {@link LastRequest}, for the bytes counter of one direction. */
  private record LastBytes(String destination, String client, Counter counter) {}

  private LastBytes lastUpstreamBytes;
  private LastBytes lastDownstreamBytes;

  @Override
  public void tunnelOpened() {
    tunnelsActive.incrementAndGet();
  }

  @Override
  public void tunnelClosed() {
    tunnelsActive.decrementAndGet();
  }

  @Override
  public void downstreamConnectionOpened() {
    downstreamConnections.incrementAndGet();
  }

  @Override
  public void downstreamConnectionClosed() {
    downstreamConnections.decrementAndGet();
  }

  @Override
  public void adminConnectionOpened() {
    adminConnections.incrementAndGet();
  }

  @Override
  public void adminConnectionClosed() {
    adminConnections.decrementAndGet();
  }

  @Override
  public void shutdownCut(String kind, int count) {
    // Kinds are the fixed "upgrade", "tls" and "tunnel"; counted once, at the end of a drain.
    Counter.builder(SHUTDOWN_CUT).tag("kind", kind)
        .description("Requests and tunnels still in flight at shutdown.deadline, closed")
        .register(registry).increment(count);
  }

  @Override
  public void traceSpansDropped(String reason, long count) {
    // Called from the exporter's thread and the sampler; the reasons are a fixed set.
    Counter c = traceDrops.get(reason);
    if (c != null) {
      c.increment(count);
    }
  }

  @Override
  public void identityFailure(String source, String reason) {
    if (!IdentityFailures.SOURCES.contains(source) || !IdentityFailures.REASONS.contains(reason)) {
      throw new IllegalArgumentException("identity failure outside the fixed label sets: "
          + source + "/" + reason);
    }
    identityFailures.computeIfAbsent(source + '/' + reason, k -> Counter.builder(IDENTITY_FAILURES)
        .description("Connections and requests refused for their identity")
        .tag("source", source).tag("reason", reason).register(registry)).increment();
  }

  @Override
  public void downstreamConnectionRefusedAtCap() {
    connectionsRefused.increment();
  }

  /**
   * Exports the cap. The gauge appears with the first call (a listener's start), so no scrape
   * ever sees a limit of 0 that open connections would trivially "reach".
   */
  @Override
  public void downstreamConnectionsLimit(int limit) {
    if (downstreamConnectionsLimit.getAndSet(limit) < 0) {
      Gauge.builder(CLIENT_CONNECTIONS_LIMIT, downstreamConnectionsLimit, AtomicLong::get)
          .description("limits.maxConnections: the client connections Egret serves at once")
          .register(registry);
    }
  }

  @Override
  public void upstreamHandshake(String destination, String host, String version, String cipher,
      HandshakeResult result, Duration took, X509Certificate leaf) {
    HandshakeMeters m = handshakeMeters.get(
        new HandshakeKey(destination, versionLabel(version), cipherLabel(cipher), result),
        this::newHandshakeMeters);
    m.count().increment();
    m.duration().record(nonNegative(took));
    // "denied" is the destination of a hop no rule allowed, which reaches an upstream only in
    // report mode: its host is a raw, unbounded name and must stay out of labels.
    if (result == HandshakeResult.OK && leaf != null && host != null
        && !"denied".equals(destination)) {
      expiry.record(destination, host, leaf);
    }
  }

  @Override
  public void upstreamConnected(String destination, Duration took) {
    connectMeters.get(destination, d -> latency(CONNECT_DURATION,
            "TCP connect time of new upstream connections")
            .tag("destination", d)
            .register(registry))
        .record(nonNegative(took));
  }

  @Override
  public void upstreamProxyConnected(String proxy, Duration took) {
    proxyConnectMeters.get(proxy, p -> latency(UPSTREAM_PROXY_CONNECT,
            "Time from dialling an upstream proxy to its answer to CONNECT")
            .tag("proxy", p)
            .register(registry))
        .record(nonNegative(took));
  }

  @Override
  public void upstreamProxyFailed(String proxy, String status) {
    String s = UPSTREAM_PROXY_STATUS.matcher(status).matches() ? status : "malformed";
    proxyFailureMeters.get(proxy + '/' + s, k -> Counter.builder(UPSTREAM_PROXY_FAILURES)
        .description("Legs to an upstream proxy that failed, by its HTTP status or a fixed reason")
        .tag("proxy", proxy)
        .tag("status", s)
        .register(registry)).increment();
  }

  @Override
  public void configLoaded(String sha256) {
    configLoadedAtMillis.set(System.currentTimeMillis()); // every load, the hash unchanged or not
    configInfo(sha256);
    if (configSeen.getAndSet(true)) {
      reloadSuccess.increment();
    }
  }

  @Override
  public void configReloadFailed(String reason) {
    // The reason goes to the operator's log by the config loader; a label would be unbounded.
    reloadFailure.increment();
  }

  /** Stops the access-log writer after it wrote what is queued. */
  @Override
  public void close() {
    accessLog.close();
  }

  // ---- Meters, built once per label set ------------------------------------------------------

  private RequestMeters newRequestMeters(RequestKey k) {
    Counter.Builder count = Counter.builder(REQUESTS)
        .description("Requests and tunnels by destination rule, kind, outcome and Proxy-Status error")
        .tag("destination", k.destination())
        .tag("kind", k.kind())
        .tag("outcome", k.outcome())
        .tag("error", k.error());
    // Shared by every outcome of the (destination, kind): the registry returns the same timer.
    Timer.Builder duration = latency(REQUEST_DURATION,
            "Time from request arrival to its end, by destination and kind")
        .tag("destination", k.destination())
        .tag("kind", k.kind());
    if (k.client() != null) {
      count.tag("client", k.client());
      duration.tag("client", k.client());
    }
    return new RequestMeters(count.register(registry), duration.register(registry));
  }

  private HandshakeMeters newHandshakeMeters(HandshakeKey k) {
    Counter count = Counter.builder(HANDSHAKES)
        .description("Upstream TLS handshakes by negotiated version and cipher, and result")
        .tag("destination", k.destination())
        .tag("version", k.version())
        .tag("cipher", k.cipher())
        .tag("result", k.result().label())
        .register(registry);
    Timer duration = latency(HANDSHAKE_DURATION,
            "Upstream TLS handshake time, certificate checks included")
        .tag("destination", k.destination())
        .tag("version", k.version())
        .register(registry);
    return new HandshakeMeters(count, duration);
  }

  private Counter bytes(String destination, String direction, String client) {
    return bytesMeters.get(new BytesKey(destination, direction, client), newBytesCounter);
  }

  // The builders of the per-request meters, bound once: a method reference or lambda that
  // captures this is a call into the VM at each capture under the client compiler.
  private final java.util.function.Function<RequestKey, RequestMeters> newRequestMeters =
      this::newRequestMeters;
  private final java.util.function.Function<BytesKey, Counter> newBytesCounter =
      this::newBytesCounter;

  private Counter newBytesCounter(BytesKey k) {
    Counter.Builder b = Counter.builder(BYTES)
        .description("Payload bytes relayed, by destination and direction")
        .tag("destination", k.destination())
        .tag("direction", k.direction());
    if (k.client() != null) {
      b.tag("client", k.client());
    }
    return b.register(registry);
  }

  /**
   * Registers the expiry gauge of one (destination, host) pair; {@link CertificateExpiry}
   * removes it when the pair ages out or is pushed out by the per-rule cap.
   */
  private Gauge certificateExpiryGauge(String destination, String host,
      Supplier<Number> notAfterSeconds) {
    return Gauge.builder(CERTIFICATE_EXPIRY, notAfterSeconds)
        .description("notAfter of the leaf certificate an upstream last presented, Unix seconds")
        .tag("destination", destination)
        .tag("host", host)
        .strongReference(true)
        .register(registry);
  }

  private Counter reloads(String result) {
    return Counter.builder(CONFIG_RELOADS)
        .description("Config reloads after the first load; failure means the old config kept serving")
        .tag("result", result)
        .register(registry);
  }

  /**
   * Exports {@code egret_config_info{sha256}=1} for the given hash and removes the series of the
   * previous one, so a query never sees two configs at once.
   */
  private void configInfo(String sha256) {
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

  private static Timer.Builder latency(String name, String description) {
    return Timer.builder(name)
        .description(description)
        .serviceLevelObjectives(LATENCY_BUCKETS);
  }

  private static Duration nonNegative(Duration d) {
    return d == null || d.isNegative() ? Duration.ZERO : d;
  }

  // ---- Labels --------------------------------------------------------------------------------

  /**
   * The {@code kind} label. A hop refused before it was classified (a malformed request) has no
   * kind yet: a {@code CONNECT} counts as a tunnel, anything else as a plain-http request, which
   * is what arrived on the proxy port.
   */
  static String kindLabel(Hop hop) {
    if (hop.kind != null) {
      return hop.kind.label();
    }
    return "CONNECT".equalsIgnoreCase(hop.method) ? Kind.TUNNEL.label() : Kind.UPGRADE.label();
  }

  static String versionLabel(String version) {
    return version != null && TLS_VERSIONS.contains(version) ? version
        : version == null ? "unknown" : "other";
  }

  static String cipherLabel(String cipher) {
    return cipher != null && CIPHER.matcher(cipher).matches() ? cipher
        : cipher == null ? "unknown" : "other";
  }
}
