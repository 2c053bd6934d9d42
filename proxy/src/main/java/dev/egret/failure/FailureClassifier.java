package dev.egret.failure;

import io.netty.channel.ConnectTimeoutException;
import io.netty.handler.ssl.NotSslRecordException;
import io.vertx.core.VertxException;
import io.vertx.core.http.HttpClosedException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.UnknownHostException;
import java.security.cert.CertPathBuilderException;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.util.Locale;
import java.util.concurrent.TimeoutException;
import javax.net.ssl.SSLException;

/**
 * Sorts what the network throws into the SPEC's fixed set of error kinds, so metrics and logs get
 * bounded labels and the client gets the right status. The raw message survives in the details.
 */
public final class FailureClassifier {
  private FailureClassifier() {}

  /** Classifies an upstream failure on the way to {@code host}. */
  public static ProxyFailure classify(Throwable t, String host) {
    if (t instanceof ProxyFailure f) {
      return f;
    }
    String message = describe(t);
    if (has(t, CertificateException.class)) {
      return new ProxyFailure(ErrorKind.TLS_CERTIFICATE_ERROR,
          "upstream certificate of " + host + " refused: " + certificateReason(t), t);
    }
    if (has(t, NotSslRecordException.class)) {
      return new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR,
          host + " did not answer with TLS", t);
    }
    if (has(t, SSLException.class)) {
      return tlsFailure(t, host);
    }
    if (has(t, ConnectTimeoutException.class)) {
      return new ProxyFailure(ErrorKind.CONNECTION_TIMEOUT,
          "connecting to " + host + " timed out", t);
    }
    if (has(t, ConnectException.class) || has(t, NoRouteToHostException.class)) {
      return new ProxyFailure(ErrorKind.CONNECTION_REFUSED,
          "connection to " + host + " refused: " + message, t);
    }
    if (has(t, UnknownHostException.class)) {
      return new ProxyFailure(ErrorKind.DNS_ERROR, "cannot resolve " + host + ": " + message, t);
    }
    if (has(t, TimeoutException.class)) {
      return new ProxyFailure(ErrorKind.RESPONSE_TIMEOUT, host + " did not answer in time", t);
    }
    String m = message.toLowerCase(Locale.ROOT);
    if (m.contains("max wait queue") || m.contains("pool reached")) {
      return new ProxyFailure(ErrorKind.CONNECTION_LIMIT_REACHED,
          "too many connections to " + host + " are in use", t);
    }
    if (has(t, HttpClosedException.class)) {
      return new ProxyFailure(ErrorKind.DESTINATION_UNAVAILABLE,
          host + " closed the connection before answering", t);
    }
    if (t instanceof VertxException && m.contains("connection was closed")) {
      return new ProxyFailure(ErrorKind.DESTINATION_UNAVAILABLE,
          host + " closed the connection before answering", t);
    }
    if (m.contains("invalid http") || m.contains("decoder") || m.contains("too long")) {
      return new ProxyFailure(ErrorKind.UPSTREAM_PROTOCOL_ERROR,
          host + " sent an invalid HTTP response: " + message, t);
    }
    return new ProxyFailure(ErrorKind.DESTINATION_UNAVAILABLE,
        "upstream " + host + " failed: " + message, t);
  }

  /**
   * Why a certificate was refused, in words an operator can act on. The JDK wraps its reason in
   * PKIX layers ("PKIX path validation failed: ... validity check failed"); the useful part is
   * the innermost cause. Egret's own refusals (host name, weak key or signature, pins) already
   * say what to fix and are passed through.
   */
  private static String certificateReason(Throwable t) {
    CertificateExpiredException expired = find(t, CertificateExpiredException.class);
    if (expired != null) {
      return "the certificate has expired (" + describe(expired) + ")";
    }
    CertificateNotYetValidException early = find(t, CertificateNotYetValidException.class);
    if (early != null) {
      return "the certificate is not yet valid (" + describe(early) + ")";
    }
    if (find(t, CertPathBuilderException.class) != null) {
      return "no chain to a trusted root: the issuer is in neither tls.trust nor the rule's trust,"
          + " or the server does not send its intermediate certificates";
    }
    CertPathValidatorException invalid = find(t, CertPathValidatorException.class);
    if (invalid != null) {
      return "the chain does not validate: " + describe(invalid);
    }
    return describe(find(t, CertificateException.class));
  }

  /**
   * A handshake that failed without Egret refusing a certificate: the server's alert says why.
   * Vert.x wraps it ("Failed to create SSL connection"), so the innermost TLS message is read.
   */
  private static ProxyFailure tlsFailure(Throwable t, String host) {
    String alert = describe(innermost(t, SSLException.class));
    String a = alert.toLowerCase(Locale.ROOT);
    if (a.contains("protocol_version") || a.contains("no appropriate protocol")) {
      return new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, host + " speaks no TLS version that"
          + " Egret allows (TLS 1.2 or 1.3, at least tls.minVersion): " + alert, t);
    }
    if (a.contains("handshake_failure") || a.contains("insufficient_security")
        || a.contains("no cipher suites in common")) {
      return new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, host + " shares no cipher suite with"
          + " Egret, which offers only AEAD suites with forward secrecy (TLS 1.3, ECDHE with"
          + " AES-GCM or ChaCha20-Poly1305): " + alert, t);
    }
    if (a.contains("certificate")) {
      // Egret refuses server certificates itself (above), so a certificate alert comes from the
      // server: it wanted a client certificate, or refused the one the rule presents.
      return new ProxyFailure(ErrorKind.TLS_CERTIFICATE_ERROR, host + " refused Egret's client"
          + " certificate or wanted one (set clientCert on the rule for mTLS): " + alert, t);
    }
    return new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR,
        "upstream TLS with " + host + " failed: " + alert, t);
  }

  public static boolean isTlsFailure(ProxyFailure f) {
    return f.kind() == ErrorKind.TLS_CERTIFICATE_ERROR || f.kind() == ErrorKind.TLS_PROTOCOL_ERROR;
  }

  static boolean has(Throwable t, Class<? extends Throwable> type) {
    for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
      if (type.isInstance(c)) {
        return true;
      }
    }
    return false;
  }

  /** The outermost cause of {@code type}, or null. */
  private static <T extends Throwable> T find(Throwable t, Class<T> type) {
    for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
      if (type.isInstance(c)) {
        return type.cast(c);
      }
    }
    return null;
  }

  /** The innermost cause of {@code type}, or null. */
  private static <T extends Throwable> T innermost(Throwable t, Class<T> type) {
    T found = null;
    for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
      if (type.isInstance(c)) {
        found = type.cast(c);
      }
    }
    return found;
  }

  private static String describe(Throwable t) {
    String m = t.getMessage();
    return m == null ? t.getClass().getSimpleName() : m.replaceAll("\\s+", " ");
  }
}
