package dev.egret.admin;

import dev.egret.config.EgretConfig;
import dev.egret.runtime.VertxRuntime;
import dev.egret.telemetry.AcceptPause;
import dev.egret.telemetry.Fatal;
import dev.egret.telemetry.Telemetry;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * The admin listener ({@code listen.admin}), apart from the proxy port so that Prometheus and
 * health checks never compete with proxied traffic. Usage:
 *
 * <pre>{@code
 * AdminServer admin = new AdminServer(vertx, "127.0.0.1", 9901, telemetry::scrape,
 *     () -> AdminServer.Limits.of(server.config()), telemetry);
 * int port = admin.start().await();   // bound port; 0 asks for any
 * admin.markReady();                  // once the proxy listener is bound
 * admin.markDraining();               // on shutdown, before closing the proxy listener
 * admin.close();
 * }</pre>
 *
 * <ul>
 *   <li>{@code GET /metrics}: Prometheus text format 0.0.4, scraped on a worker thread;
 *   <li>{@code GET /healthz}: 200 {@code ok} while the process serves HTTP at all;
 *   <li>{@code GET /readyz}: 200 {@code ready} after {@link #markReady()}, 503 before it and for
 *       good after {@link #markDraining()}, so a load balancer or the ECS/Kubernetes probe stops
 *       sending work before the proxy closes.
 * </ul>
 *
 * Other paths are 404; another method on a known path is 405 with {@code Allow: GET}.
 *
 * <p>Its connections are capped apart from the proxy's ({@code limits.maxAdminConnections}). The
 * cap is applied by the acceptor thread itself, as it accepts: a connection over it is closed
 * there and then, never handed to an event loop, so a local client opening connections by the
 * thousand cannot pile up descriptors faster than they are closed and exhaust the table the
 * proxy needs. A connection must send each request head within {@code timeouts.requestHead} of
 * its accept or of its previous response, else it is closed, so idle or trickling connections
 * cannot squat the slots that probes and scrapes need. Both are read at each accept, so a reload
 * applies them. The listener is a Netty server on Vert.x's acceptor and event loops with a
 * pipeline of its own (Netty's HTTP/1.1 codec), as the proxy's listeners are.
 */
public final class AdminServer {
  /** The Prometheus text exposition format's content type. */
  public static final String METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
  private static final String TEXT = "text/plain; charset=utf-8";
  /** Closes a connection whose response the client does not read, or that sends nothing more. */
  private static final long IDLE_SECONDS = 60;

  /**
   * The admin listener's limits, read at each accept.
   *
   * @param maxConnections {@code limits.maxAdminConnections}
   * @param requestDeadline {@code timeouts.requestHead}: how long a connection may go without a
   *     complete request head, from its accept or its previous response's end
   */
  public record Limits(int maxConnections, Duration requestDeadline) {
    /** The defaults of a config that sets neither. */
    public static final Limits DEFAULT = new Limits(64, Duration.ofSeconds(10));

    public static Limits of(EgretConfig config) {
      return new Limits(config.limits().maxAdminConnections(), config.timeouts().requestHead());
    }
  }

  private enum Readiness { STARTING, READY, DRAINING }

  private final Vertx vertx;
  private final String host;
  private final int port;
  private final Callable<String> scrape;
  private final Supplier<Limits> limits;
  private final Telemetry telemetry;
  /** Admitted connections open now; only the acceptor thread adds to it. */
  private final AtomicInteger open = new AtomicInteger();
  // Written by whoever drives the lifecycle, read by the event loop serving /readyz.
  private volatile Readiness readiness = Readiness.STARTING;
  private volatile Channel server;

  /**
   * @param host the address to bind, from {@code listen.admin}
   * @param port the port to bind, 0 for any (tests)
   * @param scrape renders the metrics; may take milliseconds, so it runs on a worker thread
   */
  public AdminServer(Vertx vertx, String host, int port, Callable<String> scrape) {
    this(vertx, host, port, scrape, () -> Limits.DEFAULT, Telemetry.NONE);
  }

  /**
   * @param limits the cap and request deadline in force, read at each accept
   * @param telemetry where the open admin connections are counted ({@code egret_admin_connections})
   */
  public AdminServer(Vertx vertx, String host, int port, Callable<String> scrape,
      Supplier<Limits> limits, Telemetry telemetry) {
    this.vertx = vertx;
    this.host = host;
    this.port = port;
    this.scrape = scrape;
    this.limits = limits;
    this.telemetry = telemetry;
  }

  /** Binds the listener; the future holds the bound port. */
  public Future<Integer> start() {
    VertxRuntime runtime = new VertxRuntime(vertx);
    Promise<Integer> bound = Promise.promise();
    ServerBootstrap b = new ServerBootstrap()
        .group(runtime.acceptors(), runtime.eventLoops())
        .channelFactory(runtime.serverChannelFactory())
        .option(ChannelOption.SO_BACKLOG, 128)
        .option(ChannelOption.SO_REUSEADDR, true)
        .childOption(ChannelOption.TCP_NODELAY, true)
        .handler(new ChannelInboundHandlerAdapter() {
          @Override
          public void channelRead(ChannelHandlerContext ctx, Object msg) {
            AcceptPause.accepted(ctx.channel());
            if (msg instanceof Channel child && !admit(child)) {
              AcceptPause.closeAtAccept(ctx.channel(), child);
              return;
            }
            ctx.fireChannelRead(msg);
          }

          @Override
          public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (!AcceptPause.paused(ctx.channel(), "the admin listener on " + host + ":" + port,
                cause)) {
              ctx.fireExceptionCaught(cause);
            }
          }
        })
        .childHandler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            ch.pipeline()
                .addLast(new IdleStateHandler(0, 0, IDLE_SECONDS, TimeUnit.SECONDS))
                // A scrape or probe is one small request: short lines, no body to speak of.
                .addLast(new HttpServerCodec(1024, 8192, 8192))
                .addLast(new HttpObjectAggregator(8192))
                .addLast(new Requests(ch.attr(DEADLINE).get()));
          }
        });
    // Resolved by the caller's thread: listen.admin is a literal or a name from the config.
    b.bind(new InetSocketAddress(host, port)).addListener(f -> {
      if (f.isSuccess()) {
        Channel ch = ((io.netty.channel.ChannelFuture) f).channel();
        server = ch;
        bound.complete(((InetSocketAddress) ch.localAddress()).getPort());
      } else {
        bound.fail(f.cause());
      }
    });
    return bound.future();
  }

  private static final io.netty.util.AttributeKey<Duration> DEADLINE =
      io.netty.util.AttributeKey.valueOf("egret.admin.deadline");

  /** Counts a connection under the cap; runs on the acceptor thread, in accept order. */
  private boolean admit(Channel child) {
    Limits now = limits.get();
    if (open.get() >= now.maxConnections()) {
      return false;
    }
    open.incrementAndGet();
    telemetry.adminConnectionOpened();
    child.attr(DEADLINE).set(now.requestDeadline());
    child.closeFuture().addListener(f -> {
      open.decrementAndGet();
      telemetry.adminConnectionClosed();
    });
    return true;
  }

  /** The proxy is serving: /readyz answers 200. Ignored once draining. */
  public void markReady() {
    if (readiness == Readiness.STARTING) {
      readiness = Readiness.READY;
    }
  }

  /** Shutdown began: /readyz answers 503 from now on. */
  public void markDraining() {
    readiness = Readiness.DRAINING;
  }

  /** Stops accepting; the connections open close as their requests end or time out. */
  public Future<Void> close() {
    Channel ch = server;
    if (ch == null) {
      return Future.succeededFuture();
    }
    Promise<Void> closed = Promise.promise();
    ch.close().addListener(f -> closed.tryComplete());
    return closed.future();
  }

  /**
   * One admin connection: one request at a time (reading pauses while a scrape renders, so a
   * pipelined request is answered in order), each head due within the deadline. Every method
   * runs on the connection's event loop.
   */
  private final class Requests extends ChannelInboundHandlerAdapter {
    private final Duration deadline;
    private ScheduledFuture<?> timer;
    /** A request is being answered; one that arrives meanwhile (pipelined) waits in pending. */
    private boolean busy;
    private FullHttpRequest pending;

    Requests(Duration deadline) {
      this.deadline = deadline == null ? Limits.DEFAULT.requestDeadline() : deadline;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      awaitRequest(ctx);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      cancel();
      if (pending != null) {
        pending.release();
        pending = null;
      }
      ctx.fireChannelInactive();
    }

    private void awaitRequest(ChannelHandlerContext ctx) {
      cancel();
      timer = ctx.executor().schedule(() -> {
        ctx.close();
      }, Math.max(1, deadline.toMillis()), TimeUnit.MILLISECONDS);
    }

    private void cancel() {
      if (timer != null) {
        timer.cancel(false);
        timer = null;
      }
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (!(msg instanceof FullHttpRequest request)) {
        ReferenceCountUtil.release(msg);
        return;
      }
      cancel();
      ctx.channel().config().setAutoRead(false);
      if (busy) {
        // Decoded from the same read as the one being answered; more than one is not a probe.
        if (pending == null) {
          pending = request;
        } else {
          request.release();
          ctx.close();
        }
        return;
      }
      busy = true;
      serve(ctx, request);
    }

    private void serve(ChannelHandlerContext ctx, FullHttpRequest request) {
      try {
        boolean keepAlive = HttpUtil.isKeepAlive(request);
        if (!request.decoderResult().isSuccess()) {
          answer(ctx, text(HttpResponseStatus.BAD_REQUEST, "bad request\n"), false);
          return;
        }
        String uri = request.uri();
        int query = uri.indexOf('?');
        String path = query < 0 ? uri : uri.substring(0, query);
        if (!path.equals("/metrics") && !path.equals("/healthz") && !path.equals("/readyz")) {
          answer(ctx, text(HttpResponseStatus.NOT_FOUND,
              "not found: the admin port serves /metrics, /healthz and /readyz\n"), keepAlive);
          return;
        }
        if (!request.method().equals(HttpMethod.GET)) {
          FullHttpResponse r = text(HttpResponseStatus.METHOD_NOT_ALLOWED,
              "method not allowed: use GET\n");
          r.headers().set(HttpHeaderNames.ALLOW, "GET");
          answer(ctx, r, keepAlive);
          return;
        }
        switch (path) {
          case "/metrics" -> metrics(ctx, keepAlive);
          case "/healthz" -> answer(ctx, text(HttpResponseStatus.OK, "ok"), keepAlive);
          default -> {
            Readiness now = readiness;
            answer(ctx, switch (now) {
              case READY -> text(HttpResponseStatus.OK, "ready");
              case STARTING -> text(HttpResponseStatus.SERVICE_UNAVAILABLE, "starting");
              case DRAINING -> text(HttpResponseStatus.SERVICE_UNAVAILABLE, "draining");
            }, keepAlive);
          }
        }
      } finally {
        request.release();
      }
    }

    private void metrics(ChannelHandlerContext ctx, boolean keepAlive) {
      // Unordered: concurrent scrapes need not queue behind each other.
      vertx.executeBlocking(scrape, false).onComplete(ar -> ctx.executor().execute(() -> {
        if (ar.succeeded()) {
          FullHttpResponse r = text(HttpResponseStatus.OK, ar.result());
          r.headers().set(HttpHeaderNames.CONTENT_TYPE, METRICS_CONTENT_TYPE);
          answer(ctx, r, keepAlive);
        } else {
          answer(ctx, text(HttpResponseStatus.INTERNAL_SERVER_ERROR, "metrics unavailable: "
              + ar.cause().getClass().getSimpleName() + "\n"), keepAlive);
        }
      }));
    }

    /** Writes the response; then reads the next request within the deadline, or closes. */
    private void answer(ChannelHandlerContext ctx, FullHttpResponse response, boolean keepAlive) {
      if (!ctx.channel().isActive()) {
        response.release();
        return;
      }
      if (keepAlive) {
        response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
      } else {
        response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
      }
      ctx.writeAndFlush(response).addListener(f -> {
        if (!keepAlive || !f.isSuccess()) {
          ctx.close();
          return;
        }
        busy = false;
        FullHttpRequest next = pending;
        pending = null;
        if (next != null) {
          busy = true;
          serve(ctx, next);
          return;
        }
        awaitRequest(ctx);
        ctx.channel().config().setAutoRead(true);
      });
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof IdleStateEvent) {
        ctx.close();
        return;
      }
      ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      Fatal.check(cause);
      ctx.close();
    }
  }

  private static FullHttpResponse text(HttpResponseStatus status, String body) {
    FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status,
        Unpooled.copiedBuffer(body, StandardCharsets.UTF_8));
    r.headers().set(HttpHeaderNames.CONTENT_TYPE, TEXT);
    HttpUtil.setContentLength(r, r.content().readableBytes());
    return r;
  }
}
