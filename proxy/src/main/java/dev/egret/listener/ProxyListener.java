package dev.egret.listener;

import dev.egret.config.EgretConfig;
import dev.egret.exchange.DownstreamPeer;
import dev.egret.exchange.Exchange;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureResponse;
import dev.egret.failure.ProxyFailure;
import dev.egret.runtime.VertxRuntime;
import dev.egret.telemetry.AcceptPause;
import dev.egret.telemetry.Fatal;
import dev.egret.telemetry.Hop;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The client-facing listeners: the proxy port, and the transparent listeners an iptables
 * redirect feeds. Each is a Netty server channel on Vert.x's own acceptor and event loops, with
 * a pipeline Egret owns ({@link Pipelines}): nothing of Vert.x's HTTP server is on the byte
 * path. Each event loop has one Vert.x context bound to it, so the upstream client and timers
 * of a hop run on the thread of its downstream connection.
 *
 * <pre>{@code
 * ProxyListener l = new ProxyListener(vertx, stages);
 * l.start("127.0.0.1", 3128).onSuccess(port -> ...);
 * l.start(new ProxyListener.Transparent("127.0.0.1", 3129, 443, true));
 * }</pre>
 */
public final class ProxyListener {
  /**
   * A transparent listener: where it binds, the destination port it stands for, and whether it
   * reads TLS (destination from the SNI) or HTTP (destination from Host).
   */
  public record Transparent(String host, int bindPort, int destinationPort, boolean tls) {}

  private final VertxRuntime runtime;
  private final Stages stages;
  private final Pipelines pipelines;
  private final Map<EventLoop, Context> contexts = new ConcurrentHashMap<>();
  private final List<Channel> servers = new ArrayList<>();

  /**
   * The per-connection settings (timeouts, header limit, the connection cap) are read from
   * {@link Stages#serving()} at each accept, so a reload applies them to new connections.
   */
  public ProxyListener(Vertx vertx, Stages stages) {
    this.runtime = new VertxRuntime(vertx);
    this.stages = stages;
    this.pipelines = new Pipelines(stages);
  }

  /**
   * Binds the proxy port; completes with the bound port. With {@code listen.proxyProtocol} in
   * the config in force at accept, a peer outside its {@code trustedPeers} is closed first (it
   * gets no 503 either: nothing is said to an untrusted peer), and a trusted one's connection
   * becomes an HTTP connection only once its PROXY header has been read ({@link ProxyHeader}).
   * Over {@code limits.maxConnections}, a trusted peer gets the 503 at once, before its header
   * is read: the refusal must not wait for a client's bytes, and its log line names the peer.
   */
  public Future<Integer> start(String host, int port) {
    return bind(host, port, new ChannelInitializer<>() {
      @Override
      protected void initChannel(Channel ch) {
        EgretConfig config = stages.serving().get().config();
        EgretConfig.ProxyProtocol proxyProtocol = config.listen().proxyProtocol();
        // An untrusted peer is closed unanswered, even when the cap refused it at accept.
        if (proxyProtocol != null
            && ProxyHeader.refuseUntrusted(ch, proxyProtocol, stages.telemetry())) {
          return;
        }
        if (refusal(ch) != null) {
          ch.pipeline().addLast(new Refusal(refusal(ch)));
          return;
        }
        Context context = contextFor(ch.eventLoop());
        // Read at each accept, as the other per-connection settings are: a reload's new
        // certificate or client CAs apply to the connections after it.
        EgretConfig.ProxyTls tls = config.listen().proxyTls();
        Runnable http = () -> {
          if (tls != null) {
            pipelines.proxyTls(ch.pipeline(), tls);
          }
          pipelines.http(ch.pipeline(), context, StrictHeadParser.TargetForm.PROXY,
              Exchange.Origin.PROXY);
        };
        if (proxyProtocol == null) {
          http.run();
        } else {
          // Last, so its handlers go in front of any added before: the header comes before
          // TLS on the wire.
          ProxyHeader.install(ch.pipeline(), config.timeouts().requestHead(), stages, http);
        }
      }
    }, Exchange.Origin.PROXY,
        // Over the cap, a TLS proxy port is closed without an answer: its client expects a
        // handshake, not a 503.
        () -> stages.serving().get().config().listen().proxyTls() == null);
  }

