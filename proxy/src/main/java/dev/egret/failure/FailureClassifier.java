package dev.egret.failure;

import io.netty.channel.ConnectTimeoutException;
import io.netty.handler.ssl.NotSslRecordException;
import io.vertx.core.VertxException;
import io.vertx.core.http.HttpClosedException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.UnknownHostException;
import java.security.cert.CertificateException;
import java.util.Locale;
import java.util.concurrent.TimeoutException;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLHandshakeException;

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
          "upstream certificate of " + host + " refused: " + rootMessage(t, CertificateException.class), t);
    }
    if (has(t, NotSslRecordException.class)) {
      return new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR,
          host + " did not answer with TLS", t);
    }
    if (has(t, SSLException.class)) {
      String m = message.toLowerCase(Locale.ROOT);
      // The JDK reports bad certificates from the peer's alert as handshake failures too.
      if (m.contains("certificate") && !m.contains("protocol")) {
        return new ProxyFailure(ErrorKind.TLS_CERTIFICATE_ERROR,
            "upstream TLS with " + host + " failed on its certificate: " + message, t);
      }
      return new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR,
          "upstream TLS with " + host + " failed: " + message, t);
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

  private static String rootMessage(Throwable t, Class<? extends Throwable> type) {
    String found = null;
    for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
      if (type.isInstance(c) && c.getMessage() != null) {
        found = c.getMessage();
        break;
      }
    }
    return found == null ? describe(t) : found;
  }

  private static String describe(Throwable t) {
    String m = t.getMessage();
    return m == null ? t.getClass().getSimpleName() : m.replaceAll("\\s+", " ");
  }
}
