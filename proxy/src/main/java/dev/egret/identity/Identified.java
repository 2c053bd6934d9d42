package dev.egret.identity;

import dev.egret.failure.ProxyFailure;

/**
 * The identity stage's answer for one request: the client, or the refusal with the labels of
 * {@code egret_identity_failures_total}. Immutable.
 *
 * @param client who the request is from; null when refused
 * @param source what named the client: certificate, token, address, tunnel (the CONNECT's
 *     identity), or onMissing; for a refusal, the {@code source} label
 * @param reason null when identified; else the {@code reason} label (missing, malformed,
 *     unknown, conflict)
 * @param refusal what the client is told; null when identified
 */
public record Identified(Client client, String source, String reason, ProxyFailure refusal) {

  static Identified as(Client client, String source) {
    return new Identified(client, source, null, null);
  }

  static Identified refused(String source, String reason, ProxyFailure refusal) {
    return new Identified(null, source, reason, refusal);
  }

  public boolean refused() {
    return refusal != null;
  }
}