  /** Binds a transparent listener; completes with the bound port. */
  public Future<Integer> start(Transparent t) {
    return bind(t.host(), t.bindPort(), new ChannelInitializer<>() {
      @Override
      protected void initChannel(Channel ch) {
        if (refusal(ch) != null) {
          ch.pipeline().addLast(new Refusal(refusal(ch)));
          return;
        }
        Context context = contextFor(ch.eventLoop());
        if (t.tls()) {
          stages.tunnel().transparent(ch, context, t.destinationPort(), stages.serving());
        } else {
          pipelines.http(ch.pipeline(), context,
              new StrictHeadParser.TargetForm.Origin(null, t.destinationPort()),
              Exchange.Origin.TRANSPARENT);
        }
      }
    }, Exchange.Origin.TRANSPARENT, () -> !t.tls());
  }

  /**
   * @param origin the listener's kind, for the access-log line of a refused connection
   * @param http whether the listener speaks HTTP, so that a refused connection can be told why
   */
  private Future<Integer> bind(String host, int port, ChannelInitializer<Channel> init,
      Exchange.Origin origin, java.util.function.BooleanSupplier http) {
    Promise<Integer> bound = Promise.promise();
    ServerBootstrap b = new ServerBootstrap()
        .group(runtime.acceptors(), runtime.eventLoops())
        .channelFactory(runtime.serverChannelFactory())
        .option(ChannelOption.SO_BACKLOG, 1024)
        .option(ChannelOption.SO_REUSEADDR, true)
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childOption(ChannelOption.SO_KEEPALIVE, true)
        // Counted on the acceptor thread, in accept order: the child's own loop would run
        // connections accepted together in any order, and the cap could refuse the earlier one.
        .handler(new ChannelInboundHandlerAdapter() {
          @Override
          public void channelRead(ChannelHandlerContext ctx, Object child) {
            AcceptPause.accepted(ctx.channel());
            if (child instanceof Channel ch && !stages.connections().admit(ch)
                && !refuse(ctx.channel(), ch, origin, http.getAsBoolean())) {
              return; // closed here: never registered with a loop
            }
            ctx.fireChannelRead(child);
          }

          @Override
          public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // An accept failed; with the table full, accepting pauses until descriptors free.
            if (!AcceptPause.paused(ctx.channel(), "the listener on " + host + ":" + port,
                cause)) {
              ctx.fireExceptionCaught(cause);
            }
          }
        })
        .childHandler(init);
    // Resolved by the caller's thread before: listen addresses are literals or names from the
    // config, read at start (a reload cannot move a listener).
    b.bind(new InetSocketAddress(host, port)).addListener(f -> {
      if (f.isSuccess()) {
        Channel server = ((io.netty.channel.ChannelFuture) f).channel();
        synchronized (servers) {
          servers.add(server);
        }
        bound.complete(((InetSocketAddress) server.localAddress()).getPort());
      } else {
        bound.fail(f.cause());
      }
    });
    return bound.future();
  }

  /** The Vert.x context bound to an event loop; one per loop, so the map stays that small. */
  private Context contextFor(EventLoop loop) {
    return contexts.computeIfAbsent(loop, runtime::contextOn);
  }

  private static final io.netty.util.AttributeKey<ProxyFailure> REFUSED =
      io.netty.util.AttributeKey.valueOf("egret.refused");

  /** Why the acceptor refused the connection, or null when it was admitted. */
  private static ProxyFailure refusal(Channel ch) {
    return ch.attr(REFUSED).get();
  }

  /**
   * How long a refused connection is kept after its 503 and FIN while the client has not closed:
   * long enough for the request a client sends right after connecting to arrive and be dropped,
   * so that the close is not a reset that discards the answer before the client reads it.
   */
  static final long REFUSAL_LINGER_MS = 1_000;
  /**
   * The refusal budget: at most this many refused connections are open at once, each from its
   * accept until its close. A refused connection holds a descriptor while a loop registers it,
   * writes its 503 and lingers; a burst accepted faster than the loops could do that for each
   * used to fill the table (600 over-cap connections at once under a 400-descriptor limit).
   * Past the budget a refused connection is closed by the acceptor as it is accepted, with no
   * answer: the 503 is a courtesy, never paid for with the descriptors that the admitted
   * connections and the admin port need.
   */
  public static final int MAX_REFUSING = 64;
  /** Refused connections open now, across every listener of this Egret; see {@link #MAX_REFUSING}. */
  private final java.util.concurrent.atomic.AtomicInteger refusing =
      new java.util.concurrent.atomic.AtomicInteger();

  /**
   * Refuses a connection over {@code limits.maxConnections}, on the acceptor thread, as it is
   * accepted, without waiting for its first bytes: a client that sends nothing must not hold a
   * descriptor. On an HTTP listener, within the refusal budget, it is handed on to a loop that
   * answers the 503 at once (a client reads it when it sends its request) and closes (returns
   * true). A TLS listener's client expects a ServerHello, so there, as past the budget, the
   * connection is closed here and now (returns false). Either way it is counted as a refusal
   * and logged.
   */
  private boolean refuse(Channel server, Channel ch, Exchange.Origin origin, boolean http) {
    ProxyFailure f = new ProxyFailure(ErrorKind.CONNECTION_LIMIT_REACHED, "Egret already serves "
        + stages.connections().limit() + " client connections (limits.maxConnections)");
    Hop hop = new Hop();
    hop.client = Exchange.address(DownstreamPeer.sourceAddress(ch));
    if (stages.serving().get().config().clients().gateway()) {
      // Refused before any request: no client is known, and every gateway hop has the label.
      hop.identity = dev.egret.identity.Clients.UNIDENTIFIED;
    }
    hop.origin = origin == Exchange.Origin.PROXY ? null : "transparent";
    hop.url = "-";
    hop.error = f.kind();
    hop.errorDetails = f.details();
    hop.status = f.status();
    hop.finish();
    stages.telemetry().hopFinished(hop);
    if (http && refusing.incrementAndGet() <= MAX_REFUSING) {
      ch.attr(REFUSED).set(f);
      ch.closeFuture().addListener(c -> refusing.decrementAndGet());
      return true;
    }
    if (http) {
      refusing.decrementAndGet();
    }
    AcceptPause.closeAtAccept(server, ch);
    return false;
  }

  /**
   * Answers a connection over the cap as soon as it is active: the 503, then a FIN. What the
   * client sends meanwhile is read and dropped, never parsed, so that the close that follows its
   * EOF (or at most {@link #REFUSAL_LINGER_MS} after it became active) is a clean one.
   */
  private static final class Refusal extends ChannelInboundHandlerAdapter {
    private final ProxyFailure failure;

    Refusal(ProxyFailure failure) {
      this.failure = failure;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      Channel ch = ctx.channel();
      // Bounded from here whatever the write does, so the refusal budget always comes back.
      ctx.executor().schedule(() -> ch.close(), REFUSAL_LINGER_MS, TimeUnit.MILLISECONDS);
      ctx.writeAndFlush(FailureResponse.raw(failure, null, null)).addListener(done -> {
        if (done.isSuccess() && ch instanceof DuplexChannel duplex) {
          duplex.shutdownOutput();
        } else {
          ch.close();
        }
      });
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ReferenceCountUtil.release(msg);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      Fatal.check(cause);
      ctx.close();
    }
  }

  /** Stops accepting on every listener; open connections stay. */
  public Future<Void> stopAccepting() {
    List<Future<Void>> closing = new ArrayList<>();
    synchronized (servers) {
      for (Channel server : servers) {
        Promise<Void> p = Promise.promise();
        server.close().addListener(f -> p.tryComplete());
        closing.add(p.future());
      }
      servers.clear();
    }
    return Future.join(closing).mapEmpty();
  }
}
