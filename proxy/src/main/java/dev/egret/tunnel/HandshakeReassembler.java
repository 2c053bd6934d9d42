package dev.egret.tunnel;

/**
 * Collects the first handshake message a peer sends out of however many TLS records and TCP
 * segments it arrives in (RFC 8446 section 5.1 lets one message span several records). Feed it
 * the stream from its first byte; it answers {@link Progress#MESSAGE} once the whole message is
 * in {@link #body()}, and ignores whatever follows.
 *
 * <p>It holds one record header and the message body, nothing else; the tunnel keeps the raw
 * bytes itself until the verdict. Both are bounded: at most {@link #LIMIT} bytes of stream are
 * read before a verdict, and the body buffer grows with the bytes that actually arrived, never
 * with the length a header claims. Not thread-safe: one per connection, on its event loop.
 */
final class HandshakeReassembler {
  /** Stream bytes (record headers included) read before giving up on a hello as too large. */
  static final int LIMIT = 64 * 1024;

  private static final int MAX_RECORD = 1 << 14;
  private static final int HEADER = 5;
  private static final int CHANGE_CIPHER_SPEC = 20;
  private static final int ALERT = 21;
  private static final int HANDSHAKE = 22;
  private static final int APPLICATION_DATA = 23;
  private static final byte[] EMPTY = new byte[0];

  enum Progress { NEED_MORE, MESSAGE, ALERT }

  private final int expectedType;
  private final String expectedName;
  private final boolean alertAllowed;

  private final byte[] recordHeader = new byte[HEADER];
  private int recordHeaderFill;
  private boolean firstRecord = true;
  private int recordType;
  private int recordLeft;
  private int consumed;

  private final byte[] messageHeader = new byte[4];
  private int messageHeaderFill;
  private int bodyLength = -1;
  private byte[] body = EMPTY;
  private int bodyFill;

  private final byte[] alert = new byte[2];
  private int alertFill;

  /**
   * @param expectedType the handshake type the peer must open with (1 ClientHello, 2 ServerHello)
   * @param expectedName its name, for reasons
   * @param alertAllowed whether an alert record may stand in for the message (server side)
   */
  HandshakeReassembler(int expectedType, String expectedName, boolean alertAllowed) {
    this.expectedType = expectedType;
    this.expectedName = expectedName;
    this.alertAllowed = alertAllowed;
  }

  /** The next bytes of the stream; call again with later bytes only while NEED_MORE. */
  Progress feed(byte[] chunk, int off, int len) throws HelloRejection {
    int i = off;
    int end = off + len;
    while (i < end) {
      if (recordLeft == 0) {
        int n = Math.min(HEADER - recordHeaderFill, end - i);
        count(n);
        System.arraycopy(chunk, i, recordHeader, recordHeaderFill, n);
        recordHeaderFill += n;
        i += n;
        // Judge the first byte at once, so plaintext is refused without waiting for five bytes.
        checkRecordHeaderSoFar();
        if (recordHeaderFill == HEADER) {
          openRecord();
        }
        continue;
      }
      int n = Math.min(recordLeft, end - i);
      if (recordType == ALERT) {
        count(n);
        System.arraycopy(chunk, i, alert, alertFill, n);
        alertFill += n;
        recordLeft -= n;
        i += n;
        if (alertFill == alert.length) {
          return Progress.ALERT;
        }
        continue;
      }
      // Only the bytes the message used count: what follows it in its record is not the
      // hello's size, so the verdict cannot depend on whether a read ends where the hello does.
      // The body buffer never holds more than the claimed length, which is checked first.
      int used = takeHandshake(chunk, i, n);
      count(used);
      recordLeft -= used;
      i += used;
      if (bodyLength >= 0 && bodyFill == bodyLength) {
        return Progress.MESSAGE;
      }
    }
    return Progress.NEED_MORE;
  }

  /** The complete message body (without its 4-byte header), valid after MESSAGE. */
  byte[] body() {
    return body;
  }

  int bodyLength() {
    return bodyLength;
  }

  /** The alert's level and description, valid after ALERT. */
  int alertLevel() {
    return alert[0] & 0xff;
  }

  int alertDescription() {
    return alert[1] & 0xff;
  }

  private void count(int n) throws HelloRejection {
    consumed += n;
    if (consumed > LIMIT) {
      throw HelloRejection.malformed(
          "too large: no complete %s in the first %d bytes", expectedName, LIMIT);
    }
  }

