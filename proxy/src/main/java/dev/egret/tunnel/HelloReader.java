package dev.egret.tunnel;

/**
 * A bounds-checked cursor over a complete handshake message. Every read names the field it
 * reads, so a short block becomes "truncated cipher_suites" rather than an index error, and a
 * length prefix can only open a {@link #slice} over bytes that are really there.
 */
final class HelloReader {
  private final byte[] buf;
  private final int end;
  private int pos;

  HelloReader(byte[] buf, int offset, int length) {
    this.buf = buf;
    this.pos = offset;
    this.end = offset + length;
  }

  int remaining() {
    return end - pos;
  }

  int u8(String field) throws HelloRejection {
    need(1, field);
    return buf[pos++] & 0xff;
  }

  int u16(String field) throws HelloRejection {
    need(2, field);
    int v = ((buf[pos] & 0xff) << 8) | (buf[pos + 1] & 0xff);
    pos += 2;
    return v;
  }

  void skip(int n, String field) throws HelloRejection {
    need(n, field);
    pos += n;
  }

  /** Copies the next n bytes; only for small fixed-size fields (n is checked against data). */
  byte[] bytes(int n, String field) throws HelloRejection {
    need(n, field);
    byte[] out = new byte[n];
    System.arraycopy(buf, pos, out, 0, n);
    pos += n;
    return out;
  }

  /** A reader over exactly the next n bytes, which this reader then skips. */
  HelloReader slice(int n, String field) throws HelloRejection {
    need(n, field);
    HelloReader sub = new HelloReader(buf, pos, n);
    pos += n;
    return sub;
  }

  /** Refuses bytes left over after the last field a length prefix said it holds. */
  void expectEnd(String block) throws HelloRejection {
    if (pos != end) {
      throw HelloRejection.malformed("%d stray bytes at the end of %s", end - pos, block);
    }
  }

  private void need(int n, String field) throws HelloRejection {
    if (n < 0 || n > end - pos) {
      throw HelloRejection.malformed(
          "truncated %s: needs %d bytes, %d left in its block", field, n, end - pos);
    }
  }
}
