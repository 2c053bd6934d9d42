package dev.egret.listener;

import dev.egret.exchange.Exchange;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureResponse;
import dev.egret.failure.ProxyFailure;
import dev.egret.telemetry.Hop;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
import java.net.InetSocketAddress;
import java.time.Duration;
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
 * ProxyListener l = new ProxyListener(vertx, stages, pipelines, transparentEntries);
 * l.start("127.0.0.1", 3128).onSuccess(port -> ...);
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
  private final Duration headTimeout;
  private final Map<EventLoop, ContextInternal> contexts = new ConcurrentHashMap<>();
  private final List<Channel> servers = new ArrayList<>();

  public ProxyListener(Vertx vertx, Stages stages, StrictHeadParser parser,
      Duration headTimeout, Duration idle) {
    this.vertx = (VertxInternal) vertx;
    this.stages = stages;
    this.headTimeout = headTimeout;
    this.pipelines = new Pipelines(stages, parser, headTimeout, idle);
  }

  /** Binds the proxy port; completes with the bound port. */
  public Future<Integer> start(String host, int port) {
    return bind(host, port, new ChannelInitializer<>() {
      @Override
      protected void initChannel(Channel ch) {
        if (admitted(ch)) {
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
        if (!admitted(ch)) {
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
   * Whether the acceptor counted the connection under the cap; one over {@code
   * limits.maxConnections} is answered 503 at its first bytes (so the client has sent its
   * request and reads the answer) and closed.
   */
  private boolean admitted(Channel ch) {
    if (Boolean.TRUE.equals(ch.attr(ADMITTED).get())) {
      return true;
    }
    ProxyFailure f = new ProxyFailure(ErrorKind.CONNECTION_LIMIT_REACHED, "Egret already serves "
        + stages.connections().limit() + " client connections (limits.maxConnections)");
    ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
      private boolean answered;

      @Override
      public void channelActive(ChannelHandlerContext ctx) {
        ctx.executor().schedule(() -> answer(ctx), headTimeout.toMillis(), TimeUnit.MILLISECONDS);
        ctx.fireChannelActive();
      }

      @Override
      public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ReferenceCountUtil.release(msg);
        answer(ctx);
      }

      private void answer(ChannelHandlerContext ctx) {
        if (answered) {
          return;
        }
        answered = true;
        ctx.channel().config().setAutoRead(false);
        ByteBuf raw = FailureResponse.raw(f, null, null);
        ctx.writeAndFlush(raw).addListener(ChannelFutureListener.CLOSE);
        Hop hop = new Hop();
        hop.client = Exchange.address(ch.remoteAddress());
        hop.url = "-";
        hop.error = f.kind();
        hop.errorDetails = f.details();
        hop.status = f.status();
        hop.finish();
        stages.telemetry().hopFinished(hop);
      }
    });
    return false;
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
