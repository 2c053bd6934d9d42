package dev.egret.telemetry;

import java.security.cert.X509Certificate;

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
   * @param result how it ended; {@link HandshakeResult#of(Throwable)} sorts a failure
   * @param seconds how long it took
   * @param leaf the verified leaf certificate when Egret verified it, else null
   */
  default void upstreamHandshake(String destination, String host, String version, String cipher,
      HandshakeResult result, double seconds, X509Certificate leaf) {}

  /** A new upstream TCP connection was set up in {@code seconds}. */
  default void upstreamConnected(String destination, double seconds) {}

  /** A config file was loaded (at start or by a reload). */
  default void configLoaded(String sha256) {}

  /** A reload was refused; the last good config keeps serving. */
  default void configReloadFailed(String reason) {}

  /** A client connection was accepted ({@code egret_client_connections} goes up). */
  default void clientConnectionOpened() {}

  /** A client connection closed, whatever it had become. */
  default void clientConnectionClosed() {}

  /** A connection over {@code limits.maxConnections} was refused with 503. */
  default void clientConnectionRefused() {}

  /** The cap in force ({@code egret_client_connections_limit}). */
  default void clientConnectionLimit(int limit) {}

  /** Hops of this kind were still in flight at {@code shutdown.deadline} and were cut. */
  default void shutdownCut(String kind, int count) {}

  Telemetry NONE = new Telemetry() {};
}
