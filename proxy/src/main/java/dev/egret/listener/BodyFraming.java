package dev.egret.listener;

import dev.egret.exchange.RequestHead;
import io.netty.buffer.ByteBuf;
import java.util.Arrays;
import java.util.Locale;

/**
 * Follows one request body through the bytes of a connection, so {@link StrictRequestGuard}
 * knows where the next pipelined head starts. Use {@link #of} with the head's framing, call
 * {@link #consume} with each buffer and forward the bytes it claims; once {@link #done()} the
 * rest of the buffer belongs to the next request.
 *
 * <p>Chunked coding is checked strictly (RFC 9112 section 7.1): chunk-size is 1*HEXDIG and
 * nothing else, extensions are {@code ;name[=token-or-quoted-string]} with no white space, every
 * line ends in CRLF, chunk data is followed by CRLF, and trailer lines are checked like header
 * lines (framing and Host fields are refused there). Body data is never buffered: only the
 * current size or trailer line, bounded by {@link #MAX_LINE_BYTES}. Not thread-safe; one per
 * message.
 */
final class BodyFraming {
  static final int MAX_LINE_BYTES = 4096;
  static final int MAX_TRAILER_BYTES = 16384;
  static final int MAX_TRAILER_COUNT = 100;
  /**
   * The largest chunk-size: 2^31-1, what a next hop that keeps the size in an int can hold. A
   * larger one is refused, because such a hop reads it otherwise: Netty 4.2.9's HttpObjectDecoder
   * refuses 80000000 but wraps 100000000 to 0, the last chunk, and reads the chunk's data as the
   * next request.
   */
  static final long MAX_CHUNK_SIZE = Integer.MAX_VALUE;

  private enum State { LENGTH, SIZE_LINE, DATA, DATA_CR, DATA_LF, TRAILER_LINE, DONE }

  private State state;
  /** Bytes left of a Content-Length body or of the current chunk's data. */
  private long remaining;
  /** The size or trailer line read so far, CR included, LF not. */
  private byte[] line;
  private int lineLen;
  private int trailerBytes;
  private int trailerCount;

  private BodyFraming(State state, long remaining) {
    this.state = state;
    this.remaining = remaining;
  }

  static BodyFraming of(RequestHead.Framing framing) {
    return switch (framing.type()) {
      case NONE -> new BodyFraming(State.DONE, 0);
      case CONTENT_LENGTH ->
          new BodyFraming(framing.contentLength() == 0 ? State.DONE : State.LENGTH,
              framing.contentLength());
      case CHUNKED -> new BodyFraming(State.SIZE_LINE, 0);
    };
  }

  boolean done() {
    return state == State.DONE;
  }

  /**
   * Reads {@code buf[from, to)} (absolute indexes; reader index untouched) and returns how many
   * of those bytes, from {@code from}, belong to this body.
   *
   * @throws dev.egret.failure.ProxyFailure 400 when the chunked coding is malformed
   */
  int consume(ByteBuf buf, int from, int to) {
    return consume(buf, from, to, (b, index, length) -> { });
  }

  /** Where the body's data bytes go: chunk data, or the Content-Length body, never framing. */
  @FunctionalInterface
  interface DataSink {
    void data(ByteBuf buf, int index, int length);
  }

  /**
   * As {@link #consume(ByteBuf, int, int)}, and hands each run of body data (framing removed)
   * to {@code sink} as it is read; the sink must retain what it keeps.
   */
  int consume(ByteBuf buf, int from, int to, DataSink sink) {
    int i = from;
    while (i < to && state != State.DONE) {
      switch (state) {
        case LENGTH, DATA -> {
          int n = (int) Math.min(remaining, to - i);
          if (n > 0) {
            sink.data(buf, i, n);
          }
          remaining -= n;
          i += n;
          if (remaining == 0) {
            state = state == State.LENGTH ? State.DONE : State.DATA_CR;
          }
        }
        case DATA_CR -> {
          expect(buf.getByte(i++), FieldLines.CR);
          state = State.DATA_LF;
        }
        case DATA_LF -> {
          expect(buf.getByte(i++), FieldLines.LF);
          state = State.SIZE_LINE;
        }
        case SIZE_LINE, TRAILER_LINE -> {
          byte b = buf.getByte(i++);
          if (appendLineByte(b)) {
            if (state == State.SIZE_LINE) {
              sizeLine();
            } else {
              trailerLine();
            }
            lineLen = 0;
          }
        }
        default -> throw new IllegalStateException(state.name());
      }
    }
    return i - from;
  }

