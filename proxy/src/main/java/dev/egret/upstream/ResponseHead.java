package dev.egret.upstream;

import io.netty.buffer.ByteBuf;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * One response head as {@link ResponseDecoder} read it from the upstream: the status, how the
 * body that follows is framed, whether the connection may carry another request, and the head's
 * own bytes with the place of each header line, so the relay copies the lines it keeps instead of
 * building a header map and encoding it again.
 *
 * <pre>{@code
 * for (int i = 0; i < head.lineCount(); i++) {
 *   if (head.nameIs(i, "via".getBytes())) { ... head.value(i) ... }
 * }
 * head.writeLines(out, 0, head.lineCount());   // the header lines as received, CRLF each
 * }</pre>
 *
 * <p>Immutable once made; the bytes are a copy, so the value outlives the read that carried it.
 * Every line passed the decoder's checks: names are tokens, values hold no control character
 * but HTAB, lines end in CRLF.
 */
public final class ResponseHead {
  /** How the response's body is delimited on the upstream connection. */
  public enum Body {
    /** No body: a response to HEAD, a 1xx, 204 or 304. */
    NONE,
    /** {@link #contentLength()} bytes. */
    LENGTH,
    /** {@code Transfer-Encoding: chunked}. */
    CHUNKED,
    /** Whatever comes until the upstream closes the connection. */
    UNTIL_CLOSE,
    /** A 101: what follows is another protocol, never read as HTTP. */
    SWITCHED
  }

  private final byte[] bytes;
  private final int status;
  private final boolean http10;
  /** Where the reason phrase starts and ends (end: the status line's CR). */
  private final int reasonStart;
  private final int reasonEnd;
  /** Per line, four offsets into {@link #bytes}: name start, colon, value start, value end. */
  private final int[] lines;
  private final int lineCount;
  private final Body body;
  private final long contentLength;
  private final boolean keepAlive;
  private final List<String> connectionOptions;

  ResponseHead(byte[] bytes, int status, boolean http10, int reasonStart, int reasonEnd,
      int[] lines, int lineCount, Body body, long contentLength, boolean keepAlive,
      List<String> connectionOptions) {
    this.bytes = bytes;
    this.status = status;
    this.http10 = http10;
    this.reasonStart = reasonStart;
    this.reasonEnd = reasonEnd;
    this.lines = lines;
    this.lineCount = lineCount;
    this.body = body;
    this.contentLength = contentLength;
    this.keepAlive = keepAlive;
    this.connectionOptions = connectionOptions;
  }

  public int status() {
    return status;
  }

  /** The upstream answered in HTTP/1.0 (else 1.1). */
  public boolean http10() {
    return http10;
  }

  public Body body() {
    return body;
  }

  /** The Content-Length, or -1 when the response has none. */
  public long contentLength() {
    return contentLength;
  }

  /**
   * True when the connection can carry another request after this response: HTTP/1.1 without
   * {@code Connection: close}, or HTTP/1.0 with {@code keep-alive}, and a body whose end is known
   * without a close.
   */
  public boolean keepAlive() {
    return keepAlive;
  }

  /**
   * The lower-case options of the {@code Connection} headers other than {@code close} and
   * {@code keep-alive}: the names of further headers that stop at this hop. Usually empty.
   */
  public List<String> connectionOptions() {
    return connectionOptions;
  }

  public int lineCount() {
    return lineCount;
  }

  public int nameLength(int line) {
    return lines[line * 4 + 1] - lines[line * 4];
  }

  /**
   * Whether line {@code line}'s name is {@code lower} ignoring case; {@code lower} is lower-case
   * ASCII letters and {@code -}. Setting bit 0x20 lower-cases a letter and leaves {@code -}
   * alone; no other token character turns into a letter or {@code -} that way.
   */
  public boolean nameIs(int line, byte[] lower) {
    int start = lines[line * 4];
    int n = lines[line * 4 + 1] - start;
    if (n != lower.length) {
      return false;
    }
    byte[] b = bytes;
    for (int i = 0; i < n; i++) {
      if ((b[start + i] | 0x20) != lower[i]) {
        return false;
      }
    }
    return true;
  }

  /** Whether line {@code line}'s name is {@code name} ignoring case (any token). */
  public boolean nameIs(int line, String name) {
    int start = lines[line * 4];
    int n = lines[line * 4 + 1] - start;
    if (n != name.length()) {
      return false;
    }
    for (int i = 0; i < n; i++) {
      int a = bytes[start + i];
      int c = name.charAt(i);
      if (a != c && Character.toLowerCase(a) != Character.toLowerCase(c)) {
        return false;
      }
    }
    return true;
  }

  public String name(int line) {
    int start = lines[line * 4];
    return new String(bytes, start, lines[line * 4 + 1] - start, StandardCharsets.ISO_8859_1);
  }

  /** The value without the whitespace around it, each byte one ISO-8859-1 char. */
  public String value(int line) {
    int start = lines[line * 4 + 2];
    return new String(bytes, start, lines[line * 4 + 3] - start, StandardCharsets.ISO_8859_1);
  }

  /** Writes line {@code line}'s value, without the whitespace around it. */
  public void writeValue(ByteBuf out, int line) {
    int start = lines[line * 4 + 2];
    out.writeBytes(bytes, start, lines[line * 4 + 3] - start);
  }

  /** Writes the header lines {@code from} to {@code to} (exclusive) as received, CRLF each. */
  public void writeLines(ByteBuf out, int from, int to) {
    if (from >= to) {
      return;
    }
    int start = lines[from * 4];
    // A line ends where the next starts; the last where the head's final CRLF starts.
    int end = to < lineCount ? lines[to * 4] : bytes.length - 2;
    out.writeBytes(bytes, start, end - start);
  }

  /** Writes the status line as HTTP/1.1, with the reason phrase received, and its CRLF. */
  public void writeStatusLine(ByteBuf out) {
    out.writeBytes(HTTP11_SP);
    out.writeBytes(bytes, 9, 3);
    out.writeByte(' ');
    out.writeBytes(bytes, reasonStart, reasonEnd - reasonStart);
    out.writeShort(CRLF_SHORT);
  }

  /** The head's length as received, a bound on what a relayed copy needs. */
  public int size() {
    return bytes.length;
  }

  @Override
  public String toString() {
    return new String(bytes, StandardCharsets.ISO_8859_1);
  }

  private static final byte[] HTTP11_SP = {'H', 'T', 'T', 'P', '/', '1', '.', '1', ' '};
  private static final int CRLF_SHORT = ('\r' << 8) | '\n';
}
