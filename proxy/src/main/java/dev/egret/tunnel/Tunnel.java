package dev.egret.tunnel;

import dev.egret.exchange.Serving;
import dev.egret.chain.ProxyLeg;
import dev.egret.config.EgretConfig;
import dev.egret.exchange.Exchange;
import dev.egret.exchange.Route;
import dev.egret.exchange.Tracked;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureClassifier;
import dev.egret.failure.ProxyFailure;
import dev.egret.exchange.DownstreamPeer;
import dev.egret.exchange.RequestTarget;
import dev.egret.failure.UpstreamProxyFailure;
import dev.egret.identity.Credentials;
import dev.egret.policy.Decision;
import dev.egret.policy.Reason;
import dev.egret.policy.Target;
import dev.egret.failure.HandshakeResult;
import dev.egret.runtime.VertxRuntime;
import dev.egret.telemetry.Hop;
import dev.egret.telemetry.Telemetry;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.Supplier;

/**
 * Tunnels that can only carry TLS (or, where a rule would upgrade {@code http://} to the same
 * place, plain HTTP requests that Egret upgrades itself). A {@code CONNECT} is dialled first, on
 * the downstream connection's own event loop, and answered {@code 200 Connection Established} only
 * once the upstream is up; a transparent TLS listener reads the ClientHello first and takes the
 * destination from its SNI, then does what a CONNECT to that name gets. Then {@link
 * TunnelRelay} relays only what each direction's {@link RecordChecker} passed: both hellos
 * judged before any byte of them goes on, every TLS record checked both ways for the tunnel's
 * life.
 *
 * <p>A refusal inside the tunnel cannot be an HTTP answer any more (the 200 went out): both
 * sides are closed, and the hop is logged and counted with its reason.
 */
public final class Tunnel {
  private static final byte[] ESTABLISHED =
      "HTTP/1.1 200 Connection Established\r\n\r\n".getBytes(StandardCharsets.US_ASCII);

  private final VertxRuntime runtime;
  private final Telemetry telemetry;
  private final Route route;
  private final BiConsumer<Channel, Tracked> track;

  /**
   * @param route admits transparent tunnels (a CONNECT is admitted by its downstream connection)
   * @param track tells the listener what a downstream connection became, for the drain
   */
  public Tunnel(Vertx vertx, Telemetry telemetry, Route route, BiConsumer<Channel, Tracked> track) {
    this.runtime = new VertxRuntime(vertx);
    this.telemetry = telemetry;
    this.route = route;
    this.track = track;
  }

  /**
   * Opens an admitted CONNECT. Fails with a {@link ProxyFailure} before the 200 is sent, or
   * with the reason the tunnel was cut; completes with true when it ended normally, false when
   * its downstream turned out to send plain HTTP and the socket became an HTTP connection again
   * (its requests are hops of their own).
   *
   * @param handOver removes the HTTP handlers and returns the bytes read behind the CONNECT
   */
  public Future<Boolean> open(Exchange ex, ChannelHandlerContext downstreamCtx,
      Supplier<ByteBuf> handOver, PlainHttpHandOff plainHttp) {
    Channel downstream = downstreamCtx.channel();
    boolean tlsAllowed = ex.decision().reason() != Reason.PLAIN_HTTP_ONLY;
    Future<Channel> dialled = tlsAllowed ? connect(ex, downstream) : Future.succeededFuture(null);
    return dialled.compose(upstream -> {
      if (!downstream.isActive()) {
        if (upstream != null) {
          upstream.close();
        }
        return Future.failedFuture(new ProxyFailure(ErrorKind.DOWNSTREAM_ABORTED,
            "the client left before the tunnel to " + ex.host() + " opened"));
      }
      ex.status(200);
      ByteBuf early = handOver.get();
      downstream.writeAndFlush(Unpooled.wrappedBuffer(ESTABLISHED));
      return relay(ex, downstream, upstream, early, tlsAllowed, plainHttp);
    });
  }

  /** Serves a transparent TLS listener's connection: the destination is the hello's SNI. */
  public void transparent(Channel ch, Context context, int port,
      Supplier<Serving> serving) {
    ch.pipeline().addLast("egret-hello", new TransparentHello(context, port, serving));
  }

