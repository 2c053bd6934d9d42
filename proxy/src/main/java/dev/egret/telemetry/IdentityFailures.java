package dev.egret.telemetry;

import java.util.Set;

/**
 * The label values of {@code egret_identity_failures_total}: fixed sets, so a client cannot mint
 * series. A new reason is added here, with a line saying when it is counted.
 */
public final class IdentityFailures {
  private IdentityFailures() {}

  /** Where the identity was to come from. */
  public static final Set<String> SOURCES =
      Set.of("certificate", "token", "address", "proxy_protocol");

  /**
   * Why it was refused:
   * <ul>
   *   <li>{@code missing}: nothing named a client and {@code identity.onMissing} is deny, or
   *       (source {@code proxy_protocol}) the connection did not start with a PROXY header;
   *   <li>{@code malformed}: the credential or header could not be read;
   *   <li>{@code unknown}: well-formed, but no configured client has it;
   *   <li>{@code untrusted}: a certificate that does not verify, or a PROXY header from a peer
   *       outside {@code trustedPeers};
   *   <li>{@code conflict}: a certificate and a token that name different clients;
   *   <li>{@code timeout}: no PROXY header within the request-head deadline;
   *   <li>{@code repeated}: a second PROXY header behind the first (a client behind the load
   *       balancer trying to name its own address); the request parser refuses it with 400.
   * </ul>
   */
  public static final Set<String> REASONS =
      Set.of("missing", "malformed", "unknown", "untrusted", "conflict", "timeout", "repeated");
}
