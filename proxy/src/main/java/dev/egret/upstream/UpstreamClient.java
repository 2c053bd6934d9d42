package dev.egret.upstream;

import dev.egret.chain.ProxyLeg;
import dev.egret.policy.UpstreamRoute;
import dev.egret.config.EgretConfig;
import dev.egret.failure.FailureClassifier;
import dev.egret.failure.UpstreamProxyFailure;
import dev.egret.runtime.VertxRuntime;
import dev.egret.telemetry.Telemetry;
import dev.egret.tls.TlsProfile;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFactory;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.resolver.NoopAddressResolverGroup;
import io.netty.util.concurrent.ScheduledFuture;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.ConnectionPoolTooBusyException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The pooled keep-alive HTTP/1.1 client Egret originates upstream TLS with, written on Netty's
 * pipeline: each event loop has its own pools, and a request uses a connection of the loop its
 * downstream connection runs on, so a hop never crosses threads. A pool is kept per (host, checked
 * address, port, TLS profile, route): one rule's trust and pins never serve another's requests,
 * a host name's connections are never handed to another name that shares its address, and a
 * connection through an upstream proxy never serves a hop routed direct (or through another).
 *
 * <p>One per loaded config: the timeouts and limits come from it, and a reload retires the old
 * one ({@link #retire}). Bounds: per pool at most {@code limits.maxConnectionsPerDestination}
 * connections and four times as many requests waiting for one; an idle connection closes after
 * {@code timeouts.idle}, and a pool with no connection and no waiter is dropped, so a host reached
 * once holds nothing after that. Every timer of the steady state is one periodic tick per loop
 * (idle eviction, the response timeout, the wait for a free connection), running only while the
 * loop has connections; connect and handshake time out by Netty's own per-dial timers.
 *
 * <p>The address is the one the address guard checked; nothing here resolves a name again.
 * Through an upstream proxy, Egret dials the proxy (its own host, resolved by Vert.x's resolver)
 * and asks it for {@code CONNECT host:port} by name ({@link ProxyLeg}); its own TLS to the
 * destination then runs inside that tunnel, verified as on a direct connection.
 */
public final class UpstreamClient {
  private final VertxRuntime runtime;
  private final EgretConfig.Timeouts timeouts;
  private final int perDestination;
  private final int maxHeaderSize;
  final long idleNanos;
  public final long responseNanos;
  private final long waitNanos;
  private final long tickMillis;
  private final ChannelFactory<? extends Channel> channels;
  /** One entry per event loop that has asked; bounded by the number of loops. */
  private final Map<EventLoop, Loop> loops = new ConcurrentHashMap<>();
  private volatile boolean closed;
  private volatile boolean retired;

  public UpstreamClient(Vertx vertx, EgretConfig config) {
    this.runtime = new VertxRuntime(vertx);
    this.timeouts = config.timeouts();
    this.perDestination = config.limits().maxConnectionsPerDestination();
    this.maxHeaderSize = Math.max(8192, config.limits().maxHeaderBytes() * 4);
    this.idleNanos = Math.max(1, timeouts.idle().toNanos());
    this.responseNanos = Math.max(1, timeouts.response().toNanos());
    this.waitNanos = TimeUnit.MILLISECONDS.toNanos(poolWaitMillis());
    // Fine enough that a timeout fires within a quarter of its length (and within 250 ms).
    long shortest = Math.min(timeouts.idle().toMillis(), timeouts.response().toMillis());
    this.tickMillis = Math.max(10, Math.min(250, shortest / 4));
    this.channels = runtime.channelFactory();
  }

  /** What a request or a test gets from the pool: a connection, or why there is none. */
  public abstract static class Lease {
    /** When it started to wait for a connection (tick time), while it waits. */
    long waitingSince;

    /**
     * A connection is the lessee's until it gives it back ({@link UpstreamConnection#release})
     * or closes it. {@code setup} is non-null on a connection no request has used before.
     */
    public abstract void connected(UpstreamConnection c, Setup setup);

    /** No connection could be had; {@link UpstreamClient#acquireFailure} explains it. */
    public abstract void acquireFailed(Throwable cause);

    /** The connection in use closed (the cause, or null for a plain close). */
    public abstract void closed(Throwable cause);

    /** The connection in use read a message; the lessee owns it. */
    public abstract void read(Object msg);

    /** The connection in use can take more writes again. */
    public abstract void writable();

    /** The loop's tick, while the connection is in use: the response timeout's check. */
    public abstract void tick(long now);

    /** Where the leg to an upstream proxy reports, when this lessee's dial goes through one. */
    public Telemetry telemetry() {
      return Telemetry.NONE;
    }
  }

  /** Timings of a connection's setup, reported once, by the first request that uses it. */
  public record Setup(long connectNanos, long handshakeNanos) {}

  /**
   * Where a pool's connections go.
   *
   * @param address the checked address (what is dialled on a direct route)
   * @param route direct, or the upstream proxy the connections go through
   */
  public record Key(String host, InetSocketAddress address, TlsProfile tls, UpstreamRoute route) {
    Key(String host, InetSocketAddress address, TlsProfile tls) {
      this(host, address, tls, UpstreamRoute.DIRECT);
    }

    // Written out, with the same meaning as a record's own: those are generated at run time
    // as method-handle chains, which the client compiler runs slowly, and a pool is looked up
    // by its key for every request.
    @Override
    public boolean equals(Object o) {
      return this == o || o instanceof Key k && java.util.Objects.equals(host, k.host)
          && java.util.Objects.equals(address, k.address) && java.util.Objects.equals(tls, k.tls)
          && java.util.Objects.equals(route, k.route);
    }

    @Override
    public int hashCode() {
      return ((java.util.Objects.hashCode(host) * 31 + java.util.Objects.hashCode(address)) * 31
          + java.util.Objects.hashCode(tls)) * 31 + java.util.Objects.hashCode(route);
    }
  }

  /**
   * Asks for a connection to {@code key} on the calling event loop; the answer comes to {@code
   * lease}, at once or later on the same loop. {@code fresh} skips idle connections (a retry
   * after a pooled connection turned out closed).
   */
  public void acquire(EventLoop loop, Key key, Lease lease, boolean fresh) {
    if (closed) {
      lease.acquireFailed(new IllegalStateException("Client is closed"));
      return;
    }
    Loop l = loops.get(loop);
    if (l == null) {
      l = loops.computeIfAbsent(loop, Loop::new);
    }
    l.pool(key).acquire(lease, fresh);
  }

  /** {@code lease} no longer wants the connection it waits for (its client went away). */
  public void forget(EventLoop loop, Key key, Lease lease) {
    Loop l = loops.get(loop);
    Pool p = l == null ? null : l.pools.get(key);
    if (p != null) {
      p.forget(lease);
    }
  }

  /**
   * How long a request may wait for a connection: a new one takes at most the connect plus the
   * handshake timeout, so a request still without one by then is queued behind a full pool
   * ({@code limits.maxConnectionsPerDestination}), and waiting on would only hide that.
   */
  long poolWaitMillis() {
    return timeouts.connect().toMillis() + timeouts.handshake().toMillis();
  }

  /**
   * Explains why no connection could be had, in the config's words where the cause is one of
   * its limits or timeouts (the {@link FailureClassifier} decides which).
   */
  public FailureClassifier.Classification acquireFailure(Throwable cause, String host) {
    return FailureClassifier.classifyAcquire(cause, host, new FailureClassifier.PoolLimits(
        perDestination, waitQueue(), poolWaitMillis(), timeouts.handshake().toMillis()));
  }

  private int waitQueue() {
    return perDestination * 4;
  }

  int maxHeaderSize() {
    return maxHeaderSize;
  }

  /**
   * Closes every connection now and refuses further requests; the future completes when all
   * connections have closed.
   */
  public Future<Void> close() {
    closed = true;
    return Future.all(each(l -> l.shutDown(0))).mapEmpty();
  }

  /**
   * Retires this client after a reload: idle connections close now, each connection in use closes
   * when its request ends, and whatever is left closes when {@code grace} runs out. A hop that
   * still arrives (it took its config snapshot before the reload) is served on a connection of its
   * own, closed after it. The future completes once the connections open now have closed.
   */
  public Future<Void> retire(Duration grace) {
    retired = true;
    return Future.all(each(l -> l.shutDown(Math.max(1, grace.toMillis())))).mapEmpty();
  }

  private List<Future<Void>> each(java.util.function.Function<Loop, Future<Void>> f) {
    List<Future<Void>> all = new ArrayList<>();
    for (Loop l : loops.values()) {
      all.add(f.apply(l));
    }
    return all;
  }

  /** The per-loop state built so far (tests: each must be unreachable once retired). */
  java.util.Collection<Object> built() {
    return List.copyOf(loops.values());
  }

  /** The pools of one event loop. Confined to that loop. */
  final class Loop {
    final EventLoop loop;
    private final Map<Key, Pool> pools = new HashMap<>();
    private final Bootstrap bootstrap;
    /** For upstream proxies: their host names are the operator's, resolved without blocking. */
    private final Bootstrap proxyBootstrap;
    private ScheduledFuture<?> tick;
    /** The tick's clock: recent enough for idle and inactivity checks, read without a call. */
    long now = System.nanoTime();
    private int open;
    private Promise<Void> drained;

    Loop(EventLoop loop) {
      this.loop = loop;
      this.bootstrap = new Bootstrap()
          .group(loop)
          .channelFactory(channels)
          // The address is the guard's; a resolver here could only resolve it again.
          .resolver(NoopAddressResolverGroup.INSTANCE)
          .option(ChannelOption.TCP_NODELAY, true)
          .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) timeouts.connect().toMillis());
      this.proxyBootstrap = bootstrap.clone()
          .resolver(runtime.addressResolverGroup());
    }

    Pool pool(Key key) {
      Pool p = pools.get(key);
      if (p == null) {
        p = new Pool(this, key);
        pools.put(key, p);
      }
      return p;
    }

    boolean retired() {
      return retired || closed;
    }

    void opened() {
      open++;
      if (tick == null) {
        now = System.nanoTime();
        tick = loop.scheduleAtFixedRate(this::tick, tickMillis, tickMillis,
            TimeUnit.MILLISECONDS);
      }
    }

    void closedOne() {
      open--;
      if (open == 0 && drained != null) {
        drained.tryComplete();
      }
    }

    private void tick() {
      now = System.nanoTime();
      for (Iterator<Pool> it = pools.values().iterator(); it.hasNext(); ) {
        Pool p = it.next();
        p.tick(now);
        if (p.empty()) {
          it.remove();
        }
      }
      if (pools.isEmpty() && tick != null) {
        tick.cancel(false);
        tick = null;
      }
    }

    /** On any thread: closes idle connections now and the rest after {@code graceMillis}. */
    Future<Void> shutDown(long graceMillis) {
      Promise<Void> p = Promise.promise();
      loop.execute(() -> {
        drained = p;
        for (Pool pool : List.copyOf(pools.values())) {
          pool.closeIdle();
          pool.failWaiters();
        }
        if (graceMillis == 0) {
          closeAll();
        } else {
          loop.schedule(this::closeAll, graceMillis, TimeUnit.MILLISECONDS);
        }
        if (open == 0) {
          p.tryComplete();
        }
      });
      return p.future();
    }

    private void closeAll() {
      for (Pool pool : pools.values()) {
        for (UpstreamConnection c : List.copyOf(pool.all)) {
          if (c.channel() != null) {
            c.channel().close();
          } else {
            // Still waiting for its TLS profile to be built: no channel yet, so it fails here.
            c.dialFailed(new java.nio.channels.ClosedChannelException());
          }
        }
      }
    }
  }

  /** The connections to one {@link Key} on one loop, and the requests waiting for one. */
  public final class Pool {
    final Loop loop;
    final Key key;
    /** What the Host header says: the name (bracketed if IPv6) and a port other than 443. */
    public final String hostHeader;
    /** Idle connections, the most recently used first (the others idle out). */
    private final ArrayDeque<UpstreamConnection> idle = new ArrayDeque<>();
    /** Every connection, dialling, idle or in use. */
    final List<UpstreamConnection> all = new ArrayList<>();
    private final ArrayDeque<Lease> waiters = new ArrayDeque<>();

    Pool(Loop loop, Key key) {
      this.loop = loop;
      this.key = key;
      String h = key.host().indexOf(':') >= 0 ? "[" + key.host() + "]" : key.host();
      int port = key.address().getPort();
      this.hostHeader = port == 443 ? h : h + ":" + port;
    }

    void acquire(Lease lease, boolean fresh) {
      if (!fresh) {
        UpstreamConnection c;
        while ((c = idle.pollFirst()) != null) {
          if (c.reusable()) {
            c.lease(lease);
            lease.connected(c, c.claimSetup());
            return;
          }
          c.channel().close();
        }
      }
      if (all.size() < perDestination) {
        dial(lease);
      } else if (waiters.size() < waitQueue()) {
        lease.waitingSince = loop.now;
        waiters.add(lease);
      } else {
        lease.acquireFailed(new ConnectionPoolTooBusyException("all " + perDestination
            + " connections are busy and " + waiters.size() + " requests wait"));
      }
    }

    /** A lessee that no longer wants a connection (its client went away). */
    void forget(Lease lease) {
      waiters.remove(lease);
    }

    private void dial(Lease lease) {
      UpstreamConnection c = new UpstreamConnection(this, lease, maxHeaderSize);
      all.add(c);
      loop.opened();
      TlsProfile proxyTls = key.route().direct() ? null : key.route().proxy().tlsProfile();
      if (!key.tls().prepared() || (proxyTls != null && !proxyTls.prepared())) {
        // The profiles' trust stores and TLS contexts are built off the event loops once, after
        // start-up (TlsProfile says why): a dial that comes first waits for them, on this loop.
        CompletableFuture.allOf(key.tls().prepare(), proxyTls == null
            ? CompletableFuture.completedFuture(null) : proxyTls.prepare())
            .whenComplete((context, e) -> loop.loop.execute(() -> {
          if (!all.contains(c)) {
            return; // failed meanwhile: the client shut down while the profile was built
          }
          if (e != null) {
            c.dialFailed(e instanceof CompletionException && e.getCause() != null
                ? e.getCause() : e);
          } else {
            connect(c, lease);
          }
        }));
        return;
      }
      connect(c, lease);
    }

    private void connect(UpstreamConnection c, Lease lease) {
      if (!key.route().direct()) {
        dialThroughProxy(c, lease);
        return;
      }
      Bootstrap b = loop.bootstrap.clone().handler(new ChannelInitializer<Channel>() {
        @Override
        protected void initChannel(Channel ch) {
          c.init(ch, key.tls().newHandler(ch.alloc(), key.host(), key.address().getPort()));
        }
      });
      b.connect(key.address()).addListener(f -> {
        if (!f.isSuccess()) {
          c.dialFailed(f.cause());
        }
      });
    }

    /**
     * Dials the route's upstream proxy; once it answered CONNECT, the connection's own TLS to the
     * destination starts inside the tunnel (for an https:// proxy, TLS inside TLS).
     */
    private void dialThroughProxy(UpstreamConnection c, Lease lease) {
      String host = key.host();
      ProxyLeg leg = ProxyLeg.open(key.route().proxy(), host, key.address().getPort(),
          timeouts.connect(), lease.telemetry(), new ProxyLeg.Listener() {
            @Override
            public void established(Channel ch) {
              c.tunnelled(key.tls().newHandler(ch.alloc(), host, key.address().getPort()));
            }

            @Override
            public void failed(UpstreamProxyFailure failure) {
              c.dialFailed(failure);
            }
          });
      Bootstrap b = loop.proxyBootstrap.clone().handler(new ChannelInitializer<Channel>() {
        @Override
        protected void initChannel(Channel ch) {
          c.initThroughProxy(ch, leg);
        }
      });
      b.connect(leg.address()).addListener(f -> {
        if (!f.isSuccess()) {
          leg.connectFailed(f.cause());
        }
      });
    }

    /** A dialled connection finished its handshake: to its dialler, a waiter, or idle. */
    void ready(UpstreamConnection c, Lease dialler) {
      if (dialler != null) {
        c.lease(dialler);
        dialler.connected(c, c.claimSetup());
      } else {
        release(c, true);
      }
    }

    /** A connection is free again: the next waiter takes it, else it idles (if it may). */
    void release(UpstreamConnection c, boolean reuse) {
      if (!reuse || !c.reusable() || loop.retired()) {
        c.channel().close();
        return;
      }
      Lease next = waiters.pollFirst();
      if (next != null) {
        c.lease(next);
        next.connected(c, c.claimSetup());
        return;
      }
      c.idle(System.nanoTime());
      idle.addFirst(c);
    }

    /** A connection closed (or never came up): it leaves the pool; a waiter may dial. */
    void closed(UpstreamConnection c) {
      if (all.remove(c)) {
        idle.remove(c);
        loop.closedOne();
      }
      if (!waiters.isEmpty() && all.size() < perDestination && !closed) {
        dial(waiters.pollFirst());
      }
    }

    void tick(long now) {
      for (int i = all.size() - 1; i >= 0 && i < all.size(); i--) {
        all.get(i).tick(now, idleNanos);
      }
      while (!waiters.isEmpty() && now - waiters.peekFirst().waitingSince > waitNanos) {
        waiters.pollFirst().acquireFailed(new TimeoutException("no free connection in time"));
      }
    }

    boolean empty() {
      return all.isEmpty() && waiters.isEmpty();
    }

    void closeIdle() {
      UpstreamConnection c;
      while ((c = idle.pollFirst()) != null) {
        c.channel().close();
      }
    }

    void failWaiters() {
      // Waiters on a retired pool are still served: they dial as connections close.
      if (closed) {
        Lease l;
        while ((l = waiters.pollFirst()) != null) {
          l.acquireFailed(new IllegalStateException("Client is closed"));
        }
      }
    }
  }
}
