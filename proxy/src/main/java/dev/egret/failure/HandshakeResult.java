package dev.egret.failure;

/**
 * How an upstream TLS handshake ended: the {@code result} label of {@code
 * egret_upstream_tls_handshakes_total}. Usage: {@link #OK} where the handshake passed; where it
 * failed, {@code FailureClassifier.classify(cause, host).handshake()} sorts the failure (with
 * its error kind, in the same decision); then {@link Telemetry#upstreamHandshake}.
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
}
