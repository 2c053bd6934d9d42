package dev.egret.telemetry;

import io.netty.channel.Channel;
import io.netty.util.AttributeKey;
import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * Pauses a listener that cannot accept for want of a descriptor, and resumes it, as Envoy and
 * HAProxy do. Each listener's server-channel handler hands it its accept failures and successes:
 *
 * <pre>{@code
 * public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
 *   if (!AcceptPause.paused(ctx.channel(), "the admin listener on 127.0.0.1:9901", cause)) {
 *     ctx.fireExceptionCaught(cause);
 *   }
 * }
 * public void channelRead(ChannelHandlerContext ctx, Object child) {
 *   AcceptPause.accepted(ctx.channel());
 *   ...
 * }
 * }</pre>
 *
 * <p>Why not exit: a full table stops new accepts, not the connections already admitted, which
 * keep being served; ending the process would cut them all for the sake of the newcomers. What
 * can fill the table is bounded (the caps, the refusal budget), so it empties as connections
 * close, and then the listener accepts again by itself: the process never stays alive serving
 * nothing. Why pause: a connection the kernel holds in the backlog keeps the listener readable,
 * so retrying at once would spin an event loop on failing accepts. Netty's own acceptor pauses a
 * second for any accept failure; the pause here is shorter, so that {@code /readyz} and the
 * proxy answer soon after descriptors come back, and the failure goes no further down the
 * pipeline (where it would be logged once per retry).
 */
public final class AcceptPause {
  /** How long a listener stops accepting after an accept failed with the table full. */
  static final long PAUSE_MS = 100;
  private static final AttributeKey<Long> PAUSED_SINCE = AttributeKey.valueOf("egret.acceptPausedSince");

  private AcceptPause() {}

  /**
   * Closes a connection the acceptor will not take (over a cap), here and now, on the acceptor's
   * own thread, so its descriptor is free before the next accept: a flood closed on the worker
   * loops instead outran them. The child has no loop yet, and a channel without one has no
   * pipeline to close through; it is registered with the acceptor's loop (inline, since this is
   * that loop: no task is queued) and closed at once, before any handler is added to it.
   */
  public static void closeAtAccept(Channel server, Channel child) {
    server.eventLoop().register(child).addListener(f -> child.close());
  }

  /**
   * An accept on {@code server} failed. True when the cause is a full descriptor table: then
   * accepting is paused for {@link #PAUSE_MS} and resumed, and the first pause of an episode is
   * said once on standard error. False for any other failure (a connection reset before it was
   * accepted), which the caller passes on. Runs on the server channel's loop.
   */
  public static boolean paused(Channel server, String listener, Throwable cause) {
    Fatal.check(cause);
    if (!(cause instanceof IOException) || !Fatal.tableFull()) {
      return false;
    }
    if (server.attr(PAUSED_SINCE).get() == null) {
      server.attr(PAUSED_SINCE).set(System.nanoTime());
      System.err.println("egret: the descriptor table is full (" + Fatal.describeTable()
          + "); accepting on " + listener + " is paused and retried every " + PAUSE_MS
          + " ms until connections close: " + cause + ". Raise the limit (ulimit -n, the"
          + " container's nofile) above what limits.maxConnections and"
          + " limits.maxAdminConnections need, or lower them");
    }
    server.config().setAutoRead(false);
    server.eventLoop().schedule(() -> {
      server.config().setAutoRead(true);
    }, PAUSE_MS, TimeUnit.MILLISECONDS);
    return true;
  }

  /** {@code server} accepted a connection: ends a pause episode, saying how long it lasted. */
  public static void accepted(Channel server) {
    Long since = server.attr(PAUSED_SINCE).getAndSet(null);
    if (since != null) {
      System.err.println("egret: accepting again after "
          + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - since)
          + " ms with the descriptor table full");
    }
  }
}
