package dev.egret.telemetry;

import java.security.cert.X509Certificate;

/**
 * Where every stage reports what happened. One implementation feeds the Prometheus meters and
 * the access log; {@link #NONE} serves {@code explain} and unit tests. Calls come from event-loop
 * threads and must not block.
 */
public interface Telemetry {

  /** A request or tunnel ended (answered, refused, failed, or closed). Called once per hop. */
  void hopFinished(Hop hop);

  /** A tunnel's relay started; paired with {@link #tunnelClosed()}. */
  void tunnelOpened();

  void tunnelClosed();

  /**
   * An upstream TLS handshake ended.
   *
   * @param destination the rule's host pattern
   * @param host the upstream host name
   * @param version negotiated protocol ("TLSv1.3"), or "unknown" when it failed
   * @param cipher negotiated suite, or "unknown"
   * @param ok whether the handshake and all certificate checks passed
   * @param seconds how long it took
   * @param leaf the verified leaf certificate when ok, else null
   */
  void upstreamHandshake(String destination, String host, String version, String cipher,
      boolean ok, double seconds, X509Certificate leaf);

  /**
   * An upstream TLS handshake ended, saying how: prefer this to the boolean form, which cannot
   * tell a certificate failure from a protocol failure. Use {@link HandshakeResult#of(Throwable)}
   * on the failure. The default forwards to the boolean form, so existing implementations keep
   * working.
   */
  default void upstreamHandshake(String destination, String host, String version, String cipher,
      HandshakeResult result, double seconds, X509Certificate leaf) {
    upstreamHandshake(destination, host, version, cipher, result == HandshakeResult.OK, seconds,
        leaf);
  }

  /** A new upstream TCP connection was set up in {@code seconds}. */
  void upstreamConnected(String destination, double seconds);

  /** A config file was loaded (at start or by a reload). */
  void configLoaded(String sha256);

  /** A reload was refused; the last good config keeps serving. */
  void configReloadFailed(String reason);

  Telemetry NONE = new Telemetry() {
    @Override public void hopFinished(Hop hop) {}
    @Override public void tunnelOpened() {}
    @Override public void tunnelClosed() {}
    @Override public void upstreamHandshake(String d, String h, String v, String c, boolean ok,
        double s, X509Certificate leaf) {}
    @Override public void upstreamConnected(String destination, double seconds) {}
    @Override public void configLoaded(String sha256) {}
    @Override public void configReloadFailed(String reason) {}
  };
}
