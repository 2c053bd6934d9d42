package dev.egret.telemetry;

import java.io.IOException;
import java.io.OutputStream;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.Arrays;

/**
 * A reusable UTF-8 buffer that JSON access-log lines are written into, field by field, and then
 * handed to a stream in one write. Usage, on one thread (the access log's writer):
 *
 * <pre>{@code
 * JsonLine line = new JsonLine();
 * line.begin(); line.string("url", url); line.number("status", 200); line.end();   // {...}\n
 * line.writeTo(out); line.reset();
 * }</pre>
 *
 * <p>Why not Jackson: a profile of the warm upgrade path showed the access-log thread at about a
 * third of Egret's samples, a quarter in Jackson's {@code _writeStringSegment}, with a generator
 * built per line; this writer does only what a log line needs (flat object, string, integer and
 * millisecond fields, an ISO-8601 time) with no per-line allocation. {@code AccessLogBenchmark}
 * measures both.
 *
 * <p>Strings are escaped per RFC 8259: {@code "} and {@code \}, every control character below
 * U+0020 ({@code \n}, {@code \r}, {@code \t}, {@code \b}, {@code \f} by name, the rest as {@code
 * \}{@code u00XX}), and U+2028/U+2029, which JavaScript log viewers read as line ends. DEL and the
 * C1 controls (U+007F to U+009F) are escaped too, though JSON allows them raw: a terminal showing
 * the log may act on them (U+009B is CSI). Non-ASCII
 * is encoded as UTF-8; a surrogate pair as one 4-byte sequence; a lone surrogate (a string that
 * is no valid UTF-16) as U+FFFD: it has no UTF-8 form, and the escape Jackson writes for it makes
 * strict parsers (Rust's serde_json, for one) refuse the whole line. So a hostile value can
 * neither break a line nor make it unreadable. Not thread-safe.
 */
final class JsonLine {
  private static final byte[] HEX = {
      '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  /** A buffer that grew past this for one huge batch is given back, not kept for good. */
  private static final int RETAINED_BYTES = 256 * 1024;
  private static final int INITIAL_BYTES = 16 * 1024;

  private static final char LINE_SEPARATOR = 0x2028;
  private static final char PARAGRAPH_SEPARATOR = 0x2029;

  private byte[] buf = new byte[INITIAL_BYTES];
  private int len;
  private boolean firstField;
  // The formatted "yyyy-MM-ddTHH:mm:ss." of cachedSecond: log lines arrive in time order, so the
  // calendar arithmetic runs about once a second.
  private long cachedSecond = Long.MIN_VALUE;
  private final byte[] secondPrefix = new byte[32];
  private int secondPrefixLen;

  /** Bytes written since the last {@link #reset}. */
  int length() {
    return len;
  }

  void reset() {
    len = 0;
    if (buf.length > RETAINED_BYTES) {
      buf = new byte[INITIAL_BYTES];
    }
  }

  void writeTo(OutputStream out) throws IOException {
    out.write(buf, 0, len);
  }

  /** The bytes written, as a string; for tests. */
  String text() {
    return new String(buf, 0, len, java.nio.charset.StandardCharsets.UTF_8);
  }

  void begin() {
    ensure(1);
    buf[len++] = '{';
    firstField = true;
  }

  /** Closes the object and ends the line. */
  void end() {
    ensure(2);
    buf[len++] = '}';
    buf[len++] = '\n';
  }

  /** A string field; null writes {@code null}. */
  void string(String name, String value) {
    name(name);
    if (value == null) {
      ascii("null");
    } else {
      quoted(value);
    }
  }

  void number(String name, long value) {
    name(name);
    decimal(value);
  }

  /**
   * A duration in milliseconds with microsecond precision ({@code 1.235}, {@code 2.0}); {@code
   * null} for a negative value (a stage that did not happen).
   */
  void millis(String name, long nanos) {
    name(name);
    if (nanos < 0) {
      ascii("null");
      return;
    }
    long micros = Math.round(nanos / 1_000.0);
    decimal(micros / 1_000);
    int fraction = (int) (micros % 1_000);
    ensure(4);
    buf[len++] = '.';
    if (fraction == 0) {
      buf[len++] = '0';
      return;
    }
    int digits = 3;
    while (fraction % 10 == 0) {
      fraction /= 10;
      digits--;
    }
    for (int i = digits - 1, f = fraction; i >= 0; i--, f /= 10) {
      buf[len + i] = (byte) ('0' + f % 10);
    }
    len += digits;
  }

  /** An ISO-8601 UTC time with milliseconds, {@code "2026-12-02T01:04:17.123Z"}. */
  void time(String name, long epochMillis) {
    name(name);
    long second = Math.floorDiv(epochMillis, 1000);
    int milli = (int) Math.floorMod(epochMillis, 1000);
    if (second != cachedSecond) {
      LocalDateTime t = LocalDateTime.ofEpochSecond(second, 0, ZoneOffset.UTC);
      String prefix = String.format("%04d-%02d-%02dT%02d:%02d:%02d.", t.getYear(),
          t.getMonthValue(), t.getDayOfMonth(), t.getHour(), t.getMinute(), t.getSecond());
      secondPrefixLen = 0;
      for (int i = 0; i < prefix.length() && i < secondPrefix.length; i++) {
        secondPrefix[secondPrefixLen++] = (byte) prefix.charAt(i);
      }
      cachedSecond = second;
    }
    ensure(secondPrefixLen + 7);
    buf[len++] = '"';
    System.arraycopy(secondPrefix, 0, buf, len, secondPrefixLen);
    len += secondPrefixLen;
    buf[len++] = (byte) ('0' + milli / 100);
    buf[len++] = (byte) ('0' + milli / 10 % 10);
    buf[len++] = (byte) ('0' + milli % 10);
    buf[len++] = 'Z';
    buf[len++] = '"';
  }

  @SuppressWarnings("deprecation") // getBytes(int, int, byte[], int): ASCII names, copied
  private void name(String name) {
    ensure(name.length() + 4);
    if (!firstField) {
      buf[len++] = ',';
    }
    firstField = false;
    buf[len++] = '"';
    // Field names are this class's callers' constants: plain ASCII, nothing to escape.
    name.getBytes(0, name.length(), buf, len);
    len += name.length();
    buf[len++] = '"';
    buf[len++] = ':';
  }

  private void ascii(String s) {
    ensure(s.length());
    for (int i = 0; i < s.length(); i++) {
      buf[len++] = (byte) s.charAt(i);
    }
  }

  private void decimal(long v) {
    if (v == Long.MIN_VALUE) {
      ascii("-9223372036854775808");
      return;
    }
    ensure(20);
    if (v < 0) {
      buf[len++] = '-';
      v = -v;
    }
    int digits = 1;
    for (long x = v; x >= 10; x /= 10) {
      digits++;
    }
    for (int i = digits - 1; i >= 0; i--, v /= 10) {
      buf[len + i] = (byte) ('0' + v % 10);
    }
    len += digits;
  }

  @SuppressWarnings("deprecation") // getBytes(int, int, byte[], int): see below
  private void quoted(String s) {
    int n = s.length();
    // Worst case per char: 6 bytes (a control character as a six-byte escape); a surrogate pair
    // is 2 chars for 4 bytes, a lone surrogate 1 char for 3.
    ensure((int) Math.min(Integer.MAX_VALUE - 16, n * 6L + 2));
    byte[] b = buf;
    b[len++] = '"';
    // The common case is plain printable ASCII. String.getBytes(int, int, byte[], int) copies
    // each char's low byte, an array copy for a Latin-1 string; the scan then checks that no
    // byte needs escaping or was cut from a wider char. The first that does hands the rest,
    // from its index, to the char-by-char encoder.
    s.getBytes(0, n, b, len);
    int i = 0;
    while (i < n) {
      byte c = b[len + i];
      if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f || s.charAt(i) != (char) c) {
        break; // a negative byte (>= 0x80) is < 0x20 too
      }
      i++;
    }
    len += i;
    if (i < n) {
      encode(s, i);
    }
    buf[len++] = '"';
  }

