package dev.egret.upgrade;

import dev.egret.config.EgretConfig;
import dev.egret.failure.FailureClassifier;
import dev.egret.tls.TlsEngine;
import dev.egret.tls.TlsProfile;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.epoll.EpollSocketChannel;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.impl.CleanableHttpClient;
import io.vertx.core.http.impl.HttpClientConnectionInternal;
import io.vertx.core.internal.CloseFuture;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.net.ClientSSLOptions;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLSession;

/**
 * The pooled keep-alive HTTP/1.1 client Egret originates upstream TLS with (a Vert.x client per
 * event loop, below). One per loaded
 * config (timeouts and limits come from it); TLS settings travel on each request from the
 * rule's {@link dev.egret.tls.TlsProfile}, so Vert.x keeps a pool per (address, host, profile).
 *
 * <p>It also notes when each new connection became usable, so the first request on it can report
 * how long TCP connect and the TLS handshake took; requests on a reused connection report none.
 */
public final class UpstreamClient {
  /** How often Vert.x closes pooled connections past their keep-alive timeout. */
  static final int POOL_CLEANER_PERIOD_MS = 1000;
  /**
   * One Vert.x client per event loop, made when a loop first asks. Vert.x's pool hands a pooled
   * connection to a request from any loop and then relays every event between the two threads;
   * a client per loop keeps each request and its upstream connection on the one thread (the
   * loop that dialled it). Bounded by the number of event loops.
   */
  private final Map<io.netty.channel.EventLoop, HttpClient> clients = new ConcurrentHashMap<>();
  private final java.util.function.Supplier<HttpClient> builder;
  /**
   * Where Vert.x registered each client's close hook (see {@link #release}), by client.
   * Bounded by the number of event loops, like {@link #clients}.
   */
  private final Map<HttpClient, CloseFuture> owners = new ConcurrentHashMap<>();
  private final Vertx vertx;
  private boolean closed; // guarded by this
  private final Map<HttpConnection, Long> freshConnections = new ConcurrentHashMap<>();
  private final EgretConfig.Timeouts timeouts;
  private final int perDestination;

  public UpstreamClient(Vertx vertx, EgretConfig config) {
    this.vertx = vertx;
    EgretConfig.Timeouts t = config.timeouts();
    this.timeouts = t;
    this.perDestination = config.limits().maxConnectionsPerDestination();
    HttpClientOptions options = new HttpClientOptions()
        .setProtocolVersion(HttpVersion.HTTP_1_1)
        .setKeepAlive(true)
        .setKeepAliveTimeout((int) Math.max(1, t.idle().toSeconds()))
        .setIdleTimeout((int) Math.max(1, t.idle().toMillis()))
        .setIdleTimeoutUnit(TimeUnit.MILLISECONDS)
        .setConnectTimeout((int) t.connect().toMillis())
        .setDecompressionSupported(false)
        .setMaxHeaderSize(Math.max(8192, config.limits().maxHeaderBytes() * 4))
        .setMaxInitialLineLength(8192)
        .setTcpNoDelay(true)
        .setSslEngineOptions(TlsEngine.current().options());
    // Pools are per (address, host, TLS profile), so a wildcard rule opens one per host it
    // reaches. An idle connection closes after the keep-alive timeout (timeouts.idle, above),
    // which the pool cleaner checks every second; a pool with no connection left is dropped with
    // its endpoint, so a host reached once holds nothing after timeouts.idle.
    PoolOptions pool = new PoolOptions()
        .setHttp1MaxSize(config.limits().maxConnectionsPerDestination())
        .setMaxWaitQueueSize(waitQueue())
        .setCleanerPeriod(POOL_CLEANER_PERIOD_MS);
    this.builder = () -> vertx.httpClientBuilder()
        .with(options)
        .with(pool)
        .withConnectHandler(conn -> {
          // Runs on the connection's event loop before any request uses it (Vert.x emits it
          // before the connection joins its pool).
          ChannelHandlerContext handler = channelOf(conn);
          handler.pipeline().addBefore(handler.name(), InterimResponses.NAME,
              new InterimResponses());
          freshConnections.put(conn, System.currentTimeMillis());
          conn.closeHandler(v -> freshConnections.remove(conn));
          // Failures reach the request that is using the connection (and its hop); without a
          // handler Vert.x would also log each one as SEVERE, e.g. a TLS 1.3 client-certificate
          // refusal that arrives after the handshake.
          conn.exceptionHandler(e -> { });
        })
        .build();
  }

  /**
   * Asks the calling event loop's client for a request (a request is always made on a loop).
   * Once this client is retired or closed, fails as Vert.x's closed pool does.
   */
  Future<HttpClientRequest> request(RequestOptions options) {
    io.vertx.core.internal.ContextInternal ctx =
        (io.vertx.core.internal.ContextInternal) io.vertx.core.Vertx.currentContext();
    io.netty.channel.EventLoop loop = ctx == null ? null : ctx.nettyEventLoop();
    if (loop == null) {
      return Future.failedFuture(new IllegalStateException(
          "upstream requests are made on an event loop"));
    }
    HttpClient client = clients.get(loop);
    if (client == null) {
      synchronized (this) { // once per loop; against retire(), so no client is made after it
        if (closed) {
          return Future.failedFuture(new IllegalStateException("Client is closed"));
        }
        client = clients.computeIfAbsent(loop, l -> build());
      }
    }
    return client.request(options);
  }

