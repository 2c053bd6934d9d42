package dev.egret.telemetry;

import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import dev.egret.tls.Pins;
import java.security.cert.CertificateException;

/**
 * How an upstream TLS handshake ended: the {@code result} label of {@code
 * egret_upstream_tls_handshakes_total}. Usage: {@code HandshakeResult.of(failure)} where the
 * handshake failed, {@link #OK} where it passed, then {@link Telemetry#upstreamHandshake(String,
 * String, String, String, HandshakeResult, double, java.security.cert.X509Certificate)}.
 */
public enum HandshakeResult {
  /** The handshake and every certificate check passed. */
  OK("ok"),
  /** Untrusted chain, expired or not yet valid, wrong host, weak key or signature. */
  CERTIFICATE_ERROR("certificate_error"),
  /** Version below the minimum, no shared cipher, not TLS at all, or the connection broke. */
  PROTOCOL_ERROR("protocol_error"),
  /** The chain verified, but none of the rule's SPKI pins is in it. */
  PIN_MISMATCH("pin_mismatch");

  private final String label;

  HandshakeResult(String label) {
    this.label = label;
  }

  public String label() {
    return label;
  }

  /**
   * Sorts a handshake failure by walking its causes: a pin mismatch wins, then any certificate
   * problem (including a {@link ProxyFailure} already classified as one); anything else is a
   * protocol error.
   */
  public static HandshakeResult of(Throwable failure) {
    boolean certificate = false;
    // Bounded: a cause chain can loop.
    Throwable t = failure;
    for (int depth = 0; t != null && depth < 16; depth++, t = t.getCause()) {
      if (t instanceof Pins.PinMismatchException) {
        return PIN_MISMATCH;
      }
      if (t instanceof CertificateException
          || (t instanceof ProxyFailure f && f.kind() == ErrorKind.TLS_CERTIFICATE_ERROR)) {
        certificate = true;
      }
    }
    return certificate ? CERTIFICATE_ERROR : PROTOCOL_ERROR;
  }
}
