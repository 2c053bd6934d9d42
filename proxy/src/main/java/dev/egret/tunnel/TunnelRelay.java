package dev.egret.tunnel;

import dev.egret.exchange.Tracked;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureClassifier;
import dev.egret.failure.ProxyFailure;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The two directions of one tunnel, as Netty's HexDumpProxy frontend and backend are: each side's
 * reads go to the other side, a side is read only while the other can take more, and both close
 * together. What goes across is only what that direction's {@link RecordChecker} passed; a
 * refusal cuts both sides at once and becomes the hop's failure. The end of either side's stream
 * ends the tunnel: the other side gets every byte already relayed, then closes (TLS ends with
 * close_notify, so no half-close is kept open).
 *
 * <p>Everything here runs on the downstream connection's event loop (the upstream channel was
 * connected from it), so the fields need no locking.
 */
final class TunnelRelay implements Tracked {
  private final Channel downstream;
  private final Channel upstream;
  private final RecordChecker fromDownstream;
  private final RecordChecker fromUpstream;
  private final HelloPolicy policy;
  private final boolean tlsAllowed;
  private final PlainHttpHandOff plainHttp;
  private final long idleNanos;
  private final long handshakeNanos;
  private final long startNanos = System.nanoTime();
  private final TunnelStats stats = new TunnelStats();
  private long lastActivityNanos = startNanos;
  private boolean firstDownstreamByte = true;
  private ProxyFailure failure;
  private boolean closed;
  private boolean handedOver;
  private ScheduledFuture<?> timer;
  private Consumer<TunnelRelay> onClose = r -> { };
  private ByteBufAllocator downstreamAllocator;

  /**
   * @param upstream the connected upstream, or null for a CONNECT admitted for plain HTTP only
   * @param tlsAllowed whether a rule lets this tunnel carry TLS (else only plain HTTP may come)
   * @param plainHttp where plain HTTP requests go, or null where they are refused (transparent)
   */
  TunnelRelay(Channel downstream, Channel upstream, HelloPolicy policy, boolean tlsAllowed,
      PlainHttpHandOff plainHttp, long idleMs, long handshakeMs) {
    this.downstream = downstream;
    this.upstream = upstream;
    this.policy = policy;
    this.tlsAllowed = tlsAllowed;
    this.plainHttp = plainHttp;
    this.idleNanos = TimeUnit.MILLISECONDS.toNanos(idleMs);
    this.handshakeNanos = TimeUnit.MILLISECONDS.toNanos(handshakeMs);
    RecordChecker[] checkers = RecordChecker.pair(policy, downstream.alloc());
    this.fromDownstream = checkers[0];
    this.fromUpstream = checkers[1];
  }

  void onClose(Consumer<TunnelRelay> onClose) {
    this.onClose = onClose;
  }

  /** Installs both sides' handlers and starts with the bytes already read from the downstream. */
  void start(ByteBuf early) {
    // Both sides read into buffers that are reused while still in cache (RelayBuffers).
    downstreamAllocator = downstream.config().getAllocator();
    downstream.config().setAllocator(RelayBuffers.INSTANCE);
    downstream.pipeline().addLast("egret-tunnel", new Side(true));
    if (upstream != null) {
      upstream.config().setAllocator(RelayBuffers.INSTANCE);
      upstream.pipeline().addLast("egret-tunnel", new Side(false));
      upstream.config().setAutoRead(true);
    }
    long period = Math.max(25, Math.min(idleNanos, handshakeNanos) / 4_000_000L);
    timer = downstream.eventLoop().scheduleAtFixedRate(this::tick, period, period,
        TimeUnit.MILLISECONDS);
    if (early != null && early.isReadable()) {
      fromDownstream(early);
      if (upstream != null && !closed && !handedOver) {
        upstream.flush(); // no read completes for these bytes, which came before the relay
      }
    } else if (early != null) {
      early.release();
    }
    if (!closed && !handedOver) {
      downstream.config().setAutoRead(true);
      downstream.read();
    }
  }

