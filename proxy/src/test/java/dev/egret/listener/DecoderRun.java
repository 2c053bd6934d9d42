package dev.egret.listener;

import dev.egret.exchange.RequestHead;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.failure.ProxyFailure;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.LastHttpContent;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/**
 * One run of the strict decoder over a byte stream in an {@link EmbeddedChannel}, recorded as
 * what the connection handler saw: the heads, each one's body data (framing removed), whether it
 * ended, the refusal if any, and the bytes a tunnel would take after a CONNECT. The stream is
 * written in the pieces given, each from a buffer of the channel's allocator (so Netty's leak
 * detector tracks it), and every one of them must be released when the channel closes.
 */
final class DecoderRun {
  /** A request as the handler saw it. */
  static final class Request {
    final RequestHead head;
    final ByteArrayOutputStream body = new ByteArrayOutputStream();
    boolean ended;

    Request(RequestHead head) {
      this.head = head;
    }

    @Override
    public String toString() {
      return head + " body=" + HexFormat.of().formatHex(body.toByteArray()) + " ended=" + ended;
    }
  }

  final List<Request> requests = new ArrayList<>();
  ProxyFailure failure;
  /** The index of the request the refusal came in: {@code requests.size()} for a head. */
  int failedAt = -1;
  /** What {@link StrictRequestDecoder#detach()} handed over after a CONNECT head, or null. */
  byte[] afterConnect;

  private DecoderRun() {}

  /**
   * Writes {@code input} in pieces of {@code pieces} bytes (cycled; all of it at once when
   * empty). The handler asks for the next request as soon as one has been read: at once from
   * inside the read when {@code nextAtOnce} (the path of a handler that answers a refusal
   * immediately), else from a task on the event loop. After a CONNECT head it detaches the
   * decoder, as the tunnel does.
   */
  static DecoderRun of(StrictHeadParser parser, StrictHeadParser.TargetForm form, byte[] input,
      int[] pieces, boolean nextAtOnce) {
    DecoderRun run = new DecoderRun();
    StrictRequestDecoder decoder = new StrictRequestDecoder(parser, form, Duration.ofMinutes(5));
    EmbeddedChannel channel = new EmbeddedChannel(decoder, run.new Handler(decoder, nextAtOnce));
    List<ByteBuf> written = new ArrayList<>();
    try {
      int at = 0;
      for (int p = 0; at < input.length; p++) {
        int n = pieces.length == 0 ? input.length - at
            : Math.min(input.length - at, Math.max(1, pieces[p % pieces.length]));
        ByteBuf buf = channel.alloc().buffer(n).writeBytes(input, at, n);
        written.add(buf);
        at += n;
        channel.writeInbound(buf);
        channel.runPendingTasks();
        channel.checkException();
        if (run.failure != null) {
          assertThat(channel.config().isAutoRead()).as("reads nothing after a refusal").isFalse();
        }
      }
      if (run.afterConnect == null && !run.requests.isEmpty()
          && run.requests.get(run.requests.size() - 1).head.isConnect() && run.failure == null) {
        ByteBuf rest = decoder.detach();
        run.afterConnect = rest == null ? new byte[0] : bytes(rest);
        if (rest != null) {
          rest.release();
        }
      }
    } finally {
      channel.finishAndReleaseAll();
    }
    for (ByteBuf buf : written) {
      assertThat(buf.refCnt()).as("input buffer released once its bytes were read").isZero();
    }
    return run;
  }

  /** Everything the handler saw, for comparing two runs over the same bytes. */
  String transcript() {
    return requests + " failure=" + (failure == null ? null
        : failure.status() + " " + failure.details() + " @" + failedAt)
        + " afterConnect=" + (afterConnect == null ? null : HexFormat.of().formatHex(afterConnect));
  }

  private static byte[] bytes(ByteBuf buf) {
    byte[] b = new byte[buf.readableBytes()];
    buf.getBytes(buf.readerIndex(), b);
    return b;
  }

  /** Plays the connection handler. */
  private final class Handler extends ChannelInboundHandlerAdapter {
    private final StrictRequestDecoder decoder;
    private final boolean nextAtOnce;

    Handler(StrictRequestDecoder decoder, boolean nextAtOnce) {
      this.decoder = decoder;
      this.nextAtOnce = nextAtOnce;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      assertThat(failure).as("nothing after a refusal: %s", msg).isNull();
      if (msg instanceof RequestHead head) {
        assertThat(requests.isEmpty() || requests.get(requests.size() - 1).ended)
            .as("a head only after the previous request ended").isTrue();
        requests.add(new Request(head));
      } else if (msg instanceof HttpContent content) {
        try {
          assertThat(requests).as("body data without a head").isNotEmpty();
          Request current = requests.get(requests.size() - 1);
          assertThat(current.ended).as("body data after the request ended").isFalse();
          ByteBuf data = content.content();
          current.body.writeBytes(bytes(data));
          if (msg instanceof LastHttpContent) {
            assertThat(data.readableBytes()).isZero();
            current.ended = true;
            if (nextAtOnce) {
              decoder.next();
            } else {
              ctx.executor().execute(decoder::next);
            }
          }
        } finally {
          content.release();
        }
      } else if (msg instanceof ProxyFailure f) {
        failure = f;
        failedAt = requests.isEmpty() || requests.get(requests.size() - 1).ended
            ? requests.size() : requests.size() - 1;
      } else {
        throw new AssertionError("unexpected message " + msg);
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.fireExceptionCaught(cause); // EmbeddedChannel keeps it for checkException
    }
  }

  /** Piece sizes from 1 to 16, drawn from the input itself, so a run is reproducible. */
  static int[] piecesOf(byte[] input) {
    long x = Arrays.hashCode(input) * 0x9E3779B97F4A7C15L | 1;
    int[] pieces = new int[32];
    for (int i = 0; i < pieces.length; i++) {
      x ^= x << 13;
      x ^= x >>> 7;
      x ^= x << 17;
      pieces[i] = 1 + (int) ((x >>> 33) % 16);
    }
    return pieces;
  }
}
