package dev.egret.policy;

/**
 * How an admitted hop reaches its destination: {@link #DIRECT}, or through one configured
 * {@link UpstreamProxy}. Part of the policy's decision, so it goes with the hop to the upstream
 * pool's key, the access log and {@code egret explain}. Clients cannot choose it: only the config
 * ({@code routing:} and a rule's {@code upstreamProxy}) does.
 *
 * @param proxy the proxy, or null for a direct connection
 */
public record UpstreamRoute(UpstreamProxy proxy) {
  public static final UpstreamRoute DIRECT = new UpstreamRoute(null);

  public static UpstreamRoute through(UpstreamProxy proxy) {
    return new UpstreamRoute(java.util.Objects.requireNonNull(proxy, "proxy"));
  }

  public boolean direct() {
    return proxy == null;
  }

  // Written out, as a record's own would be (the proxy's identity): the upstream pool's key
  // holds a route and is looked up for every request.
  @Override
  public boolean equals(Object o) {
    return this == o || o instanceof UpstreamRoute r && java.util.Objects.equals(proxy, r.proxy);
  }

  @Override
  public int hashCode() {
    return java.util.Objects.hashCode(proxy);
  }

  /** The proxy's configured name, or {@code none} for a direct route (the config's word). */
  public String name() {
    return proxy == null ? "none" : proxy.name();
  }

  @Override
  public String toString() {
    return proxy == null ? "direct" : proxy.describe();
  }
}
