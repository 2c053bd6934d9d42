package dev.egret.upstream;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.DefaultByteBufHolder;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.TooLongFrameException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Egret's strict HTTP/1.1 response parser, the only one reading an upstream connection. For each
 * response it passes on, in order:
 * <ul>
 *   <li>a {@link ResponseHead} (an interim 1xx has nothing after it; the final one its body),
 *   <li>body bytes as {@link ByteBuf}s, each the reader's to release,
 *   <li>an {@link End} with the body's last bytes (often all of them; possibly none),
 * </ul>
 * or, once, a {@link Malformed} naming what is wrong, after which it reads nothing more.
 *
 * <p>It refuses rather than guesses (RFC 9112): a status line that is not {@code HTTP/1.0} or
 * {@code HTTP/1.1}, a status outside 100..599, a line ending in a bare LF, a line folded onto the
 * one before (obs-fold), a header name that is not a token or has whitespace before its colon, a
 * value holding a control character (NUL, a bare CR, ...), a head larger than its limit, a
 * response with both Content-Length and Transfer-Encoding, more than one Content-Length or one
 * that is not a number, a Transfer-Encoding other than {@code chunked} on a body (the relay
 * decodes the chunks and frames the body again, so any other coding would be lost), a chunk size
 * that is not hexadecimal or too large, chunk data not followed by CRLF, a malformed trailer.
 *
 * <p>Framing follows RFC 9112 section 6.3: the response to a HEAD request ({@link #head}, set per
 * request: one request at a time uses a connection), a 1xx, 204 and 304 have no body; then
 * chunked, then Content-Length, else the body ends when the upstream closes. A connection that
 * closes inside a head is a {@link Malformed}; inside a body that has a known end, or one that
 * ends at the close when the connection failed (was reset) instead, nothing is passed on and the
 * request sees the close (its response broke off).
 *
 * <p>The head is parsed from a copy in one array rather than byte by byte through the buffer, and
 * no header map is built: under the sidecar profile's client compiler both are what Netty's
 * decoder spent most of its time on.
 */
public final class ResponseDecoder extends ByteToMessageDecoder {
  /** The end of a response's body, holding its last bytes (released with it). */
  public static final class End extends DefaultByteBufHolder {
    End(ByteBuf data) {
      super(data);
    }
  }

  /** The upstream's response is not valid HTTP/1.1; the message says why. */
  public static final class Malformed extends DecoderException {
    Malformed(String message) {
      super(message);
    }
  }

  /** The upstream's response head is larger than the limit. */
  public static final class TooLarge extends TooLongFrameException {
    TooLarge(String message) {
      super(message);
    }
  }

  private enum State { HEAD, LENGTH, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS, UNTIL_CLOSE,
    SWITCHED, BROKEN }

  /** The longest chunk-size line (with extensions) accepted. */
  private static final int MAX_CHUNK_LINE = 4096;
  private static final byte[] CONTENT_LENGTH = bytes("content-length");
  private static final byte[] TRANSFER_ENCODING = bytes("transfer-encoding");
  private static final byte[] CONNECTION = bytes("connection");
  private static final byte[] CHUNKED = bytes("chunked");
  private static final byte[] CLOSE = bytes("close");
  private static final byte[] KEEP_ALIVE = bytes("keep-alive");

  /** tchar (RFC 9110 section 5.6.2). */
  private static final boolean[] TOKEN = new boolean[256];
  /** A byte allowed in a field value or reason phrase: HTAB, SP, VCHAR, obs-text. */
  private static final boolean[] TEXT = new boolean[256];

  static {
    for (int c = 0; c < 256; c++) {
      TOKEN[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
          || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
      TEXT[c] = c == '\t' || (c >= 0x20 && c != 0x7f);
    }
  }

  private final int maxHeadSize;
  private boolean head;
  private State state = State.HEAD;
  /** The head so far, copied from the input (which is not consumed until the head is whole). */
  private byte[] scratch = new byte[1024];
  private int filled;
  /** Where the search for the head's end goes on, and where the line being searched starts. */
  private int scanned;
  private int lineStart;
  /** Line offsets while a head is parsed (see {@link ResponseHead}); grown as needed. */
  private int[] lines = new int[64];
  private long remaining;
  private int trailerBytes;
  /** The connection failed (a reset, a TLS error) rather than closed. */
  private boolean readFailed;

  ResponseDecoder(int maxHeadSize) {
    this.maxHeadSize = maxHeadSize;
  }

  /** The next response answers a HEAD request (true) or another method. */
  public void head(boolean head) {
    this.head = head;
  }

  /**
   * True between responses with nothing unread: the connection is in step for another request.
   * Bytes after a complete response (a body on a 204, a response longer than its
   * Content-Length) would otherwise be read as the start of the next request's answer.
   */
  public boolean atRest() {
    return state == State.HEAD && !internalBuffer().isReadable();
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    switch (state) {
      case HEAD -> head(in, out);
      case LENGTH -> {
        int n = (int) Math.min(remaining, in.readableBytes());
        remaining -= n;
        if (remaining == 0) {
          state = State.HEAD;
          out.add(new End(in.readRetainedSlice(n)));
        } else {
          out.add(in.readRetainedSlice(n));
        }
      }
      case CHUNK_SIZE -> chunkSize(in, out);
      case CHUNK_DATA -> {
        int readable = in.readableBytes();
        if (remaining <= readable - 7 && lastChunkAt(in, in.readerIndex() + (int) remaining)) {
          // The last of the body, then the last chunk: one end, so a small body goes out with
          // its head.
          ByteBuf data = in.readRetainedSlice((int) remaining);
          in.skipBytes(7);
          state = State.HEAD;
          out.add(new End(data));
          return;
        }
        int n = (int) Math.min(remaining, readable);
        remaining -= n;
        if (remaining == 0) {
          state = State.CHUNK_END;
        }
        out.add(in.readRetainedSlice(n));
      }
      case CHUNK_END -> {
        if (in.readableBytes() < 2) {
          return;
        }
        if (in.readByte() != '\r' || in.readByte() != '\n') {
          fail(in, out, "a chunk's data is not followed by CRLF: the chunk is longer than its size"
              + " says");
          return;
        }
        state = State.CHUNK_SIZE;
      }
      case TRAILERS -> trailers(in, out);
      case UNTIL_CLOSE -> out.add(in.readRetainedSlice(in.readableBytes()));
      case SWITCHED, BROKEN -> in.skipBytes(in.readableBytes());
      default -> throw new IllegalStateException(state.name());
    }
  }

  /**
   * Notes that the connection failed before it closes: a body that ends at the close is whole
   * only when the upstream closed, not when the connection was reset under it.
   */
  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) throws Exception {
    readFailed = true;
    super.exceptionCaught(ctx, cause);
  }

  @Override
  protected void decodeLast(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    if (state == State.UNTIL_CLOSE && readFailed) {
      // Cut off, not ended: nothing is passed on and the request sees the close with its cause.
      in.skipBytes(in.readableBytes());
      state = State.BROKEN;
    } else if (state == State.UNTIL_CLOSE) {
      if (in.isReadable()) {
        out.add(in.readRetainedSlice(in.readableBytes()));
      }
      state = State.HEAD;
      out.add(new End(Unpooled.EMPTY_BUFFER));
    } else if (state == State.HEAD && in.isReadable()) {
      fail(in, out, "the connection closed in the middle of a response head");
    }
    // Inside a body with a known end, the request sees the close: its response broke off.
  }

  private void fail(ByteBuf in, List<Object> out, String why) {
    fail(in, out, new Malformed(why));
  }

  private void fail(ByteBuf in, List<Object> out, DecoderException why) {
    in.skipBytes(in.readableBytes());
    state = State.BROKEN;
    filled = 0;
    out.add(why);
  }

  // --- the head ---

  private void head(ByteBuf in, List<Object> out) {
    int want = Math.min(in.readableBytes(), maxHeadSize);
    if (want > filled) {
      if (want > scratch.length) {
        scratch = Arrays.copyOf(scratch, Math.min(Math.max(scratch.length * 2, want),
            maxHeadSize));
      }
      in.getBytes(in.readerIndex() + filled, scratch, filled, want - filled);
      filled = want;
    }
    byte[] b = scratch;
    int end = -1;
    int i = scanned;
    int start = lineStart;
    for (; i < filled; i++) {
      if (b[i] == '\n') {
        if (i == 0 || b[i - 1] != '\r') {
          fail(in, out, "a line of the response head ends in a bare LF, not CRLF");
          return;
        }
        if (i - 1 == start && start > 0) {
          end = i + 1;
          break;
        }
        start = i + 1;
      }
    }
    if (end < 0) {
      scanned = i;
      lineStart = start;
      if (filled >= maxHeadSize) {
        fail(in, out, new TooLarge("the response head is larger than " + maxHeadSize
            + " bytes"));
      }
      return;
    }
    filled = 0;
    scanned = 0;
    lineStart = 0;
    ResponseHead h;
    try {
      h = parse(b, end);
    } catch (Malformed bad) {
      fail(in, out, bad);
      return;
    }
    in.skipBytes(end);
    out.add(h);
    switch (h.body()) {
      case NONE -> {
        if (h.status() >= 200) {
          out.add(new End(Unpooled.EMPTY_BUFFER));
        }
      }
      case LENGTH -> {
        remaining = h.contentLength();
        if (remaining == 0) {
          out.add(new End(Unpooled.EMPTY_BUFFER));
        } else {
          state = State.LENGTH;
        }
      }
      case CHUNKED -> state = State.CHUNK_SIZE;
      case UNTIL_CLOSE -> state = State.UNTIL_CLOSE;
      case SWITCHED -> state = State.SWITCHED;
      default -> throw new IllegalStateException(h.body().name());
    }
  }

  /** Parses the head in {@code b[0, end)}, whose lines all end in CRLF, the last one empty. */
  private ResponseHead parse(byte[] b, int end) {
    // Status line: HTTP/1.x SP 3DIGIT SP reason CRLF (the SP before an empty reason may lack).
    if (end < 16 || b[0] != 'H' || b[1] != 'T' || b[2] != 'T' || b[3] != 'P' || b[4] != '/'
        || b[5] != '1' || b[6] != '.' || (b[7] != '0' && b[7] != '1') || b[8] != ' ') {
      throw new Malformed("the response does not start with an HTTP/1.1 status line: '"
          + printable(b, 0, Math.min(end, 32)) + "'");
    }
    boolean http10 = b[7] == '0';
    int status = 0;
    for (int i = 9; i < 12; i++) {
      int d = b[i] - '0';
      if (d < 0 || d > 9) {
        throw new Malformed("the response's status code is not three digits: '"
            + printable(b, 0, Math.min(end, 32)) + "'");
      }
      status = status * 10 + d;
    }
    if (status < 100 || status > 599) {
      throw new Malformed("the response's status code " + status + " is outside 100..599");
    }
    int reasonStart;
    int i;
    if (b[12] == '\r') {
      reasonStart = 12;
      i = 12;
    } else if (b[12] == ' ') {
      reasonStart = 13;
      i = 13;
      while (b[i] != '\r') {
        if (!TEXT[b[i] & 0xff]) {
          throw new Malformed("the response's reason phrase holds the control character "
              + hex(b[i]));
        }
        i++;
      }
    } else {
      throw new Malformed("the response's status code is not three digits: '"
          + printable(b, 0, Math.min(end, 32)) + "'");
    }
    int reasonEnd = i;
    if (b[i + 1] != '\n') {
      throw new Malformed("the response's status line holds a bare CR");
    }
    i += 2;

    int[] at = lines;
    int count = 0;
    long contentLength = -1;
    int transferEncodings = 0;
    boolean chunked = false;
    boolean close = false;
    boolean keepAliveAsked = false;
    List<String> options = List.of();
    int last = end - 2; // the final empty line's CR
    while (i < last) {
      int nameStart = i;
      if (b[i] == ' ' || b[i] == '\t') {
        throw new Malformed("the response head folds a header line onto the one before it "
            + "(obs-fold)");
      }
      while (TOKEN[b[i] & 0xff]) {
        i++;
      }
      if (i == nameStart) {
        throw new Malformed("a header line of the response has no name: '"
            + printable(b, i, lineEnd(b, i)) + "'");
      }
      if (b[i] != ':') {
        throw new Malformed("the response's header name '" + printable(b, nameStart, i)
            + "' is followed by " + describeByte(b[i]) + ", not a colon");
      }
      int colon = i++;
      while (b[i] == ' ' || b[i] == '\t') {
        i++;
      }
      int valueStart = i;
      int valueEnd = i;
      for (; b[i] != '\r'; i++) {
        int c = b[i] & 0xff;
        if (!TEXT[c]) {
          throw new Malformed("the response's header '" + printable(b, nameStart, colon)
              + "' holds the control character " + hex(b[i]) + " in its value");
        }
        if (c != ' ' && c != '\t') {
          valueEnd = i + 1;
        }
      }
      if (b[i + 1] != '\n') {
        throw new Malformed("the response's header '" + printable(b, nameStart, colon)
            + "' holds a bare CR in its value");
      }
      i += 2;
      if (count * 4 + 4 > at.length) {
        at = lines = Arrays.copyOf(at, at.length * 2);
      }
      at[count * 4] = nameStart;
      at[count * 4 + 1] = colon;
      at[count * 4 + 2] = valueStart;
      at[count * 4 + 3] = valueEnd;
      count++;
      int n = colon - nameStart;
      if (n == 14 && is(b, nameStart, CONTENT_LENGTH)) {
        if (contentLength >= 0) {
          throw new Malformed("the response has more than one Content-Length, so its length is"
              + " ambiguous");
        }
        contentLength = contentLength(b, valueStart, valueEnd);
      } else if (n == 17 && is(b, nameStart, TRANSFER_ENCODING)) {
        transferEncodings++;
        chunked = valueEnd - valueStart == 7 && is(b, valueStart, CHUNKED);
      } else if (n == 10 && is(b, nameStart, CONNECTION)) {
        for (int t = valueStart; t < valueEnd; ) {
          int comma = t;
          while (comma < valueEnd && b[comma] != ',') {
            comma++;
          }
          int ts = t;
          int te = comma;
          while (ts < te && (b[ts] == ' ' || b[ts] == '\t')) {
            ts++;
          }
          while (te > ts && (b[te - 1] == ' ' || b[te - 1] == '\t')) {
            te--;
          }
          if (te - ts == 5 && is(b, ts, CLOSE)) {
            close = true;
          } else if (te - ts == 10 && is(b, ts, KEEP_ALIVE)) {
            keepAliveAsked = true;
          } else if (te > ts) {
            if (options.isEmpty()) {
              options = new ArrayList<>(2);
            }
            options.add(printable(b, ts, te).toLowerCase(Locale.ROOT));
          }
          t = comma + 1;
        }
      }
    }
    if (transferEncodings > 0 && contentLength >= 0) {
      throw new Malformed("the response has both Content-Length and Transfer-Encoding, so its "
          + "length is ambiguous");
    }
    ResponseHead.Body body;
    if (status == 101) {
      body = ResponseHead.Body.SWITCHED;
    } else if (status < 200 || status == 204 || status == 304 || head) {
      body = ResponseHead.Body.NONE;
    } else if (transferEncodings > 0) {
      if (http10) {
        throw new Malformed("an HTTP/1.0 response has Transfer-Encoding, which HTTP/1.0 does not "
            + "know: its framing is faulty");
      }
      if (transferEncodings > 1 || !chunked) {
        throw new Malformed("the response's body is framed with Transfer-Encoding '"
            + transferEncodingValues(b, at, count) + "'; Egret relays only chunked alone");
      }
      body = ResponseHead.Body.CHUNKED;
    } else if (contentLength >= 0) {
      body = ResponseHead.Body.LENGTH;
    } else {
      body = ResponseHead.Body.UNTIL_CLOSE;
    }
    boolean keepAlive = !close && (!http10 || keepAliveAsked)
        && body != ResponseHead.Body.UNTIL_CLOSE && body != ResponseHead.Body.SWITCHED;
    return new ResponseHead(Arrays.copyOf(b, end), status, http10, reasonStart, reasonEnd,
        Arrays.copyOf(at, count * 4), count, body, contentLength, keepAlive, options);
  }

  private static long contentLength(byte[] b, int start, int end) {
    if (start == end || end - start > 18) {
      throw new Malformed("the response's Content-Length '" + printable(b, start, end)
          + "' is not a number Egret accepts");
    }
    long v = 0;
    for (int i = start; i < end; i++) {
      int d = b[i] - '0';
      if (d < 0 || d > 9) {
        throw new Malformed("the response's Content-Length '" + printable(b, start, end)
            + "' is not a number");
      }
      v = v * 10 + d;
    }
    return v;
  }

  private static String transferEncodingValues(byte[] b, int[] at, int count) {
    StringBuilder s = new StringBuilder();
    for (int l = 0; l < count; l++) {
      if (at[l * 4 + 1] - at[l * 4] == 17 && is(b, at[l * 4], TRANSFER_ENCODING)) {
        s.append(s.length() == 0 ? "" : ", ").append(printable(b, at[l * 4 + 2], at[l * 4 + 3]));
      }
    }
    return s.toString();
  }

  // --- chunks ---

  private void chunkSize(ByteBuf in, List<Object> out) {
    int from = in.readerIndex();
    int readable = in.readableBytes();
    int lf = in.indexOf(from, from + Math.min(readable, MAX_CHUNK_LINE), (byte) '\n');
    if (lf < 0) {
      if (readable >= MAX_CHUNK_LINE) {
        fail(in, out, "a chunk-size line of the response is longer than " + MAX_CHUNK_LINE
            + " bytes");
      }
      return;
    }
    if (lf == from || in.getByte(lf - 1) != '\r') {
      fail(in, out, "a chunk-size line of the response ends in a bare LF, not CRLF");
      return;
    }
    int end = lf - 1;
    long size = 0;
    int digits = 0;
    int i = from;
    for (; i < end; i++) {
      int d = Character.digit(in.getByte(i), 16);
      if (d < 0) {
        break;
      }
      if (++digits > 15 && size > 0) {
        fail(in, out, "a chunk size of the response is too large: '" + chunkLine(in, from, end)
            + "'");
        return;
      }
      size = size * 16 + d;
    }
    if (digits == 0) {
      fail(in, out, "the chunk size '" + chunkLine(in, from, end) + "' is not hexadecimal");
      return;
    }
    if (i < end) {
      // Only chunk extensions may follow: BWS ";" ..., which the relay drops.
      int j = i;
      while (j < end && (in.getByte(j) == ' ' || in.getByte(j) == '\t')) {
        j++;
      }
      if (j == end || in.getByte(j) != ';') {
        fail(in, out, "the chunk size '" + chunkLine(in, from, end) + "' is not hexadecimal");
        return;
      }
      for (int k = j + 1; k < end; k++) {
        if (!TEXT[in.getByte(k) & 0xff]) {
          fail(in, out, "a chunk extension of the response holds the control character "
              + hex(in.getByte(k)));
          return;
        }
      }
    }
    in.readerIndex(lf + 1);
    if (size == 0) {
      state = State.TRAILERS;
      trailerBytes = 0;
    } else {
      remaining = size;
      state = State.CHUNK_DATA;
    }
  }

  private static String chunkLine(ByteBuf in, int from, int end) {
    byte[] b = new byte[Math.min(end - from, 64)];
    in.getBytes(from, b);
    return printable(b, 0, b.length);
  }

  /** The chunk's data, its CRLF and the last chunk with no trailers are all at {@code at}. */
  private static boolean lastChunkAt(ByteBuf in, int at) {
    return in.getByte(at) == '\r' && in.getByte(at + 1) == '\n' && in.getByte(at + 2) == '0'
        && in.getByte(at + 3) == '\r' && in.getByte(at + 4) == '\n' && in.getByte(at + 5) == '\r'
        && in.getByte(at + 6) == '\n';
  }

  /** The trailer section after the last chunk: checked as header lines are, and not relayed. */
  private void trailers(ByteBuf in, List<Object> out) {
    while (in.isReadable()) {
      int from = in.readerIndex();
      int readable = in.readableBytes();
      int lf = in.indexOf(from, from + readable, (byte) '\n');
      if (lf < 0) {
        if (trailerBytes + readable > maxHeadSize) {
          fail(in, out, new TooLarge("the response's trailers are larger than " + maxHeadSize
              + " bytes"));
        }
        return;
      }
      if (lf == from || in.getByte(lf - 1) != '\r') {
        fail(in, out, "a trailer line of the response ends in a bare LF, not CRLF");
        return;
      }
      trailerBytes += lf + 1 - from;
      if (trailerBytes > maxHeadSize) {
        fail(in, out, new TooLarge("the response's trailers are larger than " + maxHeadSize
            + " bytes"));
        return;
      }
      int end = lf - 1;
      if (end == from) {
        in.readerIndex(lf + 1);
        state = State.HEAD;
        out.add(new End(Unpooled.EMPTY_BUFFER));
        return;
      }
      int i = from;
      while (i < end && TOKEN[in.getByte(i) & 0xff]) {
        i++;
      }
      if (i == from || i == end || in.getByte(i) != ':') {
        fail(in, out, "a trailer line of the response is not a header field: '"
            + chunkLine(in, from, end) + "'");
        return;
      }
      for (i++; i < end; i++) {
        if (!TEXT[in.getByte(i) & 0xff]) {
          fail(in, out, "a trailer of the response holds the control character "
              + hex(in.getByte(i)) + " in its value");
          return;
        }
      }
      in.readerIndex(lf + 1);
    }
  }

  // --- helpers ---

  private static boolean is(byte[] b, int at, byte[] lower) {
    for (int i = 0; i < lower.length; i++) {
      if ((b[at + i] | 0x20) != lower[i]) {
        return false;
      }
    }
    return true;
  }

  private static int lineEnd(byte[] b, int from) {
    int i = from;
    while (b[i] != '\r') {
      i++;
    }
    return i;
  }

  private static byte[] bytes(String s) {
    return s.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
  }

  /** Bytes for a message: printable ASCII as is, others as \xNN; at most 64 shown. */
  static String printable(byte[] b, int from, int to) {
    StringBuilder s = new StringBuilder();
    for (int i = from; i < to && s.length() < 64; i++) {
      int c = b[i] & 0xff;
      if (c >= 0x20 && c < 0x7f) {
        s.append((char) c);
      } else {
        s.append(String.format("\\x%02X", c));
      }
    }
    return s.toString();
  }

  private static String hex(byte c) {
    return String.format("0x%02X", c & 0xff);
  }

  private static String describeByte(byte c) {
    return c == ' ' || c == '\t' ? "whitespace" : "the character " + hex(c);
  }
}
