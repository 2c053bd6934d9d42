package dev.egret.listener;

import dev.egret.failure.ProxyFailure;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpStatusClass;
import io.netty.handler.codec.http.LastHttpContent;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Strict HTTP/1.1 reading in front of Vert.x's lenient decoder. Add one per proxy-port
 * connection, before Vert.x's decoder:
 *
 * <pre>{@code
 * // in HttpServer.connectionHandler, with the connection's Netty pipeline:
 * pipeline.addBefore("httpDecoder", "egret-strict",
 *     new StrictRequestGuard(parser, renderFailure, countViolation));
 * }</pre>
 *
 * <p>It sees the raw bytes, holds each request head until {@link StrictHeadParser} accepts it,
 * then passes the head and its body on byte for byte, following the body with {@link
 * BodyFraming} to find where the next pipelined head starts. After a {@code CONNECT} head it
 * passes everything through: the tunnel owns the socket. On a violation it forwards nothing
 * more, tells the violation hook, writes the rendered error response straight to the socket
 * (it sits below the HTTP encoder, so the renderer must return raw response bytes) and closes.
 *
 * <p>Leading empty lines before a request line are dropped (RFC 9112 section 2.2), at most
 * {@link #MAX_LEADING_EMPTY_LINES}.
 *
 * <p>A pipelined request is judged on its own: when a head is refused while responses to
 * earlier requests on the connection are still being produced, the refusal waits for them, so
 * the earlier requests are answered first. That needs the guard to see responses end: install
 * {@link #responseWatcher()} after Vert.x's encoder as well. Without it (or when the violation
 * is in the body of a request being served) the refusal is written at once, and a response
 * still in progress is lost with the closed connection. Either way nothing of the bad request
 * is forwarded.
 */
public final class StrictRequestGuard extends ChannelInboundHandlerAdapter {
  static final int MAX_LEADING_EMPTY_LINES = 8;

  private enum State { HEAD, BODY, CONNECT_PENDING, TUNNEL, FAILED }

  /** Bytes a client may send behind a CONNECT before its answer; more is not a client we serve. */
  static final int MAX_HELD_BEHIND_CONNECT = 64 * 1024;

  private final StrictHeadParser parser;
  private final Function<ProxyFailure, ByteBuf> renderer;
  private final Consumer<ProxyFailure> onViolation;
  private final int maxHeadBytes;

  // All fields below are touched only from the channel's event loop: the handler is not
  // @Sharable, and Netty calls a handler's inbound methods from its channel's loop.
  private State state = State.HEAD;
  private byte[] head = new byte[256];
  private int headLen;
  /** Where the current head starts in the buffer being read, or -1 if it began in an earlier one. */
  private int headStartInBuffer = -1;
  /** Index in {@code head} just past the request line's LF; -1 while still in it. */
  private int requestLineEnd = -1;
  private int lineStart;
  private int leadingEmptyLines;
  private boolean leadingCr;
  private BodyFraming body;
  /** Requests passed on whose responses have not ended; counted only with a watcher. */
  private int unanswered;
  private boolean watched;
  /** A refused head waiting for {@link #unanswered} to reach zero; its context to write on. */
  private ProxyFailure deferred;
  private ChannelHandlerContext deferredCtx;
  /** A response head has gone out and its body not yet ended; known only with a watcher. */
  private boolean responseStarted;
  /** Bytes read behind a CONNECT head while its answer is pending, and where to pass them. */
  private io.netty.buffer.CompositeByteBuf heldBehindConnect;
  private ChannelHandlerContext inbound;

  /**
   * @param parser the head rules and limits
   * @param renderer turns a refusal into the complete raw HTTP response bytes to write
   * @param onViolation told of every refusal before the response is written (count, log)
   */
  public StrictRequestGuard(StrictHeadParser parser, Function<ProxyFailure, ByteBuf> renderer,
      Consumer<ProxyFailure> onViolation) {
    this.parser = Objects.requireNonNull(parser, "parser");
    this.renderer = Objects.requireNonNull(renderer, "renderer");
    this.onViolation = Objects.requireNonNull(onViolation, "onViolation");
    // What checkLimits lets through: request line and CRLF, header lines, the final CRLF.
    this.maxHeadBytes = parser.maxRequestLineBytes() + 2 + parser.maxHeaderBytes() + 2;
  }

  /**
   * An outbound handler that tells this guard when a response ends, so a refusal in a pipelined
   * request can wait for the earlier ones. Add it after Vert.x's {@code httpEncoder}, where
   * responses are still Netty {@code HttpObject}s.
   */
  public ChannelOutboundHandlerAdapter responseWatcher() {
    watched = true;
    return new ChannelOutboundHandlerAdapter() {
      @Override
      public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
        // 1xx responses (100 Continue, 103) are interim: the final response is still to come.
        boolean interim = msg instanceof HttpResponse r
            && r.status().codeClass() == HttpStatusClass.INFORMATIONAL;
        boolean ends = msg instanceof LastHttpContent && !interim;
        if (msg instanceof HttpResponse r && !interim) {
          responseStarted = true;
          if (state == State.CONNECT_PENDING) {
            connectAnswered(r.status().codeClass() == HttpStatusClass.SUCCESS);
          }
        }
        ctx.write(msg, promise);
        if (ends) {
          // After ctx.write, so the response's last bytes are queued before a deferred refusal.
          responseEnded();
        }
      }
    };
  }

  /**
   * The CONNECT was answered. Accepted: the connection becomes a tunnel and the bytes held
   * behind the head are passed on, after Vert.x has swapped its HTTP decoder for the socket
   * (it does so right after writing the 200, in the same turn; hence the queued task). Refused:
   * the held bytes are dropped, and Front closes the connection after the refusal, so no request
   * behind a CONNECT ever reaches the decoder without this guard's checks.
   */
  private void connectAnswered(boolean accepted) {
    io.netty.buffer.CompositeByteBuf held = heldBehindConnect;
    heldBehindConnect = null;
    if (accepted) {
      state = State.TUNNEL;
      if (held != null && inbound != null) {
        ChannelHandlerContext ctx = inbound;
        ctx.executor().execute(() -> ctx.fireChannelRead(held));
      } else if (held != null) {
        held.release();
      }
    } else {
      state = State.FAILED;
      if (held != null) {
        held.release();
      }
    }
  }

  private void responseEnded() {
    responseStarted = false;
    if (unanswered > 0) {
      unanswered--;
    }
    if (unanswered == 0 && deferred != null) {
      ProxyFailure failure = deferred;
      deferred = null;
      respondAndClose(deferredCtx, failure);
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    releaseHeld();
    ctx.fireChannelInactive();
  }

  private void releaseHeld() {
    if (heldBehindConnect != null) {
      heldBehindConnect.release();
      heldBehindConnect = null;
    }
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof ByteBuf buf)) {
      ctx.fireChannelRead(msg);
      return;
    }
    if (state == State.TUNNEL) {
      ctx.fireChannelRead(buf);
      return;
    }
    inbound = ctx;
    try {
      read(ctx, buf);
    } catch (ProxyFailure failure) {
      fail(ctx, failure, state == State.HEAD);
    } finally {
      buf.release();
    }
  }

  private void read(ChannelHandlerContext ctx, ByteBuf buf) {
    int i = buf.readerIndex();
    int end = buf.writerIndex();
    headStartInBuffer = -1;
    while (i < end) {
      switch (state) {
        case HEAD -> i = readHead(ctx, buf, i, end);
        case BODY -> {
          int n = body.consume(buf, i, end);
          if (n > 0) {
            ctx.fireChannelRead(buf.retainedSlice(i, n));
          }
          i += n;
          if (body.done()) {
            body = null;
            state = State.HEAD;
          }
        }
        case TUNNEL -> {
          ctx.fireChannelRead(buf.retainedSlice(i, end - i));
          i = end;
        }
        case CONNECT_PENDING -> {
          if (heldBehindConnect == null) {
            heldBehindConnect = ctx.alloc().compositeBuffer();
          }
          if (heldBehindConnect.readableBytes() + (end - i) > MAX_HELD_BEHIND_CONNECT) {
            throw Refusals.badRequest("more than " + MAX_HELD_BEHIND_CONNECT
                + " bytes sent behind a CONNECT before its answer");
          }
          heldBehindConnect.addComponent(true, buf.retainedSlice(i, end - i));
          i = end;
        }
        case FAILED -> i = end;
        default -> throw new IllegalStateException(state.name());
      }
    }
  }

  /** Accumulates head bytes from {@code i}; returns the index after the last byte it took. */
  private int readHead(ChannelHandlerContext ctx, ByteBuf buf, int i, int end) {
    for (; i < end; i++) {
      byte b = buf.getByte(i);
      if (headLen == 0 && skipLeading(b)) {
        continue;
      }
      if (headLen == 0) {
        headStartInBuffer = i;
      }
      checkLimits(headLen + 1);
      append(b);
      if (b == FieldLines.LF) {
        boolean empty = headLen - lineStart == 1
            || (headLen - lineStart == 2 && head[lineStart] == FieldLines.CR);
        if (requestLineEnd < 0) {
          requestLineEnd = headLen;
          parser.checkRequestLine(head, headLen);
        } else if (empty) {
          completeHead(ctx, buf, i + 1);
          return i + 1;
        }
        lineStart = headLen;
      }
    }
    return i;
  }

  /**
   * Refuses a head before it can outgrow the parser's limits, so a client that never sends the
   * empty line cannot make the guard buffer more. The bounds count the request line's CRLF and
   * the final empty line, so no head the parser would accept is refused here; the parser then
   * applies the exact limits.
   */
  private void checkLimits(int length) {
    if (requestLineEnd < 0) {
      if (length > parser.maxRequestLineBytes() + 2) {
        throw Refusals.uriTooLong(
            "request line is longer than " + parser.maxRequestLineBytes() + " bytes");
      }
    } else if (length - requestLineEnd > parser.maxHeaderBytes() + 2) {
      throw Refusals.headersTooLarge(
          "request headers are larger than " + parser.maxHeaderBytes() + " bytes");
    }
  }

  /** True when {@code b} was part of an empty line before the request line, and is dropped. */
  private boolean skipLeading(byte b) {
    if (leadingCr) {
      if (b != FieldLines.LF) {
        throw Refusals.badRequest("bare CR before the request line");
      }
      leadingCr = false;
      if (++leadingEmptyLines > MAX_LEADING_EMPTY_LINES) {
        throw Refusals.badRequest("too many empty lines before the request line");
      }
      return true;
    }
    if (b == FieldLines.CR) {
      leadingCr = true;
      return true;
    }
    if (b == FieldLines.LF) {
      throw Refusals.badRequest("bare LF before the request line");
    }
    return false;
  }

  private void append(byte b) {
    if (headLen == head.length) {
      // checkLimits stops growth before maxHeadBytes is passed.
      head = Arrays.copyOf(head, Math.min(head.length * 2, maxHeadBytes));
    }
    head[headLen++] = b;
  }

  private void completeHead(ChannelHandlerContext ctx, ByteBuf buf, int endOfHead) {
    RequestHead parsed = parser.parse(head, headLen);
    ByteBuf bytes = headStartInBuffer >= 0
        ? buf.retainedSlice(headStartInBuffer, endOfHead - headStartInBuffer)
        : ctx.alloc().buffer(headLen).writeBytes(head, 0, headLen);
    resetHead();
    if (parsed.isConnect()) {
      // With a watcher, what follows waits for the CONNECT's answer: only an accepted CONNECT
      // turns the rest of the connection into opaque tunnel bytes.
      state = watched ? State.CONNECT_PENDING : State.TUNNEL;
    } else {
      unanswered++;
      body = BodyFraming.of(parsed.framing());
      state = body.done() ? State.HEAD : State.BODY;
      if (body.done()) {
        body = null;
      }
    }
    ctx.fireChannelRead(bytes);
  }

  private void resetHead() {
    if (head.length > 4096) {
      head = new byte[256]; // a large head should not pin memory for the connection's life
    }
    headLen = 0;
    headStartInBuffer = -1;
    requestLineEnd = -1;
    lineStart = 0;
    leadingEmptyLines = 0;
  }

  /**
   * Stops reading requests and answers the refusal: at once, or, for a refused head behind
   * requests still being answered, once their responses have ended.
   */
  private void fail(ChannelHandlerContext ctx, ProxyFailure failure, boolean inHead) {
    state = State.FAILED;
    head = null;
    body = null;
    releaseHeld();
    if (!inHead) {
      // A broken body belongs to a request already handed on: its own hop records the failure
      // (the upstream request is reset, never ended). Answer 400 only while that request's
      // response has not started; raw bytes in the middle of a response would corrupt it.
      if (watched && responseStarted) {
        ctx.close();
      } else {
        respondAndClose(ctx, failure);
      }
      return;
    }
    boolean wait = watched && unanswered > 0;
    try {
      onViolation.accept(failure);
    } finally {
      if (wait) {
        deferred = failure;
        deferredCtx = ctx;
      } else {
        respondAndClose(ctx, failure);
      }
    }
  }

  private void respondAndClose(ChannelHandlerContext ctx, ProxyFailure failure) {
    ctx.writeAndFlush(renderer.apply(failure)).addListener(ChannelFutureListener.CLOSE);
  }
}
