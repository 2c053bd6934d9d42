package dev.egret.failure;

import dev.egret.runtime.VertxRuntime;
import dev.egret.tls.Pins;
import io.netty.channel.ConnectTimeoutException;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.ssl.NotSslRecordException;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import io.netty.resolver.dns.DnsNameResolverException;
import io.vertx.core.http.ConnectionPoolTooBusyException;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.StreamResetException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.PortUnreachableException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.nio.channels.ClosedChannelException;
import java.security.cert.CertPathBuilderException;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.PKIXReason;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLException;

/**
 * Sorts what the network throws into the fixed set of error kinds, and a failed upstream
 * TLS handshake into its {@link HandshakeResult}, in one decision, so the client's status, the
 * {@code error} label, the handshake {@code result} label and the log line always agree. Usage:
 *
 * <pre>{@code
 * Classification c = FailureClassifier.classify(cause, host);
 * if (c.handshake() != null) telemetry.upstreamHandshake(..., c.handshake(), ...);
 * promise.fail(c.failure());
 * }</pre>
 *
 * <p>The decision is made on exception types, walked along the cause chain (Vert.x and Netty wrap
 * the JDK's reason in one or two layers): {@link CertificateException} and its JDK subtypes,
 * {@link CertPathValidatorException#getReason()}, {@link SSLException} subtypes, Netty's and
 * the JDK's connect and timeout exceptions, Netty's DNS resolver exceptions, Vert.x's pool and
 * close exceptions, Netty's decoder exceptions. Message text is read in one place only, where no
 * type exists: the JDK reports a TLS alert the peer sent as a bare {@link SSLException} whose
 * message is {@code "Received fatal alert: <alert name>"} (RFC 8446 §6 names, stable since JDK
 * 11), and BoringSSL (Netty's OpenSSL engine) as one whose message holds its reason code
 * {@code SSLV3_ALERT_<NAME>} or {@code TLSV1_ALERT_<NAME>}; {@link #alert} parses that name,
 * exactly, instead of searching the text. The raw message
 * survives in the details, never in a label.
 */
public final class FailureClassifier {
  private FailureClassifier() {}

  /** How deep the cause chain is followed: a chain can loop, or be absurdly long. */
  private static final int MAX_DEPTH = 16;

  /** The JDK's wording for an alert the peer sent (sun.security.ssl.Alert). */
  private static final Pattern RECEIVED_ALERT =
      Pattern.compile("Received fatal alert: ([a-z_0-9]+)");

  /**
   * BoringSSL's wording for the same (its reason codes {@code SSL_R_SSLV3_ALERT_<NAME>} and
   * {@code SSL_R_TLSV1_ALERT_<NAME>}, the alert's RFC name in capitals), which Netty's OpenSSL
   * engine passes on in its {@link SSLException}'s message.
   */
  private static final Pattern BORINGSSL_ALERT =
      Pattern.compile("OPENSSL_internal:(?:SSLV3|TLSV1)_ALERT_([A-Z_0-9]+)");

  /**
   * Alerts by which a server refuses the client's certificate (or the lack of one): the mTLS
   * side of a certificate problem, still {@code tls_certificate_error}.
   */
  private static final Set<String> CERTIFICATE_ALERTS = Set.of("bad_certificate",
      "unsupported_certificate", "certificate_revoked", "certificate_expired",
      "certificate_unknown", "unknown_ca", "certificate_required", "access_denied");

  /**
   * A classified failure: what the client is told ({@link #failure()}, with its {@link
   * ErrorKind}) and, when the failure ended an upstream TLS handshake, how that handshake is
   * counted ({@link #handshake()}, else null).
   */
  public record Classification(ProxyFailure failure, HandshakeResult handshake) {
    public ErrorKind kind() {
      return failure.kind();
    }

    public String details() {
      return failure.details();
    }

    /** The same decision told in other words (a limit's or timeout's config name). */
    public Classification withDetails(String details) {
      return new Classification(new ProxyFailure(failure.kind(), failure.status(), details,
          failure.getCause()), handshake);
    }
  }

