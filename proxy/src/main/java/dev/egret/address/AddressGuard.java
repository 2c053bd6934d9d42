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

  /** An IP literal host and its address: the same text always makes the same address. */
  private record Literal(String host, InetAddress address) {}

  /**
   * The last literal parsed: a sidecar's hops mostly name the same upstream, and parsing the
   * text again is work per hop. Shared by every event loop without a lock: a record's fields are
   * final, so a racing reader sees one whole entry, and a miss only parses again.
   */
  private Literal lastLiteral;

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
      try {
        return Future.succeededFuture(checkLiteral(host, ruleExempt, policy));
      } catch (ProxyFailure f) {
        return Future.failedFuture(f);
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

  /**
   * Judges an IP literal host ({@link HostName#isIpLiteral}) now, as {@link #check} would: there
   * is nothing to resolve, so the hop needs no future to wait on.
   *
   * @return the checked address to connect to
   * @throws ProxyFailure of kind {@code REQUEST_ERROR} or {@code DESTINATION_IP_PROHIBITED}
   */
  public InetAddress checkLiteral(String host, List<Cidr> ruleExempt, AddressPolicy policy) {
    Literal last = lastLiteral;
    InetAddress address;
    if (last != null && last.host().equals(host)) {
      address = last.address();
    } else {
      byte[] bytes = Cidr.literal(host);
      if (bytes == null) {
        throw new ProxyFailure(ErrorKind.REQUEST_ERROR,
            "'" + host + "' is not a canonical IP address");
      }
      try {
        address = InetAddress.getByAddress(host, bytes);
      } catch (UnknownHostException e) {
        throw new ProxyFailure(ErrorKind.REQUEST_ERROR, e.getMessage());
      }
      lastLiteral = new Literal(host, address);
    }
    // Judged on every hop: the policy and the rule's exemptions are the hop's own.
    Cidr range = policy.deniedRange(address, ruleExempt);
    if (range != null) {
      throw prohibited(host, address, range);
    }
    return address;
  }

  private static ProxyFailure prohibited(String host, InetAddress a, Cidr range) {
    return new ProxyFailure(ErrorKind.DESTINATION_IP_PROHIBITED,
        host + " resolves to " + a.getHostAddress() + ", which is in the denied range "
            + range + "; exempt it with addresses.allow or the rule's allowAddresses");
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
        return Future.failedFuture(prohibited(host, a, range));
      }
    }
    return Future.succeededFuture(addresses.get(0));
  }
}
