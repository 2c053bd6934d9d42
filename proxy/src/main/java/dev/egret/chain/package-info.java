/**
 * Chaining to an upstream proxy: the optional leg between Egret and a destination when the
 * network lets traffic out only through a corporate proxy. {@link dev.egret.policy.UpstreamProxy}
 * is one configured proxy, {@link dev.egret.policy.UpstreamRoute} the route a decision chose
 * (direct or through a named proxy), and {@link dev.egret.chain.ProxyLeg} opens the leg: TCP (and
 * TLS, for an {@code https://} proxy) to the proxy, {@code CONNECT host:port}, its answer read
 * strictly, then the channel is handed to the upgrade or tunnel stage as if it were connected to
 * the destination. The policy has already run by then: a hop reaches this package only once the
 * allowlist, the address guard and the loop checks admitted it.
 */
package dev.egret.chain;

import dev.egret.policy.UpstreamRoute;
import dev.egret.policy.UpstreamProxy;