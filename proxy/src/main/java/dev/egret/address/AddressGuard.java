package dev.egret.address;

import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import dev.egret.runtime.VertxRuntime;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.List;

/**
 * Resolves an allowed host and checks every address it resolves to before Egret connects. The
 * address it returns is the one Egret must connect to: the upstream client is handed this
 * address, never the name, so a DNS answer that changes between check and connect (rebinding)
 * cannot slip a private address through.
 *
 * <p>Resolution is asynchronous, through Vert.x's resolver (which honours /etc/hosts and
 * /etc/resolv.conf, or the {@code AddressResolverOptions} the Vertx instance was built with).
 */
public final class AddressGuard {
  private final VertxRuntime resolver;

  public AddressGuard(Vertx vertx) {
    this.resolver = new VertxRuntime(vertx);
  }

  /**
   * Resolves {@code host} and judges its addresses.
   *
   * @return the checked address to connect to; fails with a {@link ProxyFailure} of kind
   *     {@code DNS_ERROR} or {@code DESTINATION_IP_PROHIBITED}
   */
  public Future<InetAddress> check(String host, List<Cidr> ruleExempt, AddressPolicy policy) {
    if (HostName.isIpLiteral(host)) {
      byte[] bytes = Cidr.literal(host);
      if (bytes == null) {
        return Future.failedFuture(new ProxyFailure(ErrorKind.REQUEST_ERROR,
            "'" + host + "' is not a canonical IP address"));
      }
      try {
        InetAddress address = InetAddress.getByAddress(host, bytes);
        return judge(host, List.of(address), ruleExempt, policy);
      } catch (UnknownHostException e) {
        return Future.failedFuture(new ProxyFailure(ErrorKind.REQUEST_ERROR, e.getMessage()));
      }
    }
    Promise<List<InetSocketAddress>> resolved = Promise.promise();
    resolver.resolveAll(host, resolved::handle);
    return resolved.future()
        .recover(e -> Future.failedFuture(new ProxyFailure(ErrorKind.DNS_ERROR,
            "cannot resolve " + host + ": " + (e.getMessage() == null ? e : e.getMessage()), e)))
        .compose(list -> judge(host,
            list.stream().map(InetSocketAddress::getAddress).toList(), ruleExempt, policy));
  }

  /** Fails unless every address passes; package-private for tests of multi-address answers. */
  static Future<InetAddress> judge(String host, List<InetAddress> addresses, List<Cidr> ruleExempt,
      AddressPolicy policy) {
    if (addresses.isEmpty()) {
      return Future.failedFuture(new ProxyFailure(ErrorKind.DNS_ERROR, host + " has no address"));
    }
    // Every address must pass, not just the first: a name that resolves to one public and one
    // private address is a rebinding setup, whichever order the resolver returns.
    for (InetAddress a : addresses) {
      Cidr range = policy.deniedRange(a, ruleExempt);
      if (range != null) {
        return Future.failedFuture(new ProxyFailure(ErrorKind.DESTINATION_IP_PROHIBITED,
            host + " resolves to " + a.getHostAddress() + ", which is in the denied range "
                + range + "; exempt it with addresses.allow or the rule's allowAddresses"));
      }
    }
    return Future.succeededFuture(addresses.get(0));
  }
}