  private Future<Channel> connect(Exchange ex, Channel downstream) {
    if (!ex.decision().route().direct()) {
      return connectThroughProxy(ex, downstream);
    }
    Promise<Channel> connected = Promise.promise();
    EgretConfig config = ex.serving().config();
    long start = System.nanoTime();
    new Bootstrap()
        .group(downstream.eventLoop())
        .channelFactory(runtime.channelFactory())
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) config.timeouts().connect().toMillis())
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.AUTO_READ, false)
        .handler(new ChannelInboundHandlerAdapter())
        .connect(ex.upstream())
        .addListener((ChannelFuture f) -> {
          if (f.isSuccess()) {
            long nanos = System.nanoTime() - start;
            ex.timings().connect(nanos);
            telemetry.upstreamConnected(ex.decision().destination(), java.time.Duration.ofNanos(nanos));
            connected.complete(f.channel());
          } else {
            connected.fail(FailureClassifier.classify(f.cause(), ex.host()).failure());
          }
        });
    return connected.future();
  }

  /**
   * Dials the route's upstream proxy and asks it for {@code CONNECT host:port}; the channel
   * completes once it answered 2xx, with the leg's handler still holding whatever the proxy sent
   * after its answer until the relay's first read. The client's TLS then goes through it, checked
   * record by record as on a direct tunnel.
   */
  private Future<Channel> connectThroughProxy(Exchange ex, Channel downstream) {
    var proxyTls = ex.decision().route().proxy().tlsProfile();
    if (proxyTls != null && !proxyTls.prepared()) {
      // Its trust store is built off the event loops (TlsProfile says why): wait, not block.
      Promise<Void> ready = Promise.promise();
      proxyTls.prepare().whenComplete((c, e) -> downstream.eventLoop().execute(() -> {
        if (e != null) {
          ready.fail(e instanceof java.util.concurrent.CompletionException && e.getCause() != null
              ? e.getCause() : e);
        } else {
          ready.complete();
        }
      }));
      return ready.future().compose(v -> dialProxy(ex, downstream));
    }
    return dialProxy(ex, downstream);
  }

  private Future<Channel> dialProxy(Exchange ex, Channel downstream) {
    Promise<Channel> connected = Promise.promise();
    EgretConfig config = ex.serving().config();
    long start = System.nanoTime();
    ProxyLeg leg = ProxyLeg.open(ex.decision().route().proxy(), ex.host(),
        ex.decision().upstreamPort(), config.timeouts().connect(), telemetry,
        new ProxyLeg.Listener() {
          @Override
          public void established(Channel ch) {
            long nanos = System.nanoTime() - start;
            ex.timings().connect(nanos);
            telemetry.upstreamConnected(ex.decision().destination(),
                java.time.Duration.ofNanos(nanos));
            connected.tryComplete(ch);
          }

          @Override
          public void failed(UpstreamProxyFailure failure) {
            connected.tryFail(failure.failure());
          }
        });
    new Bootstrap()
        .group(downstream.eventLoop())
        .channelFactory(runtime.channelFactory())
        .resolver(runtime.addressResolverGroup())
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) config.timeouts().connect().toMillis())
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.AUTO_READ, false)
        .handler(new io.netty.channel.ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            leg.install(ch);
          }
        })
        .connect(leg.address())
        .addListener((ChannelFuture f) -> {
          if (!f.isSuccess()) {
            leg.connectFailed(f.cause());
          }
        });
    return connected.future();
  }

  private Future<Boolean> relay(Exchange ex, Channel downstream, Channel upstream, ByteBuf early,
      boolean tlsAllowed, PlainHttpHandOff plainHttp) {
    EgretConfig config = ex.serving().config();
    Decision d = ex.decision();
    Promise<Boolean> closed = Promise.promise();
    HelloPolicy policy = new HelloPolicy(ex.host(), config.tlsBaseline().minWireVersion(),
        d.rule() != null && d.rule().echAllowed());
    TunnelRelay relay = new TunnelRelay(downstream, upstream, policy, tlsAllowed, plainHttp,
        config.timeouts().idle().toMillis(), config.timeouts().handshake().toMillis());
    track.accept(downstream, relay);
    telemetry.tunnelOpened();
    relay.onClose(r -> {
      telemetry.tunnelClosed();
      if (r.handedOver()) {
        closed.complete(false);
        return;
      }
      TunnelStats stats = r.stats();
      ex.bytes(stats.bytesUpstream(), stats.bytesDownstream());
      ex.tlsSession(r.negotiatedVersion(), r.negotiatedCipher());
      if (stats.handshakeNanos() >= 0) {
        ex.timings().handshake(stats.handshakeNanos());
      }
      if (stats.firstUpstreamByteNanos() >= 0) {
        ex.timings().firstByte(stats.firstUpstreamByteNanos() - ex.startNanos());
      }
      reportHandshake(r, ex);
      if (r.failure() != null) {
        closed.fail(r.failure());
      } else {
        closed.complete(true);
      }
    });
    relay.start(early);
    return closed.future();
  }

  /**
   * Counts the TLS session the tunnel carried in the handshake metrics, from what the relay saw
   * in the ServerHello, so the version and cipher mix covers tunnels too. The certificate is
   * the client's to verify inside a tunnel, so no expiry is recorded for it.
   */
  private void reportHandshake(TunnelRelay r, Exchange ex) {
    String version = r.negotiatedVersion();
    if (version == null || version.equals("none")) {
      return;
    }
    ProxyFailure failure = r.failure();
    boolean versionCut = failure != null && failure.kind() == ErrorKind.TLS_PROTOCOL_ERROR;
    String cipher = r.negotiatedCipher() == null ? "unknown" : r.negotiatedCipher();
    java.time.Duration took = java.time.Duration.ofNanos(Math.max(0, r.stats().handshakeNanos()));
    telemetry.upstreamHandshake(ex.decision().destination(), ex.host(), version, cipher,
        versionCut ? HandshakeResult.PROTOCOL_ERROR : HandshakeResult.OK, took, null);
  }

  private void report(Exchange ex, ProxyFailure failure) {
    Hop hop = ex.finish(failure);
    if (hop != null) {
      telemetry.hopFinished(hop);
    }
  }

  /**
   * The start of a transparent TLS connection: holds the downstream's bytes until its ClientHello
   * names the destination, then admits it as a CONNECT to that name and port would be.
   */
  private final class TransparentHello extends ChannelInboundHandlerAdapter {
    private final Context context;
    private final int port;
    private final Supplier<Serving> serving;
    private final ClientHelloInspector inspector = new ClientHelloInspector();
    /** The downstream's bytes so far, in one buffer (a hello may come in any number of reads). */
    private ByteBuf held;
    private ScheduledFuture<?> timeout;
    private Exchange ex;

    TransparentHello(Context context, int port, Supplier<Serving> serving) {
      this.context = context;
      this.port = port;
      this.serving = serving;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      held = Unpooled.EMPTY_BUFFER;
      ex = Exchange.start(serving.get(),
          Exchange.address(DownstreamPeer.sourceAddress(ctx.channel())),
          Exchange.Origin.TRANSPARENT);
      if (ex.serving().config().clients().gateway()) {
        // A transparent connection knows only its address: no certificate, no token.
        ex.from(Credentials.addressOnly(DownstreamPeer.sourceAddress(ctx.channel())));
      }
      long ms = ex.serving().config().timeouts().handshake().toMillis();
      timeout = ctx.executor().schedule(() -> refuse(ctx, new ProxyFailure(
          ErrorKind.TLS_PROTOCOL_ERROR, "no complete TLS ClientHello within " + ms + " ms")),
          ms, TimeUnit.MILLISECONDS);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (!(msg instanceof ByteBuf buf) || held == null) {
        ReferenceCountUtil.release(msg);
        return;
      }
      // Read the chunk before it is merged: the merge may free it.
      HelloInspection.OfClient verdict = inspector.offer(ByteBufUtil.getBytes(buf));
      held = ByteToMessageDecoder.MERGE_CUMULATOR.cumulate(ctx.alloc(), held, buf);
      if (verdict instanceof HelloInspection.Refused r) {
        refuse(ctx, new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, "the first bytes on the "
            + "transparent TLS listener for port " + port + " are not a TLS ClientHello: "
            + r.reason()));
      } else if (verdict instanceof HelloInspection.ClientHello hello) {
        if (hello.sni() == null) {
          refuse(ctx, new ProxyFailure(ErrorKind.REQUEST_DENIED, "the ClientHello names no "
              + "server (no SNI), so the transparent listener cannot tell its destination"));
          return;
        }
        String host;
        try {
          host = dev.egret.address.HostName.normalize(hello.sni());
        } catch (IllegalArgumentException e) {
          refuse(ctx, new ProxyFailure(ErrorKind.REQUEST_ERROR,
              "the ClientHello's SNI '" + hello.sni() + "' is not a valid host name"));
          return;
        }
        timeout.cancel(false);
        ctx.channel().config().setAutoRead(false);
        ByteBuf first = held;
        held = null;
        ctx.pipeline().remove(this);
        Target target = Target.tunnel(host, port);
        ex.request(null, new RequestTarget(target, null, target.describe()));
        VertxRuntime.dispatch(context, v -> admit(ctx.channel(), first));
      }
    }

    private void admit(Channel downstream, ByteBuf first) {
      route.admit(ex)
          .compose(admitted -> {
            if (admitted.decision().reason() == Reason.PLAIN_HTTP_ONLY) {
              return Future.failedFuture(new ProxyFailure(ErrorKind.REQUEST_DENIED,
                  "no rule lets TLS through to " + ex.target().target().describe()));
            }
            return connect(admitted, downstream);
          })
          .compose(upstream -> {
            if (!downstream.isActive()) {
              upstream.close();
              return Future.failedFuture(new ProxyFailure(ErrorKind.DOWNSTREAM_ABORTED,
                  "the client left before the tunnel to " + ex.host() + " opened"));
            }
            ex.status(200);
            return relay(ex, downstream, upstream, first.retain(), true, null);
          })
          .onComplete(ar -> {
            first.release();
            if (ar.failed()) {
              downstream.close();
            }
            report(ex, ar.failed() ? FailureClassifier.classify(ar.cause(), ex.host()).failure()
                : null);
          });
    }

    private void refuse(ChannelHandlerContext ctx, ProxyFailure why) {
      if (held == null) {
        return;
      }
      held.release();
      held = null;
      timeout.cancel(false);
      ctx.close();
      report(ex, why);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      if (held != null) {
        refuse(ctx, new ProxyFailure(ErrorKind.DOWNSTREAM_ABORTED,
            "the client closed before its ClientHello was complete"));
      }
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      if (!(cause instanceof java.io.IOException)) {
        // Egret failed, not the client: say so, rather than count it as the client leaving.
        refuse(ctx, new ProxyFailure(ErrorKind.PROXY_INTERNAL_ERROR, "Egret failed reading the "
            + "ClientHello on the transparent TLS listener for port " + port + ": " + cause, cause));
      }
      ctx.close();
    }
  }
}
