package dev.egret.policy;

import java.util.List;

/**
 * {@code routing:}: how allowed hops reach their destination. Immutable; part of the {@link
 * Allowlist}. {@link #route} is the one place the route is chosen, in this order:
 *
 * <ol>
 *   <li>the matched rule's {@code upstreamProxy} (a proxy name, or {@code none} for direct);
 *   <li>else a {@code routing.direct} pattern that matches the host: direct;
 *   <li>else {@code routing.upstreamProxy} (a proxy name, or {@code none});
 *   <li>else direct.
 * </ol>
 *
 * @param defaultRoute {@code routing.upstreamProxy}, direct when absent
 * @param direct {@code routing.direct}: hosts that go direct unless their rule names a proxy
 */
public record Routing(UpstreamRoute defaultRoute, List<HostPattern> direct) {
  /** No {@code routing:}: every hop goes direct. */
  public static final Routing DIRECT = new Routing(UpstreamRoute.DIRECT, List.of());

  public Routing {
    direct = List.copyOf(direct);
  }

  /** The route of a hop to {@code host} that {@code rule} admitted (null: no rule, report mode). */
  public UpstreamRoute route(Rule rule, String host) {
    if (rule != null && rule.route() != null) {
      return rule.route();
    }
    if (!direct.isEmpty()) {
      String[] labels = HostPattern.labelsOf(host);
      for (HostPattern p : direct) {
        if (p.matches(host, labels)) {
          return UpstreamRoute.DIRECT;
        }
      }
    }
    return defaultRoute;
  }
}