  /** Escapes and encodes {@code s} from index {@code from}; capacity is already ensured. */
  private void encode(String s, int from) {
    byte[] b = buf;
    int n = len;
    for (int i = from; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < 0x80) {
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
          b[n++] = (byte) c;
          continue;
        }
        b[n++] = '\\';
        switch (c) {
          case '"' -> b[n++] = '"';
          case '\\' -> b[n++] = '\\';
          case '\n' -> b[n++] = 'n';
          case '\r' -> b[n++] = 'r';
          case '\t' -> b[n++] = 't';
          case '\b' -> b[n++] = 'b';
          case '\f' -> b[n++] = 'f';
          default -> n = unicodeEscape(b, n, c);
        }
      } else if (c < 0xa0) {
        b[n++] = '\\'; // a C1 control
        n = unicodeEscape(b, n, c);
      } else if (c < 0x800) {
        b[n++] = (byte) (0xc0 | c >> 6);
        b[n++] = (byte) (0x80 | (c & 0x3f));
      } else if (c == LINE_SEPARATOR || c == PARAGRAPH_SEPARATOR) {
        b[n++] = '\\';
        n = unicodeEscape(b, n, c);
      } else if (Character.isHighSurrogate(c) && i + 1 < s.length()
          && Character.isLowSurrogate(s.charAt(i + 1))) {
        int cp = Character.toCodePoint(c, s.charAt(++i));
        b[n++] = (byte) (0xf0 | cp >> 18);
        b[n++] = (byte) (0x80 | (cp >> 12 & 0x3f));
        b[n++] = (byte) (0x80 | (cp >> 6 & 0x3f));
        b[n++] = (byte) (0x80 | (cp & 0x3f));
      } else if (Character.isSurrogate(c)) {
        // A lone surrogate: no valid UTF-8 exists for it.
        b[n++] = (byte) 0xef;
        b[n++] = (byte) 0xbf;
        b[n++] = (byte) 0xbd;
      } else {
        b[n++] = (byte) (0xe0 | c >> 12);
        b[n++] = (byte) (0x80 | (c >> 6 & 0x3f));
        b[n++] = (byte) (0x80 | (c & 0x3f));
      }
    }
    len = n;
  }

  /** Writes "u" and four hex digits (the backslash is already written); returns the new length. */
  private static int unicodeEscape(byte[] b, int n, char c) {
    b[n++] = 'u';
    b[n++] = HEX[c >> 12 & 0xf];
    b[n++] = HEX[c >> 8 & 0xf];
    b[n++] = HEX[c >> 4 & 0xf];
    b[n++] = HEX[c & 0xf];
    return n;
  }

  private void ensure(int more) {
    if (len + more > buf.length) {
      buf = Arrays.copyOf(buf, Math.max(buf.length * 2, len + more));
    }
  }
}
