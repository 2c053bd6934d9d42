package dev.egret.runtime;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFactory;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.resolver.AddressResolverGroup;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.VertxException;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.internal.net.NetSocketInternal;
import io.vertx.core.internal.resolver.NameResolver;
import java.net.InetSocketAddress;
import java.util.List;

/**
 * What Egret needs of Vert.x beyond its public API, in Egret's words and in public Vert.x and
 * Netty types: the event loops to bind on, a context bound to a given loop, running on that
 * context, the event loop of the current context, non-blocking name resolution, and Vert.x's
 * shared "connection was closed" exception. This is the only class that imports Vert.x
 * internals ({@code VertxInternalsTest} checks it), so a Vert.x upgrade that moves them breaks here
 * and nowhere else.
 *
 * <pre>{@code
 * VertxRuntime runtime = new VertxRuntime(vertx);
 * new ServerBootstrap().group(runtime.acceptors(), runtime.eventLoops())
 *     .channelFactory(runtime.serverChannelFactory());
 * Context context = runtime.contextOn(channel.eventLoop()); // once per loop, then kept
 * VertxRuntime.dispatch(context, head, this::begin);        // per request
 * }</pre>
 *
 * <p>Costs: a {@code VertxRuntime} is built once per listener or client, never per request; the
 * static methods are a cast and the call Vert.x would make anyway.
 */
public final class VertxRuntime {
  private static final VertxException CLOSED = NetSocketInternal.CLOSED_EXCEPTION;

  private final VertxInternal vertx;
  private final NameResolver resolver;

  /** @param vertx any {@link Vertx}; every implementation Vert.x ships is a {@code VertxInternal} */
  public VertxRuntime(Vertx vertx) {
    this.vertx = (VertxInternal) vertx;
    this.resolver = this.vertx.nameResolver();
  }

  /** The loops that accept connections, for a server bootstrap's parent group. */
  public EventLoopGroup acceptors() {
    return vertx.acceptorEventLoopGroup();
  }

  /** Vert.x's event loops (the ones its contexts run on), for a bootstrap's child group. */
  public EventLoopGroup eventLoops() {
    return vertx.nettyEventLoopGroup();
  }

  /** Server channels of Vert.x's transport (epoll where it loads, else NIO), TCP. */
  public ChannelFactory<? extends ServerChannel> serverChannelFactory() {
    return vertx.transport().serverChannelFactory(false);
  }

  /** Client channels of Vert.x's transport (epoll where it loads, else NIO), TCP. */
  public ChannelFactory<? extends Channel> channelFactory() {
    return vertx.transport().channelFactory(false);
  }

  /**
   * Vert.x's resolver as Netty's, for a bootstrap that connects by name: it honours /etc/hosts,
   * /etc/resolv.conf and the {@code AddressResolverOptions} the Vertx instance was built with.
   */
  public AddressResolverGroup<InetSocketAddress> addressResolverGroup() {
    return resolver.nettyAddressResolverGroup();
  }

  /** Resolves {@code host} to all its addresses without blocking, with Vert.x's resolver. */
  public void resolveAll(String host, Handler<AsyncResult<List<InetSocketAddress>>> resolved) {
    resolver.resolveAll(host, resolved);
  }

  /**
   * A new event-loop context bound to {@code loop}, so that the Vert.x futures and timers of the
   * connections on that loop run on their own thread. Build one per loop and keep it.
   */
  public Context contextOn(EventLoop loop) {
    return vertx.contextBuilder().withEventLoop(loop).build();
  }

  /**
   * Runs {@code handler} with {@code event} now, on the calling thread, as {@code context}'s
   * code: Vert.x calls made inside it see {@code context} as current, and what it throws goes to
   * the context's exception handler. Call it on the context's own event loop.
   *
   * @param context a context from {@link #contextOn} (or any Vert.x context)
   */
  public static <E> void dispatch(Context context, E event, Handler<E> handler) {
    ((ContextInternal) context).dispatch(event, handler);
  }

  /** {@link #dispatch(Context, Object, Handler)} with no event. */
  public static void dispatch(Context context, Handler<Void> handler) {
    ((ContextInternal) context).dispatch(handler);
  }

  /** The Netty event loop of {@code context}; for an event-loop context, the thread it runs on. */
  public static EventLoop eventLoop(Context context) {
    return ((ContextInternal) context).nettyEventLoop();
  }

  /** The event loop of the calling thread's Vert.x context, or null outside any context. */
  public static EventLoop currentEventLoop() {
    ContextInternal ctx = ContextInternal.current();
    return ctx == null ? null : ctx.nettyEventLoop();
  }

  /**
   * Whether {@code t} is Vert.x's shared "Connection was closed" exception. It has no type of its
   * own, only one instance the connection classes reuse, so it is told by identity.
   */
  public static boolean isConnectionClosed(Throwable t) {
    return t == CLOSED;
  }
}
