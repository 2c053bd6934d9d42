package dev.egret.policy;

import dev.egret.address.Cidr;
import dev.egret.tls.TlsProfile;
import java.util.List;
import java.util.Set;

/**
 * One compiled {@code allow:} entry.
 *
 * @param host the host pattern
 * @param ports upstream ports allowed (after the upgrade mapping)
 * @param methods upper-case methods allowed; empty means any
 * @param paths path patterns allowed; empty means any
 * @param plaintext this rule's plaintext policy (the top-level one when the rule sets none)
 * @param upgradePort the port an upgraded request goes to, or null for the documented mapping
 * @param allowAddresses CIDRs this rule alone may reach although the address guard denies them
 * @param tls trust, pins and client certificate for upstream TLS to this rule's hosts
 * @param echAllowed {@code ech: allow}: tunnels may carry an encrypted ClientHello, whose real
 *     destination Egret cannot see (off by default)
 * @param line the line of the rule in the config, for messages
 * @param headers headers Egret sets or removes on requests it writes itself, and whether a
 *     CONNECT (which would bypass them) is allowed anyway
 * @param route the rule's {@code upstreamProxy} (a proxy, or direct for {@code none}), or null
 *     when the rule leaves the route to {@code routing:}
 */
public record Rule(
    HostPattern host,
    Set<Integer> ports,
    Set<String> methods,
    List<PathPattern> paths,
    Plaintext plaintext,
    Integer upgradePort,
    List<Cidr> allowAddresses,
    TlsProfile tls,
    boolean echAllowed,
    int line,
    HeaderRules headers,
    UpstreamRoute route) {

  /** A rule that leaves its route to {@code routing:}. */
  public Rule(HostPattern host, Set<Integer> ports, Set<String> methods, List<PathPattern> paths,
      Plaintext plaintext, Integer upgradePort, List<Cidr> allowAddresses, TlsProfile tls,
      boolean echAllowed, int line, HeaderRules headers) {
    this(host, ports, methods, paths, plaintext, upgradePort, allowAddresses, tls, echAllowed,
        line, headers, null);
  }

  /** A rule without injected headers, that refuses encrypted ClientHellos. */
  public Rule(HostPattern host, Set<Integer> ports, Set<String> methods, List<PathPattern> paths,
      Plaintext plaintext, Integer upgradePort, List<Cidr> allowAddresses, TlsProfile tls,
      int line) {
    this(host, ports, methods, paths, plaintext, upgradePort, allowAddresses, tls, false, line,
        HeaderRules.NONE);
  }

  /** A rule without injected headers. */
  public Rule(HostPattern host, Set<Integer> ports, Set<String> methods, List<PathPattern> paths,
      Plaintext plaintext, Integer upgradePort, List<Cidr> allowAddresses, TlsProfile tls,
      boolean echAllowed, int line) {
    this(host, ports, methods, paths, plaintext, upgradePort, allowAddresses, tls, echAllowed,
        line, HeaderRules.NONE);
  }

  /** The port Egret connects to for a target this rule admits. */
  public int upstreamPort(Target target) {
    return Allowlist.upstreamPort(target, upgradePort);
  }
}
