package dev.egret.listener;

import dev.egret.exchange.Exchange;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureResponse;
import dev.egret.failure.ProxyFailure;
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
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
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
 * of a hop run on the thread of its client connection.
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

  private final VertxInternal vertx;
  private final Stages stages;
  private final Pipelines pipelines;
  private final Map<EventLoop, ContextInternal> contexts = new ConcurrentHashMap<>();
  private final List<Channel> servers = new ArrayList<>();

  /**
   * The per-connection settings (timeouts, header limit, the connection cap) are read from
   * {@link Stages#serving()} at each accept, so a reload applies them to new connections.
   */
  public ProxyListener(Vertx vertx, Stages stages) {
    this.vertx = (VertxInternal) vertx;
    this.stages = stages;
    this.pipelines = new Pipelines(stages);
  }

  /** Binds the proxy port; completes with the bound port. */
  public Future<Integer> start(String host, int port) {
    return bind(host, port, new ChannelInitializer<>() {
      @Override
      protected void initChannel(Channel ch) {
        // Read at each accept, as the other per-connection settings are: a reload's new
        // certificate or client CAs apply to the connections after it.
        var tls = stages.serving().get().config().listen().proxyTls();
        // Over the cap, a TLS port is closed without an answer: its client expects a handshake.
        if (admitted(ch, Exchange.Origin.PROXY, tls == null)) {
          if (tls != null) {
            pipelines.proxyTls(ch.pipeline(), tls);
          }
          pipelines.http(ch.pipeline(), contextFor(ch.eventLoop()),
              StrictHeadParser.TargetForm.PROXY, Exchange.Origin.PROXY);
        }
      }
    });
  }

  /** Binds a transparent listener; completes with the bound port. */
  public Future<Integer> start(Transparent t) {
    return bind(t.host(), t.bindPort(), new ChannelInitializer<>() {
      @Override
      protected void initChannel(Channel ch) {
        if (!admitted(ch, Exchange.Origin.TRANSPARENT, !t.tls())) {
          return;
        }
        ContextInternal context = contextFor(ch.eventLoop());
        if (t.tls()) {
          stages.tunnel().transparent(ch, context, t.destinationPort(), stages.serving());
        } else {
          pipelines.http(ch.pipeline(), context,
              new StrictHeadParser.TargetForm.Origin(null, t.destinationPort()),
              Exchange.Origin.TRANSPARENT);
        }
      }
    });
  }

  private Future<Integer> bind(String host, int port, ChannelInitializer<Channel> init) {
    Promise<Integer> bound = Promise.promise();
    ServerBootstrap b = new ServerBootstrap()
        .group(vertx.acceptorEventLoopGroup(), vertx.nettyEventLoopGroup())
        .channelFactory(vertx.transport().serverChannelFactory(false))
        .option(ChannelOption.SO_BACKLOG, 1024)
        .option(ChannelOption.SO_REUSEADDR, true)
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childOption(ChannelOption.SO_KEEPALIVE, true)
        // Counted on the acceptor thread, in accept order: the child's own loop would run
        // connections accepted together in any order, and the cap could refuse the earlier one.
        .handler(new ChannelInboundHandlerAdapter() {
          @Override
          public void channelRead(ChannelHandlerContext ctx, Object child) {
            if (child instanceof Channel ch) {
              ch.attr(ADMITTED).set(stages.connections().admit(ch));
            }
            ctx.fireChannelRead(child);
          }

          @Override
          public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // An accept failed. Netty pauses accepting for a second and tries again, which
            // would go on for ever with a full descriptor table: that one ends the process.
            Fatal.acceptFailed("the listener on " + host + ":" + port, cause);
            ctx.fireExceptionCaught(cause);
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
  private ContextInternal contextFor(EventLoop loop) {
    return contexts.computeIfAbsent(loop, l -> vertx.contextBuilder().withEventLoop(l).build());
  }

  private static final io.netty.util.AttributeKey<Boolean> ADMITTED =
      io.netty.util.AttributeKey.valueOf("egret.admitted");

  /**
   * Whether the acceptor counted the connection under the cap. One over {@code
   * limits.maxConnections} is refused now, at accept, without waiting for its first bytes: a
   * client that sends nothing must not hold a descriptor. An HTTP listener answers the 503 at
   * once (a client reads it when it sends its request) and closes; a TLS listener, whose client
   * expects a ServerHello, is closed without an answer. Either way it was counted as a refusal.
   */
  private boolean admitted(Channel ch, Exchange.Origin origin, boolean http) {
    if (Boolean.TRUE.equals(ch.attr(ADMITTED).get())) {
      return true;
    }
    ProxyFailure f = new ProxyFailure(ErrorKind.CONNECTION_LIMIT_REACHED, "Egret already serves "
        + stages.connections().limit() + " client connections (limits.maxConnections)");
    if (http) {
      ch.pipeline().addLast(new Refusal(f));
    } else {
      ch.close();
    }
    Hop hop = new Hop();
    hop.client = Exchange.address(ClientPeer.clientAddress(ch));
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
    return false;
  }

  /**
   * How long a refused connection is kept after its 503 and FIN while the client has not closed:
   * long enough for the request a client sends right after connecting to arrive and be dropped,
   * so that the close is not a reset that discards the answer before the client reads it.
   */
  static final long REFUSAL_LINGER_MS = 1_000;
  /**
   * At most this many refused connections linger at once. The linger holds a descriptor, so a
   * burst of refusals must not hold one each (a burst of 600 over-cap connections exhausted a
   * 400-descriptor table): past the bound a refused connection is closed as soon as its 503 is
   * written, which a client that already sent its request may see as a reset.
   */
  static final int MAX_LINGERING = 64;
  private static final java.util.concurrent.atomic.AtomicInteger LINGERING =
      new java.util.concurrent.atomic.AtomicInteger();

  /**
   * Answers a connection over the cap as soon as it is active: the 503, then a FIN. What the
   * client sends meanwhile is read and dropped, never parsed, so that the close that follows its
   * EOF (or at most {@link #REFUSAL_LINGER_MS} later) is a clean one.
   */
  private static final class Refusal extends ChannelInboundHandlerAdapter {
    private final ProxyFailure failure;

    Refusal(ProxyFailure failure) {
      this.failure = failure;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      Channel ch = ctx.channel();
      ctx.writeAndFlush(FailureResponse.raw(failure, null, null)).addListener(done -> {
        if (done.isSuccess() && ch instanceof DuplexChannel duplex
            && LINGERING.incrementAndGet() <= MAX_LINGERING) {
          ch.closeFuture().addListener(c -> LINGERING.decrementAndGet());
          duplex.shutdownOutput();
          ctx.executor().schedule(() -> ch.close(), REFUSAL_LINGER_MS, TimeUnit.MILLISECONDS);
        } else {
          if (done.isSuccess() && ch instanceof DuplexChannel) {
            LINGERING.decrementAndGet(); // counted above, over the bound: not lingering
          }
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
