package dev.egret.telemetry;

import dev.egret.failure.HandshakeResult;
import java.security.cert.X509Certificate;
import java.time.Duration;

/**
 * Where every stage reports what happened. {@link Observability} feeds the Prometheus meters
 * and the access log; {@link #NONE} serves {@code explain} and tests, and a test recorder
 * overrides only the events it watches (every method is a no-op by default). Calls come from
 * event-loop threads and must not block.
 */
public interface Telemetry {

  /** A request or tunnel ended (answered, refused, failed, or closed). Called once per hop. */
  default void hopFinished(Hop hop) {}

  /** A tunnel's relay started; paired with {@link #tunnelClosed()}. */
  default void tunnelOpened() {}

  default void tunnelClosed() {}

  /**
   * An upstream TLS handshake ended (for a tunnel: the session it carried, as the ServerHello
   * showed it).
   *
   * @param destination the rule's host pattern
   * @param host the upstream host name
   * @param version negotiated protocol ("TLSv1.3"), or "unknown" when it failed
   * @param cipher negotiated suite, or "unknown"
   * @param result how it ended; {@code FailureClassifier.classify} sorts a failure
   * @param took how long it took
   * @param leaf the verified leaf certificate when Egret verified it, else null
   */
  default void upstreamHandshake(String destination, String host, String version, String cipher,
      HandshakeResult result, Duration took, X509Certificate leaf) {}

  /** A new upstream TCP connection was set up in {@code took}. */
  default void upstreamConnected(String destination, Duration took) {}

  /**
   * An upstream proxy answered CONNECT with 2xx, {@code took} after Egret started dialling it
   * (TCP, TLS with the proxy, and the proxy's own connect to the destination).
   *
   * @param proxy the proxy's name under {@code upstreamProxies}
   */
  default void upstreamProxyConnected(String proxy, Duration took) {}

  /**
   * The leg to an upstream proxy failed: {@code status} is the proxy's HTTP status, or one of
   * connect_failed, timeout, tls_error, closed, malformed.
   */
  default void upstreamProxyFailed(String proxy, String status) {}

  /**
   * A listener accepted a downstream connection; paired with {@link #downstreamConnectionClosed()}.
   * Every accepted connection counts until it closes, tunnels and refused ones included, as
   * {@code limits.maxConnections} counts them.
   */
  default void downstreamConnectionOpened() {}

  default void downstreamConnectionClosed() {}

  /** A downstream connection was answered 503 because {@code limits.maxConnections} were open. */
  default void downstreamConnectionRefusedAtCap() {}

  /**
   * The cap on downstream connections ({@code limits.maxConnections}), at start and each reload.
   */
  default void downstreamConnectionsLimit(int limit) {}

  /**
   * The admin listener admitted a connection under {@code limits.maxAdminConnections}; paired
   * with {@link #adminConnectionClosed()}. One over the cap is closed at once and not counted.
   */
  default void adminConnectionOpened() {}

  default void adminConnectionClosed() {}

  /** A config file was loaded (at start or by a reload). */
  default void configLoaded(String sha256) {}

  /** A reload was refused; the last good config keeps serving. */
  default void configReloadFailed(String reason) {}

  /**
   * Trace spans were not exported ({@code reason}: queue_full, export_failed, rate_limited).
   * Called from the exporter's thread as well as event loops.
   */
  default void traceSpansDropped(String reason, long count) {}

  /**
   * A connection or request was refused for its identity (gateway mode): {@code source} is
   * certificate, token, address or proxy_protocol, {@code reason} one of {@link
   * IdentityFailures#REASONS}.
   */
  default void identityFailure(String source, String reason) {}

  /** Hops of this kind were still in flight at {@code shutdown.deadline} and were cut. */
  default void shutdownCut(String kind, int count) {}

  Telemetry NONE = new Telemetry() {};
}