  private void checkRecordHeaderSoFar() throws HelloRejection {
    if (!firstRecord) {
      return;
    }
    int type = recordHeader[0] & 0xff;
    if (type != HANDSHAKE && !(type == ALERT && alertAllowed)) {
      throw HelloRejection.notTls("%s", describeFirstByte(type));
    }
    if (recordHeaderFill >= 2 && recordHeader[1] != 3) {
      throw HelloRejection.notTls(
          "record version major byte is 0x%02x, TLS uses 0x03", recordHeader[1] & 0xff);
    }
  }

  private String describeFirstByte(int type) {
    if ((type & 0x80) != 0) {
      return String.format(
          "SSLv2-style record header (first byte 0x%02x); SSLv2 and SSLv2-compatible hellos "
              + "are not accepted", type);
    }
    if (type >= 'A' && type <= 'Z') {
      return String.format("first byte 0x%02x ('%c') looks like plaintext, not a TLS record",
          type, (char) type);
    }
    String name = switch (type) {
      case CHANGE_CIPHER_SPEC -> " (change_cipher_spec)";
      case ALERT -> " (alert)";
      case APPLICATION_DATA -> " (application_data)";
      default -> "";
    };
    return String.format(
        "first record has content type %d%s, expected handshake (22) carrying a %s",
        type, name, expectedName);
  }

  private void openRecord() throws HelloRejection {
    int type = recordHeader[0] & 0xff;
    int version = u16(recordHeader, 1);
    int length = u16(recordHeader, 3);
    recordHeaderFill = 0;
    if (!firstRecord && type != HANDSHAKE) {
      // RFC 8446 5.1: handshake messages must not be interleaved with other record types.
      throw HelloRejection.malformed(
          "a record of content type %d interrupts the %s", type, expectedName);
    }
    if ((version >>> 8) != 3) {
      throw HelloRejection.malformed("record version 0x%04x is not 0x03xx", version);
    }
    if (length > MAX_RECORD) {
      throw HelloRejection.malformed(
          "record length %d exceeds the TLS limit of %d", length, MAX_RECORD);
    }
    if (type == ALERT && length != alert.length) {
      throw HelloRejection.malformed("alert record of %d bytes, an alert has 2", length);
    }
    if (length == 0) {
      // Empty handshake records are forbidden, and allowing them would let a peer keep the
      // inspector waiting with bytes that never count towards a message.
      throw HelloRejection.malformed("empty handshake record");
    }
    firstRecord = false;
    recordType = type;
    recordLeft = length;
  }

  /** Takes up to n bytes of handshake payload; returns how many it used. */
  private int takeHandshake(byte[] chunk, int off, int n) throws HelloRejection {
    int used = 0;
    if (messageHeaderFill < messageHeader.length) {
      int h = Math.min(messageHeader.length - messageHeaderFill, n);
      System.arraycopy(chunk, off, messageHeader, messageHeaderFill, h);
      messageHeaderFill += h;
      used += h;
      if (messageHeaderFill < messageHeader.length) {
        return used;
      }
      openMessage();
    }
    int b = Math.min(bodyLength - bodyFill, n - used);
    if (b > 0) {
      ensureCapacity(bodyFill + b);
      System.arraycopy(chunk, off + used, body, bodyFill, b);
      bodyFill += b;
      used += b;
    }
    return used;
  }

  private void openMessage() throws HelloRejection {
    int type = messageHeader[0] & 0xff;
    if (type != expectedType) {
      throw HelloRejection.notTls(
          "first handshake message has type %d, expected %s (%d)", type, expectedName,
          expectedType);
    }
    int length = ((messageHeader[1] & 0xff) << 16) | u16(messageHeader, 2);
    if (length > LIMIT - HEADER - messageHeader.length) {
      throw HelloRejection.malformed(
          "too large: %s claims %d bytes, the limit is %d", expectedName, length, LIMIT);
    }
    bodyLength = length;
  }

  /** Grows the body buffer to hold bytes that have arrived: doubling, capped at the claim. */
  private void ensureCapacity(int needed) {
    if (needed <= body.length) {
      return;
    }
    int capacity = Math.min(bodyLength, Math.max(needed, Math.max(512, body.length * 2)));
    byte[] grown = new byte[capacity];
    System.arraycopy(body, 0, grown, 0, bodyFill);
    body = grown;
  }

  private static int u16(byte[] b, int at) {
    return ((b[at] & 0xff) << 8) | (b[at + 1] & 0xff);
  }
}
