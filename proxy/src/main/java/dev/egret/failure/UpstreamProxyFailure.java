package dev.egret.failure;

/**
 * A failure of the leg to an upstream proxy (its TCP connect, its TLS, its answer to {@code
 * CONNECT}), already told in the words the client gets: {@link #failure()}. A wrapper of its own
 * so that the failure classifier recognises it by type and passes it through whole: a TLS error
 * with the proxy is no handshake with the destination, and must not be counted as one.
 */
public final class UpstreamProxyFailure extends RuntimeException {
  private final ProxyFailure failure;
  private final String status;

  /**
   * @param status the {@code status} label of {@code egret_upstream_proxy_failures_total}: the
   *     proxy's HTTP status, or one of connect_failed, timeout, tls_error, closed, malformed
   */
  public UpstreamProxyFailure(ProxyFailure failure, String status) {
    super(failure.details(), failure, false, false);
    this.failure = failure;
    this.status = status;
  }

  public ProxyFailure failure() {
    return failure;
  }

  public String status() {
    return status;
  }
}
