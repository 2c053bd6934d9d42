package dev.egret.telemetry;

import com.github.benmanes.caffeine.cache.Ticker;
import dev.egret.policy.Kind;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;

/**
 * The production {@link Telemetry}: every event goes to the meters of {@link EgretMeters}, every
 * finished hop also to the {@link AccessLog}. Usage:
 *
 * <pre>{@code
 * Metrics metrics = new Metrics();                      // registry + JVM meters
 * Vertx vertx = metrics.newVertx(new VertxOptions());  // Vert.x meters into the same registry
 * Observability telemetry = new Observability(metrics.registry(), AccessLog.toStdout());
 * AdminServer admin = new AdminServer(vertx, host, port, telemetry::scrape);
 * }</pre>
 *
 * <p>Thread-safe: called from every event loop at once. Nothing here blocks: meters are atomic
 * counters, the access log only enqueues.
 */
public final class Observability implements Telemetry, AutoCloseable {
  /** How long a host's certificate stays exported after its last handshake. */
  public static final Duration DEFAULT_EXPIRY_RETENTION = Duration.ofHours(24);

  private static final Set<String> TLS_VERSIONS =
      Set.of("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3", "unknown");
  /** IANA/JDK suite names; anything else (a bug upstream of us) must not mint new series. */
  private static final Pattern CIPHER = Pattern.compile("(TLS|SSL)_[A-Z0-9_]{1,100}|unknown");

  private final PrometheusMeterRegistry registry;
  private final EgretMeters meters;
  private final CertificateExpiry expiry;
  private final AccessLog accessLog;
  // The first configLoaded is the start-up load, not a reload.
  private final AtomicBoolean configSeen = new AtomicBoolean();

  public Observability(PrometheusMeterRegistry registry, AccessLog accessLog) {
    this(registry, accessLog, DEFAULT_EXPIRY_RETENTION, Ticker.systemTicker());
  }

  /**
   * @param expiryRetention how long a (destination, host) expiry series outlives its last handshake
   * @param ticker the clock of that retention; tests pass a fake one
   */
  public Observability(PrometheusMeterRegistry registry, AccessLog accessLog,
      Duration expiryRetention, Ticker ticker) {
    this.registry = registry;
    this.meters = new EgretMeters(registry);
    this.expiry = new CertificateExpiry(meters, expiryRetention, ticker);
    this.accessLog = accessLog;
    meters.accessLogDropped(accessLog, AccessLog::dropped);
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

  @Override
  public void hopFinished(Hop hop) {
    long total = hop.totalNanos >= 0 ? hop.totalNanos : System.nanoTime() - hop.startNanos;
    String destination = hop.destination();
    meters.request(destination, kindLabel(hop), hop.outcome(), hop.errorLabel(), total);
    meters.bytes(destination, hop.bytesUpstream, hop.bytesDownstream);
    accessLog.write(hop);
  }

  @Override
  public void tunnelOpened() {
    meters.tunnelOpened();
  }

  @Override
  public void tunnelClosed() {
    meters.tunnelClosed();
  }

  @Override
  public void upstreamHandshake(String destination, String host, String version, String cipher,
      HandshakeResult result, double seconds, X509Certificate leaf) {
    meters.handshake(destination, versionLabel(version), cipherLabel(cipher), result, seconds);
    // "denied" is the destination of a hop no rule allowed, which reaches an upstream only in
    // report mode: its host is a raw, unbounded name and must stay out of labels.
    if (result == HandshakeResult.OK && leaf != null && host != null
        && !"denied".equals(destination)) {
      expiry.record(destination, host, leaf);
    }
  }

  @Override
  public void upstreamConnected(String destination, double seconds) {
    meters.upstreamConnected(destination, seconds);
  }

  @Override
  public void configLoaded(String sha256) {
    meters.configInfo(sha256);
    if (configSeen.getAndSet(true)) {
      meters.configReloaded(true);
    }
  }

  @Override
  public void configReloadFailed(String reason) {
    // The reason goes to the operator's log by the config loader; a label would be unbounded.
    meters.configReloaded(false);
  }

  /** Stops the access-log writer after it wrote what is queued. */
  @Override
  public void close() {
    accessLog.close();
  }

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