  private static void expect(byte actual, byte wanted) {
    if (actual != wanted) {
      throw Refusals.badRequest("chunk data is not followed by CRLF");
    }
  }

  /** Adds one byte to the current line; true when it was the LF that ends it. */
  private boolean appendLineByte(byte b) {
    boolean afterCr = lineLen > 0 && line[lineLen - 1] == FieldLines.CR;
    if (b == FieldLines.LF) {
      if (!afterCr) {
        throw Refusals.badRequest("bare LF in the chunked body");
      }
      lineLen--; // drop the CR: the line is complete
      return true;
    }
    if (afterCr) {
      throw Refusals.badRequest("bare CR in the chunked body");
    }
    if (line == null) {
      line = new byte[64];
    }
    if (lineLen == MAX_LINE_BYTES) {
      throw Refusals.badRequest(state == State.SIZE_LINE
          ? "chunk size line is longer than " + MAX_LINE_BYTES + " bytes"
          : "chunked trailer line is longer than " + MAX_LINE_BYTES + " bytes");
    }
    if (lineLen == line.length) {
      line = Arrays.copyOf(line, Math.min(line.length * 2, MAX_LINE_BYTES));
    }
    line[lineLen++] = b;
    return false;
  }

  private void sizeLine() {
    long size = 0;
    int i = 0;
    while (i < lineLen && hexValue(line[i]) >= 0) {
      size = (size << 4) | hexValue(line[i]);
      if (size > MAX_CHUNK_SIZE) {
        throw Refusals.badRequest("chunk size overflows " + MAX_CHUNK_SIZE
            + " bytes; send a larger body as more chunks");
      }
      i++;
    }
    if (i == 0) {
      throw Refusals.badRequest("chunk size is not a hexadecimal number");
    }
    if (i < lineLen) {
      chunkExtensions(i);
    }
    if (size == 0) {
      state = State.TRAILER_LINE;
    } else {
      remaining = size;
      state = State.DATA;
    }
  }

  /** {@code *( ";" token [ "=" ( token / quoted-string ) ] )} with nothing in between. */
  private void chunkExtensions(int from) {
    int i = from;
    while (i < lineLen) {
      if (line[i] != ';') {
        throw Refusals.badRequest("malformed chunk size line: unexpected character after the size");
      }
      i = token(i + 1);
      if (i < lineLen && line[i] == '=') {
        i++;
        i = i < lineLen && line[i] == '"' ? quotedString(i) : token(i);
      }
    }
  }

  private int token(int from) {
    int i = from;
    while (i < lineLen && FieldLines.isTokenChar(line[i] & 0xff)) {
      i++;
    }
    if (i == from) {
      throw Refusals.badRequest("malformed chunk extension");
    }
    return i;
  }

  private int quotedString(int open) {
    int i = open + 1;
    while (i < lineLen) {
      int b = line[i] & 0xff;
      if (b == '"') {
        return i + 1;
      }
      if (b == '\\') {
        i++;
        if (i == lineLen || (FieldLines.isControl(line[i] & 0xff) && line[i] != FieldLines.HTAB)) {
          throw Refusals.badRequest("malformed quoted string in a chunk extension");
        }
      } else if (FieldLines.isControl(b) && b != FieldLines.HTAB) {
        throw Refusals.badRequest("control character in a chunk extension");
      }
      i++;
    }
    throw Refusals.badRequest("unterminated quoted string in a chunk extension");
  }

  private void trailerLine() {
    if (lineLen == 0) {
      state = State.DONE;
      line = null;
      return;
    }
    trailerBytes += lineLen + 2;
    if (++trailerCount > MAX_TRAILER_COUNT || trailerBytes > MAX_TRAILER_BYTES) {
      throw Refusals.badRequest("chunked trailer section is too large");
    }
    RequestHead.Header field = FieldLines.parse(line, 0, lineLen, "trailer");
    String name = field.name().toLowerCase(Locale.ROOT);
    if (name.equals("content-length") || name.equals("transfer-encoding")
        || name.equals("host")) {
      // A recipient that merges trailers into the head would reframe or reroute the request.
      throw Refusals.badRequest(field.name() + " is not allowed in a chunked trailer");
    }
  }

  private static int hexValue(byte b) {
    if (b >= '0' && b <= '9') {
      return b - '0';
    }
    if (b >= 'a' && b <= 'f') {
      return b - 'a' + 10;
    }
    if (b >= 'A' && b <= 'F') {
      return b - 'A' + 10;
    }
    return -1;
  }
}
