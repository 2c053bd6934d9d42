package dev.egret.listener;

import dev.egret.exchange.RequestHead;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.LastHttpContent;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * The one HTTP/1.1 request parser of a downstream connection. It reads the raw bytes strictly
 * ({@link StrictHeadParser} for the head, {@link BodyFraming} for the body) and passes on, in
 * order: one {@link RequestHead}, the body's data as {@link io.netty.handler.codec.http.HttpContent}
 * (framing removed), then {@link LastHttpContent#EMPTY_LAST_CONTENT}. A refusal is passed on as
 * a {@link ProxyFailure} message instead, after which the decoder reads nothing more.
 *
 * <p>One request at a time: once a request has been read whole (or a {@code CONNECT} head), the
 * decoder stops reading the socket and holds whatever bytes follow until {@link #next()} says
 * the response has ended, or {@link #detach()} takes them for a tunnel. So a pipelined request
 * is judged only after the earlier ones are answered, and bytes behind a {@code CONNECT} never
 * reach a parser unless the tunnel opens.
 *
 * <p>A head that is not complete within {@code headTimeout} (counted from the connection's
 * start for the first request, and from the first byte of each later one) is refused with 408.
 *
 * <p>Leading empty lines before a request line are dropped (RFC 9112 section 2.2), at most
 * {@link #MAX_LEADING_EMPTY_LINES}. Not sharable; every method runs on the channel's event loop.
 */
public final class StrictRequestDecoder extends ChannelInboundHandlerAdapter {
  static final int MAX_LEADING_EMPTY_LINES = 8;
  /**
   * Bytes held while the decoder waits: reading stops at once, so this bounds only what one
   * read burst already brought (pipelined requests, bytes behind a CONNECT).
   */
  static final int MAX_HELD_BYTES = 1024 * 1024;

  private enum State { HEAD, BODY, WAITING, DONE }

  private final StrictHeadParser parser;
  private final StrictHeadParser.TargetForm form;
  private final long headTimeoutNanos;
  private final int maxHeadBytes;

  private State state = State.HEAD;
  private byte[] head = new byte[256];
  private int headLen;
  /** Index in {@code head} just past the request line's LF; -1 while still in it. */
  private int requestLineEnd = -1;
  /** The request line as checked when it arrived; the head's parse takes it as it is. */
  private StrictHeadParser.Line requestLine;
  private int lineStart;
  private int leadingEmptyLines;
  private boolean leadingCr;
  private BodyFraming body;
  /** Bytes that arrived while waiting; read on {@link #next()} or handed to a tunnel. */
  private CompositeByteBuf held;
  private ChannelHandlerContext ctx;
  /**
   * The head timer's task while one is scheduled. It is not cancelled when a head completes:
   * {@link #headDeadline} says whether a head is being timed and until when, and the task, when
   * it runs, refuses a late head or schedules itself for the deadline in force. So a kept-alive
   * connection schedules one task per {@code headTimeout}, not one (and a cancel) per request.
   */
  private ScheduledFuture<?> headTimer;
  /** When the head being read must be complete ({@link System#nanoTime()}); 0 when none is. */
  private long headDeadline;
  /** True while bytes are being read, so a {@link #next()} from a handler waits its turn. */
  private boolean reading;
  private boolean nextRequested;
  /** Passes body data on; bound once, since a lambda capture per read is a call into the VM. */
  private final BodyFraming.DataSink bodySink = new BodyFraming.DataSink() {
    @Override
    public void data(ByteBuf b, int index, int length) {
      ctx.fireChannelRead(new DefaultHttpContent(b.retainedSlice(index, length)));
    }
  };

  /**
   * @param parser the head rules and limits
   * @param form how request-targets are read (proxy port, inside a tunnel, transparent)
   * @param headTimeout {@code timeouts.requestHead}
   */
  public StrictRequestDecoder(StrictHeadParser parser, StrictHeadParser.TargetForm form,
      Duration headTimeout) {
    this.parser = Objects.requireNonNull(parser, "parser");
    this.form = Objects.requireNonNull(form, "form");
    this.headTimeoutNanos = headTimeout.toNanos();
    // What checkLimits lets through: request line and CRLF, header lines, the final CRLF.
    this.maxHeadBytes = parser.maxRequestLineBytes() + 2 + parser.maxHeaderBytes() + 2;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    this.ctx = ctx;
    startHeadTimer();
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    stopHeadTimer();
    releaseHeld();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    stopHeadTimer();
    releaseHeld();
    state = State.DONE;
    ctx.fireChannelInactive();
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof ByteBuf buf)) {
      ctx.fireChannelRead(msg);
      return;
    }
    try {
      if (state == State.WAITING) {
        hold(buf, buf.readerIndex(), buf.writerIndex());
      } else if (state != State.DONE) {
        read(buf);
      }
    } finally {
      buf.release();
    }
    resumeIfAsked();
  }

  /**
   * The response to the request read last has ended: read the next request, from the bytes
   * held meanwhile and then from the socket.
   */
  public void next() {
    if (state != State.WAITING) {
      return;
    }
    if (reading) {
      nextRequested = true;
      return;
    }
    state = State.HEAD;
    ctx.channel().config().setAutoRead(true);
    CompositeByteBuf pending = held;
    held = null;
    if (pending != null) {
      try {
        read(pending);
      } finally {
        pending.release();
      }
      resumeIfAsked();
    }
    if (state == State.HEAD && headLen > 0) {
      startHeadTimer(); // the held bytes began a head; its time runs from now
    }
  }

  /**
   * Stops decoding for good and hands over the bytes that followed the last head (those behind a
   * CONNECT), or null; the caller owns them and removes this decoder from the pipeline.
   */
  public ByteBuf detach() {
    state = State.DONE;
    stopHeadTimer();
    ByteBuf rest = held;
    held = null;
    return rest;
  }

  private void resumeIfAsked() {
    if (nextRequested && !reading) {
      nextRequested = false;
      next();
    }
  }

  private void read(ByteBuf buf) {
    reading = true;
    try {
      int i = buf.readerIndex();
      int end = buf.writerIndex();
      while (i < end && state != State.DONE) {
        switch (state) {
          case HEAD -> i = readHead(buf, i, end);
          case BODY -> {
            i += body.consume(buf, i, end, bodySink);
            if (body.done()) {
              body = null;
              endOfRequest();
            }
          }
          case WAITING -> {
            hold(buf, i, end);
            i = end;
          }
          default -> throw new IllegalStateException(state.name());
        }
      }
    } catch (ProxyFailure failure) {
      fail(failure);
    } finally {
      reading = false;
    }
  }

  /**
   * Accumulates head bytes from {@code i}; returns the index after the last byte it took. A line
   * at a time: the buffer is searched for the next LF and the run up to it copied whole, rather
   * than read, checked and stored one byte per call. The limits hold as for single bytes: a run
   * that would pass one is refused before it is copied, and a line is judged when its LF is in.
   */
  private int readHead(ByteBuf buf, int i, int end) {
    while (i < end) {
      if (headLen == 0) {
        // Until the request line's first byte, each byte may be an empty line's, and is dropped.
        if (skipLeading(buf.getByte(i))) {
          i++;
          continue;
        }
        if (headDeadline == 0) {
          startHeadTimer();
        }
      }
      int lf = buf.indexOf(i, end, FieldLines.LF);
      int stop = lf < 0 ? end : lf + 1;
      checkLimits(headLen + (stop - i));
      append(buf, i, stop - i);
      i = stop;
      if (lf < 0) {
        return i;
      }
      boolean empty = headLen - lineStart == 1
          || (headLen - lineStart == 2 && head[lineStart] == FieldLines.CR);
      if (requestLineEnd < 0) {
        requestLineEnd = headLen;
        requestLine = parser.checkRequestLine(head, headLen, form);
      } else if (empty) {
        completeHead();
        return i;
      }
      lineStart = headLen;
    }
    return i;
  }

  private void completeHead() {
    RequestHead parsed = parser.parse(head, headLen, form, requestLine);
    resetHead();
    cancelHeadTimer();
    if (parsed.isConnect()) {
      // What follows is the tunnel's, or nobody's: it waits for the CONNECT's answer, and no
      // byte more is read from the socket until the tunnel (or the next request) takes over.
      waitForResponse();
      ctx.channel().config().setAutoRead(false);
      ctx.fireChannelRead(parsed);
      return;
    }
    body = BodyFraming.of(parsed.framing());
    if (body.done()) {
      body = null;
      // Waiting already, so a handler that answers at once (a refusal) can ask for the next.
      waitForResponse();
      ctx.fireChannelRead(parsed);
      ctx.fireChannelRead(LastHttpContent.EMPTY_LAST_CONTENT);
    } else {
      state = State.BODY;
      ctx.fireChannelRead(parsed);
    }
  }

  private void endOfRequest() {
    waitForResponse();
    ctx.fireChannelRead(LastHttpContent.EMPTY_LAST_CONTENT);
  }

  /**
   * Reading stops only once a byte of the next request arrives while this one is answered
   * ({@link #hold}): a client that waits for each answer (nearly all do) sends nothing meanwhile,
   * and turning reads off and on again for each request would cost two {@code epoll_ctl} calls.
   * What is held stays bounded by the read that brought it, as when reading stopped at once.
   */
  private void waitForResponse() {
    state = State.WAITING;
  }

  private void hold(ByteBuf buf, int from, int to) {
    if (from >= to) {
      return;
    }
    ctx.channel().config().setAutoRead(false);
    if (held == null) {
      held = ctx.alloc().compositeBuffer();
    }
    if (held.readableBytes() + (to - from) > MAX_HELD_BYTES) {
      fail(Refusals.badRequest("more than " + MAX_HELD_BYTES
          + " bytes sent ahead of the answer to the previous request"));
      return;
    }
    held.addComponent(true, buf.retainedSlice(from, to - from));
  }

  /**
   * Refuses a head before it can outgrow the parser's limits, so a client that never sends the
   * empty line cannot make the decoder buffer more. The bounds count the request line's CRLF
   * and the final empty line, so no head the parser would accept is refused here; the parser
   * then applies the exact limits.
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

  private void append(ByteBuf buf, int from, int length) {
    int needed = headLen + length;
    if (needed > head.length) {
      // checkLimits stops growth before maxHeadBytes is passed.
      head = Arrays.copyOf(head, Math.max(needed, Math.min(head.length * 2, maxHeadBytes)));
    }
    buf.getBytes(from, head, headLen, length);
    headLen = needed;
  }

  private void resetHead() {
    if (head.length > 4096) {
      head = new byte[256]; // a large head should not pin memory for the connection's life
    }
    headLen = 0;
    requestLineEnd = -1;
    requestLine = null;
    lineStart = 0;
    leadingEmptyLines = 0;
  }

  private void startHeadTimer() {
    if (state == State.DONE) {
      return;
    }
    // Never 0, which means "no head is timed".
    headDeadline = (System.nanoTime() + headTimeoutNanos) | 1;
    if (headTimer == null) {
      scheduleHeadTimer(headTimeoutNanos);
    }
  }

  private void scheduleHeadTimer(long delayNanos) {
    headTimer = ctx.executor().schedule(this::headTimerRan, delayNanos, TimeUnit.NANOSECONDS);
  }

  private void headTimerRan() {
    headTimer = null;
    if (state == State.DONE || headDeadline == 0) {
      return; // no head is timed now; the next one schedules the task again
    }
    long left = headDeadline - System.nanoTime();
    if (left > 0) {
      scheduleHeadTimer(left); // the head timed now began after this task was scheduled
    } else if (state == State.HEAD) {
      fail(new ProxyFailure(ErrorKind.REQUEST_ERROR, 408, "the request head was not complete "
          + "within " + TimeUnit.NANOSECONDS.toMillis(headTimeoutNanos)
          + " ms (timeouts.requestHead)", null));
    }
  }

  /** The head is complete (or the decoder stops): its time no longer runs. */
  private void cancelHeadTimer() {
    headDeadline = 0;
  }

  /** For good: the task goes too, so that it does not hold the connection until it runs. */
  private void stopHeadTimer() {
    headDeadline = 0;
    if (headTimer != null) {
      headTimer.cancel(false);
      headTimer = null;
    }
  }

  /** Reads nothing more and passes the refusal on; the connection handler answers it. */
  private void fail(ProxyFailure failure) {
    if (state == State.DONE) {
      return;
    }
    state = State.DONE;
    head = null;
    body = null;
    stopHeadTimer();
    releaseHeld();
    ctx.channel().config().setAutoRead(false);
    ctx.fireChannelRead(failure);
  }

  private void releaseHeld() {
    if (held != null) {
      held.release();
      held = null;
    }
  }
}