  /** Classifies an upstream failure on the way to {@code host}. */
  public static Classification classify(Throwable t, String host) {
    UpstreamProxyFailure leg = find(t, UpstreamProxyFailure.class);
    if (leg != null) {
      // The leg to an upstream proxy already said what failed, in the proxy's name; none of it
      // was a handshake with the destination.
      return new Classification(leg.failure(), null);
    }
    if (t instanceof ProxyFailure f) {
      return new Classification(f, handshakeOf(f));
    }
    CertificateException refused = find(t, CertificateException.class);
    if (refused != null) {
      return new Classification(new ProxyFailure(ErrorKind.TLS_CERTIFICATE_ERROR,
          "upstream certificate of " + host + " refused: " + certificateReason(t, refused), t),
          has(t, Pins.PinMismatchException.class) ? HandshakeResult.PIN_MISMATCH
              : HandshakeResult.CERTIFICATE_ERROR);
    }
    if (has(t, NotSslRecordException.class)) {
      return protocolError(host + " did not answer with TLS", t);
    }
    if (has(t, SslHandshakeTimeoutException.class)) {
      return protocolError(host + " did not complete a TLS handshake in time"
          + " (timeouts.handshake)", t);
    }
    if (has(t, SSLException.class)) {
      return tlsFailure(t, host);
    }
    if (has(t, ConnectTimeoutException.class) || has(t, SocketTimeoutException.class)) {
      return plain(ErrorKind.CONNECTION_TIMEOUT, "connecting to " + host + " timed out", t);
    }
    if (has(t, ConnectException.class) || has(t, NoRouteToHostException.class)
        || has(t, PortUnreachableException.class)) {
      return plain(ErrorKind.CONNECTION_REFUSED,
          "connection to " + host + " refused: " + describe(t), t);
    }
    if (has(t, UnknownHostException.class) || has(t, DnsNameResolverException.class)) {
      return plain(ErrorKind.DNS_ERROR, "cannot resolve " + host + ": " + describe(t), t);
    }
    if (has(t, ConnectionPoolTooBusyException.class)) {
      return plain(ErrorKind.CONNECTION_LIMIT_REACHED,
          "too many connections to " + host + " are in use", t);
    }
    if (has(t, TimeoutException.class)) {
      return plain(ErrorKind.RESPONSE_TIMEOUT, host + " did not answer in time", t);
    }
    if (has(t, TooLongFrameException.class) || has(t, DecoderException.class)) {
      return plain(ErrorKind.UPSTREAM_PROTOCOL_ERROR,
          host + " sent an invalid HTTP response: " + describe(t), t);
    }
    if (has(t, HttpClosedException.class) || has(t, StreamResetException.class)
        || has(t, ClosedChannelException.class) || isVertxClosed(t)) {
      return plain(ErrorKind.DESTINATION_UNAVAILABLE,
          host + " closed the connection before answering", t);
    }
    return plain(ErrorKind.DESTINATION_UNAVAILABLE, "upstream " + host + " failed: " + describe(t),
        t);
  }

  /**
   * The limits a failure to obtain a pooled upstream connection is explained with, in the
   * config's words.
   *
   * @param perDestination {@code limits.maxConnectionsPerDestination}
   * @param waitQueue requests that may wait for a pooled connection
   * @param waitMillis how long one may wait
   * @param handshakeMillis {@code timeouts.handshake}
   */
  public record PoolLimits(int perDestination, int waitQueue, long waitMillis,
      long handshakeMillis) {}

