package dev.egret.listener;

import dev.egret.exchange.DownstreamPeer;
import dev.egret.exchange.RequestTarget;
import dev.egret.exchange.RequestHead;
import dev.egret.exchange.Downstream;
import dev.egret.exchange.RelayedHead;
import dev.egret.exchange.Exchange;
import dev.egret.exchange.Route;
import dev.egret.exchange.Tracked;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureClassifier;
import dev.egret.failure.FailureResponse;
import dev.egret.failure.ProxyFailure;
import dev.egret.identity.Credentials;
import dev.egret.policy.Kind;
import dev.egret.runtime.VertxRuntime;
import dev.egret.telemetry.Hop;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.LastHttpContent;
import dev.egret.telemetry.Fatal;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.Future;
import io.vertx.core.Context;
import java.util.ArrayDeque;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * The request handler of a downstream connection: one per connection, behind the {@link
 * StrictRequestDecoder} and Netty's response encoder. For each request head it creates the
 * hop's {@link Exchange}, runs the route (decision, address guard, slot), then hands the
 * exchange to the upgrade ({@code http://}, {@code https://}, plain HTTP inside a tunnel) or
 * the tunnel ({@code CONNECT}). Every refusal and failure of a hop comes back here and leaves
 * through {@link FailureResponse}; when a response has ended it asks the decoder for the next
 * request, or closes.
 *
 * <p>Threading: Netty calls every method on the channel's event loop, which is a Vert.x event
 * loop; {@code context} is the Vert.x context bound to it, so the upstream client's callbacks
 * run on the same thread and the fields here need no locking.
 */
final class DownstreamConnection extends ChannelInboundHandlerAdapter implements Tracked {
  private final Stages stages;
  private final Pipelines pipelines;
  private final Context context;
  private final Exchange.Origin origin;
  private ChannelHandlerContext ctx;
  /**
   * The encoder's context: relayed responses are bytes already and are written from here, past
   * Netty's encoder, which then sees only Egret's own refusals (whole messages, so its state is
   * back at the start whenever a relayed response begins).
   */
  private ChannelHandlerContext wire;
  private StrictRequestDecoder decoder;
  /** The client's address as the log shows it, formatted once per connection. */
  private String remote;
  /** The load balancer when a PROXY header named the client, else null; formatted once too. */
  private String peer;
  private Request current;
  private boolean draining;
  private boolean closed;
  /** Requests begun on this connection; a fresh one is served once even while draining. */
  private int served;
  /**
   * {@code timeouts.idle}: between requests, a connection without a byte read or a response
   * byte written for this long closes (0: never). Kept here rather than by Netty's {@code
   * IdleStateHandler}, which would be one more handler for every read, write and flush of every
   * request and a listener on every write; only the end of each response is watched.
   */
  private final long idleNanos;
  /** When a byte was last read, or the last response was written ({@link System#nanoTime()}). */
  private long lastActive;
  private java.util.concurrent.ScheduledFuture<?> idleTimer;
  /**
   * {@link #begin}, bound once. Under the sidecar profile's client compiler, each capture of a
   * lambda or method reference is a call into the VM (an unintrinsified allocateInstance), so the
   * per-request path captures none: what it needs is bound per connection, or is an object the
   * request has anyway ({@link Request} is its own continuation).
   */
  private final io.vertx.core.Handler<RequestHead> begin = this::begin;

  private static final int CRLF_SHORT = ('\r' << 8) | '\n';
  private static final byte[] CONNECTION_CLOSE =
      "Connection: close\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
  private static final byte[] CONNECTION_KEEP_ALIVE =
      "Connection: keep-alive\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
  private static final ByteBuf CRLF = io.netty.buffer.Unpooled.unreleasableBuffer(
      io.netty.buffer.Unpooled.directBuffer(2).writeShort(CRLF_SHORT));
  private static final ByteBuf LAST_CHUNK = io.netty.buffer.Unpooled.unreleasableBuffer(
      io.netty.buffer.Unpooled.directBuffer(5).writeBytes(new byte[] {'0', '\r', '\n', '\r', '\n'}));
  /** A body up to this size is copied into the head's buffer when it fits there. */
  private static final int COPY_BODY = 2048;

  DownstreamConnection(Stages stages, Pipelines pipelines, Context context,
      Exchange.Origin origin, long idleNanos) {
    this.stages = stages;
    this.pipelines = pipelines;
    this.context = context;
    this.origin = origin;
    this.idleNanos = idleNanos;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    this.ctx = ctx;
    this.wire = ctx.pipeline().context(Pipelines.ENCODER);
    this.decoder = ctx.pipeline().get(StrictRequestDecoder.class);
    this.remote = Exchange.address(DownstreamPeer.sourceAddress(ctx.channel()));
    this.peer = DownstreamPeer.proxied(ctx.channel())
        ? Exchange.address(DownstreamPeer.peerAddress(ctx.channel())) : null;
    stages.connections().track(ctx.channel(), this);
    lastActive = System.nanoTime();
    if (idleNanos > 0) {
      scheduleIdleCheck(idleNanos);
    }
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    if (idleTimer != null) {
      idleTimer.cancel(false); // the socket went to a tunnel, which keeps its own time
      idleTimer = null;
    }
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    lastActive = System.nanoTime(); // once per read from the socket, whatever it held
    ctx.fireChannelReadComplete();
  }

  private void scheduleIdleCheck(long delayNanos) {
    idleTimer = ctx.executor().schedule(this::idleCheck, delayNanos,
        java.util.concurrent.TimeUnit.NANOSECONDS);
  }

  /** {@code timeouts.idle} between requests; a hop in flight has its own timeouts. */
  private void idleCheck() {
    idleTimer = null;
    if (!ctx.channel().isActive() || ctx.isRemoved()) {
      return;
    }
    long left = idleNanos - (System.nanoTime() - lastActive);
    if (left <= 0 && current == null) {
      ctx.close();
      return;
    }
    scheduleIdleCheck(left > 0 ? left : idleNanos);
  }

  /**
   * The response has been handed to the socket: the connection is idle from when its last
   * byte is written (at once, unless the client reads slowly).
   */
  private void activeUntil(io.netty.channel.ChannelFuture lastWrite) {
    lastActive = System.nanoTime();
    if (lastWrite != null && !lastWrite.isDone()) {
      lastWrite.addListener(f -> lastActive = System.nanoTime());
    }
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof RequestHead head) {
      VertxRuntime.dispatch(context, head, begin);
    } else if (msg instanceof HttpContent content) {
      if (current != null) {
        current.content(content);
      } else {
        content.release();
      }
    } else if (msg instanceof ProxyFailure failure) {
      VertxRuntime.dispatch(context, failure, this::malformed);
    } else {
      ReferenceCountUtil.release(msg);
    }
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    if (current != null && ctx.channel().isWritable()) {
      current.roomAgain();
    }
    ctx.fireChannelWritabilityChanged();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    closed = true;
    if (current != null) {
      Request r = current;
      VertxRuntime.dispatch(context, v -> r.downstreamGone());
    }
    ctx.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    Fatal.check(cause); // an OutOfMemoryError in a handler of this pipeline ends the process
    ctx.close(); // a reset or I/O error on the downstream socket; the hop records the abort
  }

  // --- the hop ---

  private void begin(RequestHead head) {
    Exchange ex = Exchange.start(stages.serving().get(), remote(), peer, origin);
    Request request = new Request(ex, head);
    current = request;
    served++;
    RequestTarget target;
    try {
      target = RequestTarget.of(head);
    } catch (ProxyFailure f) {
      request.fail(f);
      return;
    }
    ex.request(head, target);
    if (ex.serving().config().clients().gateway()) {
      ex.from(credentials(head));
    }
    // Request.apply forwards the admitted hop; Request.handle ends it. A hop that needs no name
    // resolved (an IP literal, nearly every hop's pooled path then) is admitted here and now,
    // without a future per step: each is allocations and listener calls on every request.
    Route route = stages.route();
    Exchange admitted;
    try {
      admitted = route.admitNow(ex);
    } catch (ProxyFailure f) {
      request.handle(Future.failedFuture(f));
      return;
    }
    if (admitted == null) {
      route.resolve(ex).compose(request).onComplete(request);
    } else if (admitted.kind() == Kind.TUNNEL) {
      Future<Boolean> opened;
      try {
        opened = request.apply(admitted);
      } catch (RuntimeException e) {
        opened = Future.failedFuture(e); // as compose would have caught it
      }
      opened.onComplete(request);
    } else {
      request.forward(admitted);
    }
  }

  /**
   * What this request presents as its identity (gateway mode): on the proxy port the verified
   * client certificate, its {@code Proxy-Authorization} values and the client address; inside a
   * tunnel, the CONNECT's identity; on a transparent listener, the address alone.
   */
  private Credentials credentials(RequestHead head) {
    var ch = ctx.channel();
    return switch (origin) {
      case TUNNELLED -> Credentials.tunnelled(Credentials.remembered(ch),
          DownstreamPeer.sourceAddress(ch));
      case TRANSPARENT -> Credentials.addressOnly(DownstreamPeer.sourceAddress(ch));
      case PROXY -> {
        java.util.List<String> auth = new java.util.ArrayList<>(1);
        java.util.List<RequestHead.Header> headers = head.headers();
        for (int k = 0; k < headers.size(); k++) {
          RequestHead.Header h = headers.get(k);
          if (h.name().equalsIgnoreCase("proxy-authorization")) {
            auth.add(h.value());
          }
        }
        yield Credentials.request(DownstreamPeer.certificate(ch), DownstreamPeer.sourceAddress(ch),
            auth);
      }
    };
  }

  /**
   * Gives the socket to the tunnel: the HTTP handlers leave the pipeline and the bytes the
   * decoder held behind the CONNECT head go with the socket. Returns those bytes (or null).
   */
  private ByteBuf handOver() {
    current.handedOver = true;
    ByteBuf early = decoder.detach();
    var p = ctx.pipeline();
    p.remove(decoder);
    p.remove(Pipelines.ENCODER);
    p.remove(this);
    return early;
  }

  /** The decoder refused what the client sent: in a head, or in the body of the current hop. */
  private void malformed(ProxyFailure failure) {
    if (current != null && !current.bodyDone) {
      current.bodyBroken(failure);
      return;
    }
    Exchange ex = Exchange.start(stages.serving().get(), remote(), peer, origin);
    Request request = new Request(ex, null);
    current = request;
    request.fail(failure);
  }

  private String remote() {
    return remote;
  }

  /** Called by the listener when Egret starts draining. */
  @Override
  public void drain() {
    draining = true;
    if (current == null && served > 0) {
      ctx.close(); // an idle kept-alive connection: nothing is lost by closing it now
    }
  }

  @Override
  public String inFlight() {
    return current == null || current.ex.kind() == null ? null : current.ex.kind().label();
  }

  /**
   * One request on this connection, from its head to the end of its response; also what runs
   * once the route admitted it ({@link #apply}) and once it is over ({@link #handle}).
   */
  private final class Request implements Downstream,
      java.util.function.Function<Exchange, Future<Boolean>>,
      io.vertx.core.Handler<io.vertx.core.AsyncResult<Boolean>> {
    private final Exchange ex;
    private final RequestHead head;
    /** Body data that arrived before the upgrade asked for it; made only when some does. */
    private ArrayDeque<HttpContent> early;
    /** The last write of the response, once it has been made. */
    private io.netty.channel.ChannelFuture lastWrite;
    private final boolean downstreamAsksClose;
    private Consumer<ByteBuf> bodySink;
    private Runnable bodyEnd;
    private boolean bodyDone;
    private boolean headWritten;
    /** The relayed body is written as chunks (its head said {@code Transfer-Encoding: chunked}). */
    private boolean chunkedOut;
    private boolean closeAfter;
    private boolean gone;
    /** The socket now belongs to a tunnel: only the hop's record is left to write. */
    private boolean handedOver;
    private Runnable onWritable;
    private Runnable onGone;

    Request(Exchange ex, RequestHead head) {
      this.ex = ex;
      this.head = head;
      this.bodyDone = head == null || head.isConnect() || !hasBody(head);
      this.downstreamAsksClose = head != null && asksToClose(head);
    }

    /**
     * The route admitted the hop: it goes to the tunnel or upstream. The future's value is true
     * for a hop this request answers, false for a CONNECT that carried plain HTTP.
     */
    @Override
    public Future<Boolean> apply(Exchange admitted) {
      if (gone) {
        return Future.failedFuture(abortedBeforeForward());
      }
      if (admitted.kind() == Kind.TUNNEL) {
        // The tunnel, and plain HTTP inside it, are the CONNECT's client.
        Credentials.remember(ctx.channel(), admitted.identified());
        return stages.tunnel().open(admitted, ctx, DownstreamConnection.this::handOver,
            (pipeline, first) -> pipelines.plainHttpInTunnel(pipeline, context,
                head.authority(), first));
      }
      return stages.upgrade().forward(admitted, this).map(true);
    }

    /** The downstream left while the host was resolved: nothing goes upstream for nobody. */
    private ProxyFailure abortedBeforeForward() {
      return new ProxyFailure(ErrorKind.DOWNSTREAM_ABORTED,
          "the client connection closed before the request was forwarded");
    }

    /**
     * {@link #apply} then {@link #handle} for a hop admitted at once that goes upstream, without
     * the mapped future in between: the upgrade's own future ends the hop.
     */
    void forward(Exchange admitted) {
      if (gone) {
        fail(abortedBeforeForward());
        return;
      }
      Future<Void> forwarded;
      try {
        forwarded = stages.upgrade().forward(admitted, this);
      } catch (RuntimeException e) {
        forwarded = Future.failedFuture(e); // as compose would have caught it
      }
      forwarded.onComplete(new Forwarded());
    }

    /** The end of a hop {@link #forward} sent upstream: as {@link #handle} for the upgrade. */
    private final class Forwarded implements io.vertx.core.Handler<io.vertx.core.AsyncResult<Void>> {
      @Override
      public void handle(io.vertx.core.AsyncResult<Void> ar) {
        if (ar.failed()) {
          fail(FailureClassifier.classify(ar.cause(), ex.host()).failure());
        } else {
          completed(null);
        }
      }
    }

    /** The hop is over: answered, failed, or a tunnel. */
    @Override
    public void handle(io.vertx.core.AsyncResult<Boolean> ar) {
      if (ar.failed()) {
        fail(FailureClassifier.classify(ar.cause(), ex.host()).failure());
      } else if (ar.result()) {
        completed(null);
      } else {
        // The tunnel carried plain HTTP: its requests are the hops; the CONNECT is not one.
        ex.finish(null);
      }
    }

    void content(HttpContent content) {
      if (content instanceof LastHttpContent) {
        bodyDone = true;
      }
      if (bodySink != null) {
        deliver(content);
      } else if (content.content().isReadable() || content instanceof LastHttpContent) {
        if (early == null) {
          early = new ArrayDeque<>();
        }
        early.add(content);
      } else {
        content.release();
      }
    }

    private void deliver(HttpContent content) {
      ByteBuf data = content.content();
      if (data.isReadable()) {
        bodySink.accept(data);
      } else {
        data.release();
      }
      if (content instanceof LastHttpContent) {
        Runnable end = bodyEnd;
        bodyEnd = null;
        if (end != null) {
          end.run();
        }
      }
    }

    @Override
    public void body(Consumer<ByteBuf> data, Runnable end) {
      bodySink = data;
      bodyEnd = end;
      while (early != null && !early.isEmpty() && bodySink != null) {
        deliver(early.poll());
      }
    }

    @Override
    public void pauseBody() {
      if (!bodyDone) {
        ctx.channel().config().setAutoRead(false);
      }
    }

    @Override
    public void resumeBody() {
      if (!bodyDone) {
        ctx.channel().config().setAutoRead(true);
      }
    }

    @Override
    public void interim(ByteBuf head) {
      if (!headWritten && !closed) {
        wire.writeAndFlush(head);
      } else {
        head.release();
      }
    }

    @Override
    public void head(RelayedHead head) {
      wire.write(prepare(head));
    }

    @Override
    public void whole(RelayedHead head, ByteBuf data) {
      ByteBuf h = prepare(head);
      // One write and one flush for the whole response; a small body joins the head's buffer,
      // so it leaves in one TLS record or segment.
      if (chunkedOut) {
        wire.write(h);
        if (data.isReadable()) {
          writeChunk(data);
        } else {
          data.release();
        }
        lastWrite = wire.writeAndFlush(LAST_CHUNK.duplicate());
      } else if (!data.isReadable()) {
        data.release();
        lastWrite = wire.writeAndFlush(h);
      } else if (data.readableBytes() <= COPY_BODY && h.maxFastWritableBytes() >= data
          .readableBytes()) {
        h.writeBytes(data);
        data.release();
        lastWrite = wire.writeAndFlush(h);
      } else {
        wire.write(h);
        lastWrite = wire.writeAndFlush(data);
      }
    }

    /**
     * The head as this connection writes it: its status recorded, {@code Connection} and the
     * empty line added, the version HTTP/1.0 for an HTTP/1.0 client. Bypasses Netty's encoder,
     * which only Egret's own refusals use: the relayed head is bytes already.
     */
    private ByteBuf prepare(RelayedHead head) {
      headWritten = true;
      ex.status(head.status());
      chunkedOut = head.framing() == RelayedHead.Framing.CHUNKED;
      closeAfter |= draining || downstreamAsksClose
          || head.framing() == RelayedHead.Framing.UNTIL_CLOSE;
      ByteBuf b = head.lines();
      boolean http10 = http10();
      if (http10) {
        b.setByte(b.readerIndex() + 7, '0'); // "HTTP/1.1" -> "HTTP/1.0"
      }
      if (closeAfter) {
        b.writeBytes(CONNECTION_CLOSE);
      } else if (http10) {
        b.writeBytes(CONNECTION_KEEP_ALIVE);
      }
      b.writeShort(CRLF_SHORT);
      return b;
    }

    private void writeChunk(ByteBuf data) {
      ByteBuf size = ctx.alloc().buffer(10);
      io.netty.buffer.ByteBufUtil.writeAscii(size, Integer.toHexString(data.readableBytes()));
      size.writeShort(CRLF_SHORT);
      wire.write(size);
      wire.write(data);
      wire.write(CRLF.duplicate());
    }

    @Override
    public boolean headWritten() {
      return headWritten;
    }

    @Override
    public boolean closesAfter() {
      return closeAfter;
    }

    @Override
    public void data(ByteBuf data) {
      if (closed) {
        data.release();
        return;
      }
      if (chunkedOut) {
        writeChunk(data);
        wire.flush();
      } else {
        wire.writeAndFlush(data);
      }
    }

    @Override
    public void end() {
      lastWrite = wire.writeAndFlush(chunkedOut ? LAST_CHUNK.duplicate()
          : io.netty.buffer.Unpooled.EMPTY_BUFFER);
    }

    @Override
    public boolean writable() {
      return ctx.channel().isWritable();
    }

    @Override
    public void whenWritable(Runnable r) {
      if (ctx.channel().isWritable() || closed) {
        r.run();
      } else {
        onWritable = r;
      }
    }

    void roomAgain() {
      Runnable r = onWritable;
      onWritable = null;
      if (r != null) {
        r.run();
      }
    }

    @Override
    public void onDownstreamGone(Runnable r) {
      onGone = r;
    }

    @Override
    public boolean http10() {
      return head != null && head.version().equals("HTTP/1.0");
    }

    void downstreamGone() {
      gone = true;
      Runnable r = onGone;
      onGone = null;
      if (r != null) {
        r.run();
      }
      roomAgain(); // a producer waiting for room learns the client is gone
    }

    /** The body broke off or was malformed after the head was handed on. */
    void bodyBroken(ProxyFailure failure) {
      bodyDone = true;
      releaseEarly();
      bodySink = null;
      fail(failure);
      downstreamGone(); // the upstream request is reset, never ended
    }

    /** The hop ended well: its response is written. */
    void completed(ProxyFailure recorded) {
      finish(recorded);
      if (closed || handedOver) {
        return;
      }
      if (closeAfter || !bodyDone) {
        ctx.writeAndFlush(io.netty.buffer.Unpooled.EMPTY_BUFFER)
            .addListener(ChannelFutureListener.CLOSE);
      } else {
        current = null;
        activeUntil(lastWrite);
        decoder.next();
      }
    }

    private void releaseEarly() {
      if (early != null) {
        early.forEach(HttpContent::release);
        early.clear();
      }
    }

    /** Answers a refusal or failure, or resets a response that had already started. */
    void fail(ProxyFailure f) {
      if (ex.finished()) {
        return;
      }
      if (closed || gone || handedOver) {
        finish(f);
        return;
      }
      if (headWritten) {
        // Too late for a status: closing mid-body is the only honest signal in HTTP/1.1.
        finish(f);
        ctx.close();
        return;
      }
      // After a refusal the connection is kept only when the whole request has been read and
      // it was not a CONNECT (whose following bytes were meant for a tunnel), or malformed.
      boolean close = !bodyDone || head == null || head.isConnect() || draining
          || downstreamAsksClose || f.kind() == ErrorKind.REQUEST_ERROR;
      releaseEarly();
      headWritten = true;
      ex.status(f.status());
      finish(f);
      var response = FailureResponse.response(f, ex.host(), ex.decision() == null ? null
          : ex.decision().ruleName(), close);
      if (http10()) {
        response.setProtocolVersion(io.netty.handler.codec.http.HttpVersion.HTTP_1_0);
        if (!close) {
          response.headers().set(HttpHeaderNames.CONNECTION, "keep-alive");
        }
      }
      var written = ctx.writeAndFlush(response);
      if (close) {
        written.addListener(ChannelFutureListener.CLOSE);
      } else {
        current = null;
        activeUntil(written);
        decoder.next();
      }
    }

    private void finish(ProxyFailure f) {
      Hop hop = ex.finish(f);
      if (hop != null) {
        stages.telemetry().hopFinished(hop);
      }
      if (current == this && (closed || gone)) {
        current = null;
      }
    }
  }

  private static boolean hasBody(RequestHead head) {
    RequestHead.Framing f = head.framing();
    return f.type() == RequestHead.Framing.Type.CHUNKED || f.contentLength() > 0;
  }

  private static boolean asksToClose(RequestHead head) {
    boolean close = head.version().equals("HTTP/1.0");
    java.util.List<RequestHead.Header> headers = head.headers();
    for (int k = 0; k < headers.size(); k++) {
      RequestHead.Header h = headers.get(k);
      if (h.name().equalsIgnoreCase("connection")) {
        for (String token : h.value().split(",")) {
          String t = token.trim().toLowerCase(Locale.ROOT);
          if (t.equals("close")) {
            return true;
          }
          if (t.equals("keep-alive")) {
            close = false;
          }
        }
      }
    }
    return close;
  }
}
