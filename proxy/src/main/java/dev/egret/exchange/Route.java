package dev.egret.exchange;

import dev.egret.address.AddressGuard;
import dev.egret.address.HostName;
import dev.egret.config.EgretConfig;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import dev.egret.identity.Clients;
import dev.egret.identity.Credentials;
import dev.egret.identity.Identified;
import dev.egret.policy.Allowlist;
import dev.egret.policy.Decision;
import dev.egret.policy.Kind;
import dev.egret.policy.Reason;
import dev.egret.telemetry.Telemetry;
import io.vertx.core.Future;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The stages every hop passes before anything goes upstream, in order: the loop check on {@code
 * Via}, the allowlist's {@link Decision}, the address guard (resolve once, judge every address,
 * keep the one to dial), the loop check on Egret's own sockets, and a slot under {@code
 * limits.maxConnectionsPerDestination}. {@link #admit} returns the exchange with all of that
 * recorded, or fails with the {@link ProxyFailure} the client is to be told.
 */
public final class Route {
  private final AddressGuard guard;
  private final String viaToken;
  private final Supplier<Set<InetSocketAddress>> ownAddresses;
  private final DestinationSlots slots = new DestinationSlots();
  private final Telemetry telemetry;

  /**
   * @param viaToken Egret's own {@code Via} pseudonym; a request already carrying it has looped
   * @param ownAddresses the bound listener sockets; a target that resolves to one loops
   * @param telemetry counts identity refusals
   */
  public Route(AddressGuard guard, String viaToken, Supplier<Set<InetSocketAddress>> ownAddresses,
      Telemetry telemetry) {
    this.guard = guard;
    this.viaToken = viaToken;
    this.ownAddresses = ownAddresses;
    this.telemetry = telemetry;
  }

  /** Decides, then resolves and checks; the future fails with the refusal or failure. */
  public Future<Exchange> admit(Exchange ex) {
    Exchange admitted;
    try {
      admitted = admitNow(ex);
    } catch (ProxyFailure f) {
      return Future.failedFuture(f);
    }
    return admitted != null ? Future.succeededFuture(admitted) : resolve(ex);
  }

  /**
   * {@link #admit} without a future when nothing has to wait: decides and, unless the host is a
   * name to resolve, checks its address and takes the slot. Returns the admitted exchange; null
   * when the host must be resolved first, which {@link #resolve} then does (the decision is
   * made and recorded by then, and is not made again).
   *
   * @throws ProxyFailure the refusal or failure the client is to be told
   */
  public Exchange admitNow(Exchange ex) {
    decide(ex);
    Decision d = ex.decision();
    if (d.reason() == Reason.PLAIN_HTTP_ONLY) {
      // Nothing is dialled for this CONNECT: each plain request inside routes on its own.
      return ex;
    }
    String host = ex.host();
    if (!HostName.isIpLiteral(host)) {
      return null;
    }
    // An IP literal is judged at once: the same checks as after a resolution, without the
    // future chain that a name needs. The DNS time is taken as for a name (it resolved nothing).
    EgretConfig config = ex.serving().config();
    long dnsStart = System.nanoTime();
    InetAddress address;
    try {
      address = guard.checkLiteral(host, d.rule() == null ? null : d.rule().allowAddresses(),
          config.addresses());
    } finally {
      ex.timings().dns(System.nanoTime() - dnsStart);
    }
    return dialled(ex, d, config, address);
  }

  /**
   * The rest of {@link #admit} for a host {@link #admitNow} left to resolve: resolves, checks
   * every address and takes the slot; the future fails with the refusal or failure.
   */
  public Future<Exchange> resolve(Exchange ex) {
    Decision d = ex.decision();
    EgretConfig config = ex.serving().config();
    Dial dial = new Dial(ex, d, config, System.nanoTime());
    return guard.check(ex.host(), d.rule() == null ? null : d.rule().allowAddresses(),
            config.addresses())
        .compose(dial, dial.failed);
  }

  /** The checked address becomes the hop's upstream, unless it is Egret's own; takes a slot. */
  private Exchange dialled(Exchange ex, Decision d, EgretConfig config, InetAddress address) {
    InetSocketAddress upstream = new InetSocketAddress(address, d.upstreamPort());
    checkNotOwn(ex, upstream);
    return ex.routed(upstream, upstreamText(upstream), takeSlot(ex, config));
  }

  /** An upstream address and its access-log text, {@link Exchange#upstreamText}. */
  private record Formatted(InetAddress address, int port, String text) {}

  /**
   * The last address formatted. Most hops go to the few addresses of the same few upstreams,
   * so this spares formatting the address (and a concatenation) per hop. Read and written by
   * every event loop without a lock: a record's fields are final, so a racing reader sees
   * either value whole, and a miss only formats again.
   */
  private Formatted lastFormatted;

  private String upstreamText(InetSocketAddress upstream) {
    InetAddress address = upstream.getAddress();
    int port = upstream.getPort();
    Formatted f = lastFormatted;
    // IPv4 only: an IPv6 address's text carries a scope that its equals does not compare.
    if (f != null && f.port() == port && address instanceof java.net.Inet4Address
        && address.equals(f.address())) {
      return f.text();
    }
    String text = Exchange.upstreamText(upstream);
    lastFormatted = new Formatted(address, port, text);
    return text;
  }

  /**
   * What follows the address check, as one object rather than lambdas: under the sidecar
   * profile's client compiler each lambda capture is a call into the VM, and this runs for
   * every request. The DNS time is taken whether it resolved or not: a slow failure (a DNS
   * timeout) is worth seeing.
   */
  private final class Dial implements Function<InetAddress, Future<Exchange>> {
    private final Exchange ex;
    private final Decision d;
    private final EgretConfig config;
    private final long dnsStart;
    final Function<Throwable, Future<Exchange>> failed = new Function<>() {
      @Override
      public Future<Exchange> apply(Throwable e) {
        ex.timings().dns(System.nanoTime() - dnsStart);
        return Future.failedFuture(e);
      }
    };

    Dial(Exchange ex, Decision d, EgretConfig config, long dnsStart) {
      this.ex = ex;
      this.d = d;
      this.config = config;
      this.dnsStart = dnsStart;
    }

    @Override
    public Future<Exchange> apply(InetAddress address) {
      ex.timings().dns(System.nanoTime() - dnsStart);
      return Future.succeededFuture(dialled(ex, d, config, address));
    }
  }

  /**
   * The synchronous part: identity (gateway mode), loop check and allowlist; throws the
   * refusal. Identity goes first, so a client that is refused learns nothing of the policy.
   */
  void decide(Exchange ex) {
    Allowlist allowlist = identify(ex);
    RequestHead head = ex.head();
    if (head != null) {
      java.util.List<RequestHead.Header> headers = head.headers();
      for (int k = 0; k < headers.size(); k++) {
        RequestHead.Header h = headers.get(k);
        if (h.name().equalsIgnoreCase("via") && h.value().contains(viaToken)) {
          throw new ProxyFailure(ErrorKind.LOOP_DETECTED,
              "the request already passed through this Egret (" + viaToken + ")");
        }
      }
    }
    var target = ex.target().target();
    Decision d = target.kind() == Kind.TUNNEL
        ? allowlist.decideConnect(target) : allowlist.decide(target);
    ex.decided(d);
    if (!d.verdict().letsThrough()) {
      throw new ProxyFailure(ErrorKind.REQUEST_DENIED, d.details());
    }
  }

  /**
   * The allowlist that decides the hop: the top-level one in a sidecar; in gateway mode the
   * identified client's, after counting and raising a refusal.
   */
  private Allowlist identify(Exchange ex) {
    EgretConfig config = ex.serving().config();
    Clients clients = config.clients();
    if (!clients.gateway()) {
      return config.allowlist();
    }
    Credentials presented = ex.credentials();
    Identified id = clients.identify(presented != null ? presented
        : Credentials.addressOnly(null));
    ex.identified(id);
    if (id.refused()) {
      telemetry.identityFailure(id.source(), id.reason());
      throw id.refusal();
    }
    return id.client().allowlist();
  }

  private void checkNotOwn(Exchange ex, InetSocketAddress upstream) {
    InetAddress address = upstream.getAddress();
    for (InetSocketAddress own : ownAddresses.get()) {
      boolean samePort = own.getPort() == upstream.getPort();
      boolean sameHost = own.getAddress().isAnyLocalAddress()
          ? address.isLoopbackAddress() || address.isAnyLocalAddress()
          : own.getAddress().equals(address);
      if (samePort && sameHost) {
        throw new ProxyFailure(ErrorKind.LOOP_DETECTED,
            ex.target().target().describe() + " is Egret's own listener");
      }
    }
  }

  /** Takes the hop's slot, or refuses at once: a cap answers, it never queues. */
  private Runnable takeSlot(Exchange ex, EgretConfig config) {
    Decision d = ex.decision();
    // A report-mode hop that no rule matched has destination "denied"; counting all of those
    // together would let report mode cap unrelated hosts, so each such host counts alone.
    String destination = d.rule() == null ? "host " + ex.host() : d.destination();
    int limit = config.limits().maxConnectionsPerDestination();
    if (!slots.tryAcquire(destination, limit)) {
      throw new ProxyFailure(ErrorKind.CONNECTION_LIMIT_REACHED, destination + " already has "
          + limit + " requests and tunnels in flight (limits.maxConnectionsPerDestination)");
    }
    return new Release(destination);
  }

  /** Gives a slot back; a class rather than a lambda for the reason {@link Dial} gives. */
  private final class Release implements Runnable {
    private final String destination;

    Release(String destination) {
      this.destination = destination;
    }

    @Override
    public void run() {
      slots.release(destination);
    }
  }
}
