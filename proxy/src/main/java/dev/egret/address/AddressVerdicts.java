package dev.egret.address;

import dev.egret.runtime.VertxRuntime;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The address guard's verdict for every address a host resolves to, for {@code egret explain}.
 * It resolves the way {@code run} does (Vert.x's resolver, reading /etc/hosts and
 * /etc/resolv.conf), and judges each address with the same {@link AddressPolicy}, so a name
 * that would be refused with {@code destination_ip_prohibited} says so before any request.
 *
 * <p>Blocking: waits for the resolver up to the timeout. Call it from a command-line thread,
 * never from an event loop.
 */
public final class AddressVerdicts {
  private AddressVerdicts() {}

  /** One resolved address and the range that denies it (null when allowed). */
  public record Verdict(InetAddress address, Cidr deniedBy) {
    public boolean allowed() {
      return deniedBy == null;
    }
  }

  /** The addresses of {@code host} with their verdicts, or a failure naming why none came. */
  public record Resolution(List<Verdict> verdicts, String failure) {
    /** True when every address passes: what the proxy needs to connect. */
    public boolean allowed() {
      return failure == null && !verdicts.isEmpty() && verdicts.stream().allMatch(Verdict::allowed);
    }
  }

  /** Resolves {@code host} (a name or an IP literal) and judges each address. */
  public static Resolution resolve(String host, List<Cidr> ruleExempt, AddressPolicy policy, Duration timeout) {
    List<InetAddress> addresses = new ArrayList<>();
    if (HostName.isIpLiteral(host)) {
      byte[] bytes = Cidr.literal(host);
      if (bytes == null) {
        return new Resolution(List.of(), "'" + host + "' is not a canonical IP address");
      }
      try {
        addresses.add(InetAddress.getByAddress(host, bytes));
      } catch (java.net.UnknownHostException e) {
        return new Resolution(List.of(), e.getMessage());
      }
    } else {
      Vertx vertx = Vertx.vertx();
      try {
        Promise<List<InetSocketAddress>> resolved = Promise.promise();
        new VertxRuntime(vertx).resolveAll(host, resolved::handle);
        for (InetSocketAddress a : resolved.future().await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
          addresses.add(a.getAddress());
        }
      } catch (java.util.concurrent.TimeoutException e) {
        return new Resolution(List.of(), "no answer for " + host + " within " + timeout.toMillis()
            + " ms (dns_error)");
      } catch (Exception e) {
        return new Resolution(List.of(), "cannot resolve " + host + ": "
            + (e.getMessage() == null ? e : e.getMessage()) + " (dns_error)");
      } finally {
        try {
          vertx.close().await(5, TimeUnit.SECONDS);
        } catch (Exception e) {
          // the answer is in; a slow close only delays the command's exit
        }
      }
      if (addresses.isEmpty()) {
        return new Resolution(List.of(), host + " has no address (dns_error)");
      }
    }
    List<Verdict> verdicts = new ArrayList<>();
    for (InetAddress a : addresses) {
      verdicts.add(new Verdict(a, policy.deniedRange(a, ruleExempt)));
    }
    return new Resolution(List.copyOf(verdicts), null);
  }
}
