package dev.egret.propose;

import dev.egret.policy.Target;

/**
 * One hop read from the access log, re-parsed with the proxy's own request-target parser.
 *
 * @param target what the client asked for (kind, normalised host, port, method, path)
 * @param upstreamPort the port a rule must allow for it: the tunnel's or {@code https://} port,
 *     or the documented upgrade mapping for {@code http://} (80 goes to 443)
 * @param error the log's Proxy-Status error type, or {@code none}
 */
record Sighting(Target target, int upstreamPort, String error) {}