  private void tick() {
    long now = System.nanoTime();
    boolean hellosPassed = fromDownstream.helloPassed() && fromUpstream.helloPassed();
    if (!hellosPassed && now - startNanos > handshakeNanos) {
      cut(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, "no complete TLS handshake hello within "
          + TimeUnit.NANOSECONDS.toMillis(handshakeNanos) + " ms"));
    } else if (now - lastActivityNanos > idleNanos) {
      closeBoth();
    }
  }

  private void fromDownstream(ByteBuf buf) {
    if (closed) {
      buf.release();
      return;
    }
    lastActivityNanos = System.nanoTime();
    if (firstDownstreamByte) {
      firstDownstreamByte = false;
      int b = buf.getByte(buf.readerIndex()) & 0xff;
      if (b >= 'A' && b <= 'Z' && plainHttp != null) {
        handToHttp(buf);
        return;
      }
      if (!tlsAllowed) {
        buf.release();
        cut(new ProxyFailure(ErrorKind.REQUEST_DENIED, "no rule lets TLS through to "
            + policy.host() + "; this tunnel was opened for plain http:// requests only, which "
            + "Egret upgrades itself"));
        return;
      }
    }
    ByteBuf passed = fromDownstream.offer(buf);
    if (fromDownstream.failure() != null) {
      cut(fromDownstream.failure());
    } else if (passed != null) {
      stats.upstream(passed.readableBytes(), fromUpstream.helloPassed(), lastActivityNanos);
      relay(passed, upstream, downstream);
    }
  }

  private void fromUpstream(ByteBuf buf) {
    if (closed) {
      buf.release();
      return;
    }
    lastActivityNanos = System.nanoTime();
    stats.upstreamByte(lastActivityNanos);
    ByteBuf passed = fromUpstream.offer(buf);
    if (fromUpstream.failure() != null) {
      cut(fromUpstream.failure());
      return;
    }
    if (passed != null) {
      stats.downstream(passed.readableBytes());
      relay(passed, downstream, upstream);
    }
    if (fromUpstream.state() == RecordChecker.State.ENDED) {
      endBoth(false); // the upstream's fatal alert, passed on: nothing may follow it
    }
  }

  private void handToHttp(ByteBuf first) {
    handedOver = true;
    closed = true;
    cancelTimer();
    releaseCheckers();
    downstream.pipeline().remove("egret-tunnel");
    downstream.config().setAllocator(downstreamAllocator); // an HTTP connection again, as it was
    if (upstream != null) {
      upstream.close();
    }
    onClose.accept(this);
    plainHttp.start(downstream.pipeline(), first);
  }

  /**
   * Writes passed bytes on; stops reading their source while the destination is full. One full
   * read (64 KiB) is past the write buffer's high-water mark before it is flushed, so it is
   * flushed here first: only a socket that cannot take it pauses the source. Pausing on every
   * full read cost two epoll_ctl calls and an epoll wait per 64 KiB, and ended the read loop
   * with more bytes waiting in the socket.
   */
  private void relay(ByteBuf buf, Channel to, Channel source) {
    to.write(buf, to.voidPromise());
    if (!to.isWritable()) {
      to.flush();
      if (!to.isWritable()) {
        source.config().setAutoRead(false);
      }
    }
  }

  /** Refuses the tunnel: records why and closes both sides without relaying more. */
  void cut(ProxyFailure why) {
    if (failure == null && !closed) {
      failure = why;
    }
    closeBoth();
  }

  /** Ends the tunnel at once: a cut, a reset, or a tunnel idle too long. */
  void closeBoth() {
    if (closed) {
      return;
    }
    closed = true;
    cancelTimer();
    releaseCheckers();
    downstream.close();
    if (upstream != null) {
      upstream.close();
    }
    onClose.accept(this);
  }

  /**
   * Ends the tunnel because one side finished its stream: what it sent is already written to
   * the other side, which closes once those bytes have left (Netty flushes the queued writes
   * before the close that follows them), or when the idle timeout says the reader is gone.
   */
  private void endBoth(boolean downstreamEnded) {
    if (closed) {
      return;
    }
    if (failure == null) {
      failure = unfinishedHandshake(downstreamEnded);
    }
    closed = true;
    cancelTimer();
    releaseCheckers();
    flushThenClose(downstream);
    if (upstream != null) {
      flushThenClose(upstream);
    }
    onClose.accept(this);
  }

  /**
   * Why a tunnel whose stream ended in the clear handshake failed, or null if it did not: the
   * upstream refused the ClientHello with a fatal alert, the upstream closed before its
   * ServerHello, or the downstream closed partway through its ClientHello. A downstream that closes
   * having sent nothing, or after the handshake, ends its tunnel well.
   */
  private ProxyFailure unfinishedHandshake(boolean downstreamEnded) {
    if (upstream == null) {
      return null;
    }
    HelloInspection.Alert alert = fromUpstream.endingAlert();
    if (alert != null && fromUpstream.serverHello() == null) {
      return new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, policy.host()
          + " answered the ClientHello with a fatal TLS alert (" + alert.descriptionName()
          + ", description code " + alert.description() + ") before any ServerHello");
    }
    if (!downstreamEnded && fromDownstream.helloPassed()
        && fromUpstream.state() == RecordChecker.State.AWAITING_HELLO) {
      return new ProxyFailure(ErrorKind.DESTINATION_UNAVAILABLE, policy.host()
          + " closed the connection after the ClientHello, before its ServerHello");
    }
    if (downstreamEnded && fromDownstream.state() == RecordChecker.State.AWAITING_HELLO
        && fromDownstream.offered() > 0) {
      return new ProxyFailure(ErrorKind.DOWNSTREAM_ABORTED,
          "the client closed before its ClientHello was complete");
    }
    return null;
  }

  private void flushThenClose(Channel ch) {
    if (!ch.isActive()) {
      return;
    }
    ScheduledFuture<?> giveUp = ch.eventLoop().schedule(() -> {
      ch.close();
    }, TimeUnit.NANOSECONDS.toMillis(idleNanos), TimeUnit.MILLISECONDS);
    ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE)
        .addListener(f -> giveUp.cancel(false));
  }

  private void cancelTimer() {
    if (timer != null) {
      timer.cancel(false);
      timer = null;
    }
  }

  private void releaseCheckers() {
    fromDownstream.release();
    fromUpstream.release();
  }

  @Override
  public void drain() {
    // A tunnel in flight runs on until shutdown.deadline; the listener cuts it then.
  }

  @Override
  public String inFlight() {
    return "tunnel";
  }

  boolean handedOver() {
    return handedOver;
  }

  ProxyFailure failure() {
    return failure;
  }

  TunnelStats stats() {
    return stats;
  }

  /** The version the upstream chose (its fatal alert: "none"), or null if it never said. */
  String negotiatedVersion() {
    if (fromUpstream.state() == RecordChecker.State.ENDED) {
      return "none";
    }
    HelloInspection.ServerHello hello = fromUpstream.serverHello();
    return hello == null ? null : hello.versionName();
  }

  String negotiatedCipher() {
    HelloInspection.ServerHello hello = fromUpstream.serverHello();
    return hello == null ? null : hello.cipherName();
  }

  /** One side's handler: reads go to the relay, the other side's room resumes reading. */
  private final class Side extends ChannelInboundHandlerAdapter {
    private final boolean isDownstream;

    Side(boolean isDownstream) {
      this.isDownstream = isDownstream;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (!(msg instanceof ByteBuf buf) || !buf.isReadable()) {
        ReferenceCountUtil.release(msg);
        return;
      }
      if (isDownstream) {
        fromDownstream(buf);
      } else {
        fromUpstream(buf);
      }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      Channel other = isDownstream ? upstream : downstream;
      if (other != null && !closed) {
        other.flush();
      }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      Channel source = isDownstream ? upstream : downstream;
      if (ctx.channel().isWritable() && source != null && !closed) {
        source.config().setAutoRead(true);
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      if (!handedOver) {
        endBoth(isDownstream);
      }
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      if (!(cause instanceof IOException)) {
        // Not the network: Egret itself failed on this tunnel. It is counted as a failure like
        // any other, never as a tunnel that ended well.
        cut(new ProxyFailure(ErrorKind.PROXY_INTERNAL_ERROR, "Egret failed inside the tunnel to "
            + policy.host() + ": " + cause, cause));
      } else if (isDownstream) {
        // A downstream that resets is the task going away, which many do at the end of every TLS
        // session.
        closeBoth();
      } else {
        // The upstream's reset is the hop's failure (counted failed, with its error type, as on
        // the upgrade path).
        cut(FailureClassifier.classify(cause, policy.host()).failure());
      }
    }
  }
}
