package dev.egret.listener;

import dev.egret.failure.ProxyFailure;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
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
 * <p>Limitation: a violation in a pipelined request is answered at once, even if a response
 * to an earlier request on the connection is still being produced; that response is then lost
 * with the closed connection. Clients almost never pipeline, and nothing of the bad request is
 * forwarded either way.
 */
public final class StrictRequestGuard extends ChannelInboundHandlerAdapter {
  static final int MAX_LEADING_EMPTY_LINES = 8;

  private enum State { HEAD, BODY, TUNNEL, FAILED }

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
    try {
      read(ctx, buf);
    } catch (ProxyFailure failure) {
      fail(ctx, failure);
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
      state = State.TUNNEL;
    } else {
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

  private void fail(ChannelHandlerContext ctx, ProxyFailure failure) {
    state = State.FAILED;
    head = null;
    body = null;
    try {
      onViolation.accept(failure);
    } finally {
      ctx.writeAndFlush(renderer.apply(failure)).addListener(ChannelFutureListener.CLOSE);
    }
  }
}