  /**
   * The Netty context of Vert.x's handler on an upstream connection: Vert.x 5.0.7 offers no
   * public way to add a handler to a client connection's pipeline, so this goes through its
   * {@code HttpClientConnectionInternal}; {@link InterimResponses} says why one is needed.
   */
  static ChannelHandlerContext channelOf(HttpConnection conn) {
    return ((HttpClientConnectionInternal) conn).channelHandlerContext();
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
  FailureClassifier.Classification acquireFailure(Throwable cause, String host) {
    return FailureClassifier.classifyAcquire(cause, host, new FailureClassifier.PoolLimits(
        perDestination, waitQueue(), poolWaitMillis(), timeouts.handshake().toMillis()));
  }

  private int waitQueue() {
    return perDestination * 4;
  }

  /** Timings of a connection's setup, claimed once by the first request that uses it. */
  record Setup(long connectNanos, long handshakeNanos) {}

  /**
   * If {@code conn} is new since {@code startEpochMillis}, returns its setup timings (and forgets
   * it); null for a reused connection. Where the TCP connect ended is read two ways:
   * <ul>
   *   <li>the JDK's TLS session is created, in milliseconds, when the handshake begins, right
   *       after the TCP connect;
   *   <li>BoringSSL's session time has whole seconds only, so there the connect is the kernel's
   *       round-trip time for the socket ({@code TCP_INFO}, epoll only): a TCP connect is one
   *       round trip.
   * </ul>
   * When neither is known (a resumed JDK session, or NIO with BoringSSL) only the total is
   * reported, as handshake time, with the connect unknown (-1). Nanoseconds.
   */
  Setup claim(HttpConnection conn, long startEpochMillis) {
    Long established = freshConnections.remove(conn);
    if (established == null) {
      return null;
    }
    long ms = 1_000_000L;
    long total = Math.max(0, established - startEpochMillis) * ms;
    SSLSession session = conn.sslSession();
    long created = session == null ? -1 : session.getCreationTime();
    if (created >= startEpochMillis && created <= established) {
      return new Setup((created - startEpochMillis) * ms, (established - created) * ms);
    }
    Channel channel = channelOf(conn).channel();
    if (channel instanceof EpollSocketChannel epoll && epoll.isActive()) {
      long connect = Math.min(total, epoll.tcpInfo().rtt() * 1000L); // microseconds
      return new Setup(connect, total - connect);
    }
    return new Setup(-1, total);
  }

  /** A client for the calling event loop, noting where Vert.x keeps its close hook. */
  private HttpClient build() {
    HttpClient client = builder.get();
    // The same owner Vert.x's HttpClientBuilderInternal.resolveCloseFuture picks.
    VertxInternal v = (VertxInternal) vertx;
    ContextInternal ctx = v.getContext();
    owners.put(client, ctx != null ? ctx.closeFuture() : v.closeFuture());
    return client;
  }

  /**
   * Workaround for eclipse-vertx/vert.x#6268 (Vert.x 5.0.7; fixed in 5.1.6 and, by #6277, later
   * 5.0 releases): a client from httpClientBuilder() registers its inner HttpClientImpl as a close
   * hook of its context and never removes it, so every closed client stays reachable for the life
   * of the event loop. Each reload retires one client per loop, so without this the heap grew
   * with every reload (the soak: 3 HttpClientOptions and a BoringSSL context's sessions more per
   * reload). Once the client has closed, its hook is removed here.
   */
  private Future<Void> release(HttpClient client, Future<Void> closed) {
    return closed.andThen(ar -> {
      CloseFuture owner = owners.remove(client);
      if (owner != null && client instanceof CleanableHttpClient cleanable) {
        owner.remove(cleanable.delegate);
      }
    });
  }

  public Future<Void> close() {
    return Future.all(stop().stream().map(c -> release(c, c.close()))
        .collect(java.util.stream.Collectors.toList())).mapEmpty();
  }

  /** The clients built so far, one per event loop that has asked for one (tests). */
  java.util.Collection<HttpClient> built() {
    return java.util.List.copyOf(clients.values());
  }

  private synchronized java.util.List<HttpClient> stop() {
    closed = true;
    return java.util.List.copyOf(clients.values());
  }

  /**
   * Retires this client after a reload: no new requests come to it, and each pooled connection
   * closes once its requests in flight have finished, or when {@code grace} runs out.
   */
  public Future<Void> retire(java.time.Duration grace) {
    return Future.all(stop().stream()
        .map(c -> release(c, c.shutdown(grace.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)))
        .collect(java.util.stream.Collectors.toList())).mapEmpty();
  }
}
