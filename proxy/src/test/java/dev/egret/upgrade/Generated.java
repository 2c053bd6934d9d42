package dev.egret.upgrade;

import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Deterministic test bytes, addressable by position, so a body of any size can be produced in
 * chunks of any size on either side of the proxy without ever holding it whole:
 *
 * <pre>
 * InputStream body = Generated.stream(7, 100 * Generated.MIB);   // for a request publisher
 * Generated.fill(7, offset, chunk, 0, chunk.length);                // for a server writing chunks
 * String expected = Generated.sha256(7, 100 * Generated.MIB);       // what the far side must see
 * </pre>
 */
final class Generated {
  static final long MIB = 1024 * 1024;

  private Generated() {}

  /** Fills {@code buf[from, from+len)} with bytes {@code position...} of stream {@code seed}. */
  static void fill(long seed, long position, byte[] buf, int from, int len) {
    long z = 0;
    for (int i = 0; i < len; i++) {
      long p = position + i;
      if (i == 0 || (p & 7) == 0) {
        // splitmix64 of the 8-byte block index: cheap, and no two blocks repeat.
        z = seed * 0x9E3779B97F4A7C15L + (p >>> 3) + 0x632BE59BD9B4E019L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z ^= z >>> 31;
      }
      buf[from + i] = (byte) (z >>> ((p & 7) * 8));
    }
  }

  /** The first {@code length} bytes of stream {@code seed}, produced as they are read. */
  static InputStream stream(long seed, long length) {
    return new InputStream() {
      private long position;

      @Override
      public int read() {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) {
        if (position >= length) {
          return -1;
        }
        int n = (int) Math.min(len, length - position);
        fill(seed, position, b, off, n);
        position += n;
        return n;
      }
    };
  }

  /** The SHA-256 (hex) of the first {@code length} bytes of stream {@code seed}. */
  static String sha256(long seed, long length) {
    MessageDigest digest = newDigest();
    byte[] chunk = new byte[64 * 1024];
    for (long p = 0; p < length; p += chunk.length) {
      int n = (int) Math.min(chunk.length, length - p);
      fill(seed, p, chunk, 0, n);
      digest.update(chunk, 0, n);
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  static MessageDigest newDigest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }
}