  /**
   * Classifies a failure to obtain a pooled upstream connection: as {@link #classify}, with the
   * pool's own failures told in the config's words. A bare {@link TimeoutException} here is
   * Vert.x's wait for a free pooled connection (TCP and TLS time out with their own
   * exceptions), so the pool is full.
   */
  public static Classification classifyAcquire(Throwable t, String host, PoolLimits limits) {
    if (has(t, UpstreamProxyFailure.class)) {
      return classify(t, host);
    }
    if (t instanceof ConnectionPoolTooBusyException) {
      return plain(ErrorKind.CONNECTION_LIMIT_REACHED, "all " + limits.perDestination()
          + " connections to " + host + " are busy and " + limits.waitQueue()
          + " requests already wait for one (limits.maxConnectionsPerDestination)", t);
    }
    if (t instanceof TimeoutException) {
      return plain(ErrorKind.CONNECTION_LIMIT_REACHED, "no connection to " + host
          + " became free within " + limits.waitMillis() + " ms; all " + limits.perDestination()
          + " are busy (limits.maxConnectionsPerDestination)", t);
    }
    if (has(t, SslHandshakeTimeoutException.class)) {
      return protocolError(host + " did not complete a TLS handshake within "
          + limits.handshakeMillis() + " ms (timeouts.handshake)", t);
    }
    return classify(t, host);
  }

  /**
   * The handshake result of a failure a stage already classified: from its cause where it has
   * one, else from its kind; null when it is no TLS failure.
   */
  private static HandshakeResult handshakeOf(ProxyFailure f) {
    if (!isTlsFailure(f)) {
      return null;
    }
    if (has(f.getCause(), Pins.PinMismatchException.class)) {
      return HandshakeResult.PIN_MISMATCH;
    }
    return f.kind() == ErrorKind.TLS_CERTIFICATE_ERROR ? HandshakeResult.CERTIFICATE_ERROR
        : HandshakeResult.PROTOCOL_ERROR;
  }

  public static boolean isTlsFailure(ProxyFailure f) {
    return f.kind() == ErrorKind.TLS_CERTIFICATE_ERROR || f.kind() == ErrorKind.TLS_PROTOCOL_ERROR;
  }

  private static Classification plain(ErrorKind kind, String details, Throwable t) {
    return new Classification(new ProxyFailure(kind, details, t), null);
  }

  private static Classification protocolError(String details, Throwable t) {
    return new Classification(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, details, t),
        HandshakeResult.PROTOCOL_ERROR);
  }

  /**
   * Vert.x's shared "Connection was closed" exception, by identity: it has no type of its own
   * (the connection classes reuse that one instance; {@link VertxRuntime#isConnectionClosed}).
   */
  private static boolean isVertxClosed(Throwable t) {
    Throwable c = t;
    for (int depth = 0; c != null && depth < MAX_DEPTH; depth++, c = next(c)) {
      if (VertxRuntime.isConnectionClosed(c)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Why a certificate was refused, in words an operator can act on. The JDK wraps its reason in
   * PKIX layers ("PKIX path validation failed: ... validity check failed"); the useful part is
   * the innermost cause, or the validator's reason code. Egret's own refusals (host name, weak
   * key or signature, pins) already say what to fix and are passed through.
   */
  private static String certificateReason(Throwable t, CertificateException outer) {
    CertificateExpiredException expired = find(t, CertificateExpiredException.class);
    if (expired != null) {
      return "the certificate has expired (" + describe(expired) + ")";
    }
    CertificateNotYetValidException early = find(t, CertificateNotYetValidException.class);
    if (early != null) {
      return "the certificate is not yet valid (" + describe(early) + ")";
    }
    if (find(t, CertPathBuilderException.class) != null) {
      return noTrustedRoot();
    }
    CertPathValidatorException invalid = find(t, CertPathValidatorException.class);
    if (invalid != null) {
      CertPathValidatorException.Reason reason = invalid.getReason();
      if (reason == CertPathValidatorException.BasicReason.EXPIRED) {
        return "the certificate has expired (" + describe(invalid) + ")";
      }
      if (reason == CertPathValidatorException.BasicReason.NOT_YET_VALID) {
        return "the certificate is not yet valid (" + describe(invalid) + ")";
      }
      if (reason == PKIXReason.NO_TRUST_ANCHOR) {
        return noTrustedRoot();
      }
      if (reason == CertPathValidatorException.BasicReason.ALGORITHM_CONSTRAINED) {
        return "the chain uses an algorithm or key size the JDK refuses: " + describe(invalid);
      }
      return "the chain does not validate: " + describe(invalid);
    }
    return describe(outer);
  }

  private static String noTrustedRoot() {
    return "no chain to a trusted root: the issuer is in neither tls.trust nor the rule's trust,"
        + " or the server does not send its intermediate certificates";
  }

  /**
   * A handshake that failed without Egret refusing a certificate. When the server sent an alert,
   * its name says why; otherwise the JDK refused something locally (a version or suite it would
   * not accept), which is a protocol error too.
   */
  private static Classification tlsFailure(Throwable t, String host) {
    SSLException innermost = innermost(t, SSLException.class);
    String alert = alert(t);
    String said = describe(innermost);
    if (alert != null && !said.contains(alert)) {
      said += " (alert " + alert + ")"; // BoringSSL's wording names it in capitals only
    }
    if (alert != null && CERTIFICATE_ALERTS.contains(alert)) {
      // Egret refuses server certificates itself (above), so a certificate alert comes from the
      // server: it wanted a client certificate, or refused the one the rule presents.
      return new Classification(new ProxyFailure(ErrorKind.TLS_CERTIFICATE_ERROR, host
          + " refused Egret's client certificate or wanted one (set clientCert on the rule for"
          + " mTLS): " + said, t), HandshakeResult.CERTIFICATE_ERROR);
    }
    if ("protocol_version".equals(alert)) {
      return protocolError(host + " speaks no TLS version that Egret allows (TLS 1.2 or 1.3, at"
          + " least tls.minVersion): " + said, t);
    }
    if ("handshake_failure".equals(alert) || "insufficient_security".equals(alert)) {
      return protocolError(host + " shares no cipher suite with Egret, which offers only AEAD"
          + " suites with forward secrecy (TLS 1.3, ECDHE with AES-GCM or ChaCha20-Poly1305): "
          + said, t);
    }
    return protocolError("upstream TLS with " + host + " failed: " + said, t);
  }

  /**
   * The name of the fatal alert the peer sent, or null. The JDK has no exception type per alert
   * (see the class comment); its message for a received alert has this one fixed shape.
   */
  static String alert(Throwable t) {
    Throwable c = t;
    for (int depth = 0; c != null && depth < MAX_DEPTH; depth++, c = next(c)) {
      if (c instanceof SSLException && c.getMessage() != null) {
        Matcher m = RECEIVED_ALERT.matcher(c.getMessage());
        if (m.find()) {
          return m.group(1).toLowerCase(Locale.ROOT);
        }
        Matcher b = BORINGSSL_ALERT.matcher(c.getMessage());
        if (b.find()) {
          return b.group(1).toLowerCase(Locale.ROOT);
        }
      }
    }
    return null;
  }

  static boolean has(Throwable t, Class<? extends Throwable> type) {
    return find(t, type) != null;
  }

  /** The outermost cause of {@code type}, or null. */
  private static <T extends Throwable> T find(Throwable t, Class<T> type) {
    Throwable c = t;
    for (int depth = 0; c != null && depth < MAX_DEPTH; depth++, c = next(c)) {
      if (type.isInstance(c)) {
        return type.cast(c);
      }
    }
    return null;
  }

  /** The innermost cause of {@code type}, or null. */
  private static <T extends Throwable> T innermost(Throwable t, Class<T> type) {
    T found = null;
    Throwable c = t;
    for (int depth = 0; c != null && depth < MAX_DEPTH; depth++, c = next(c)) {
      if (type.isInstance(c)) {
        found = type.cast(c);
      }
    }
    return found;
  }

  private static Throwable next(Throwable c) {
    Throwable cause = c.getCause();
    return cause == c ? null : cause;
  }

  private static String describe(Throwable t) {
    String m = t.getMessage();
    return m == null ? t.getClass().getSimpleName() : m.replaceAll("\\s+", " ");
  }
}
