package dev.egret.upgrade;

import dev.egret.exchange.RelayedHead;
import dev.egret.upstream.ResponseHead;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.nio.charset.StandardCharsets;

/**
 * Writes the response head for the client straight from the upstream's bytes, the mirror of
 * {@link RequestWriter}: the status line as HTTP/1.1 with the upstream's reason phrase, the header
 * lines as received except the hop-by-hop ones ({@link HopByHop}), Egret's entry appended to
 * {@code Via}, and the framing the relay gives the body. Runs of kept lines are copied as one;
 * no header map is built and nothing is decoded into strings.
 */
final class ResponseWriter {
  private static final byte[] VIA = bytes("via");
  private static final byte[] CONTENT_LENGTH = bytes("content-length");
  private static final byte[] VIA_PREFIX = bytes("Via: ");
  private static final byte[] COMMA_SP = bytes(", ");
  private static final byte[] CHUNKED = bytes("Transfer-Encoding: chunked\r\n");
  private static final byte[] NO_CONTENT = bytes("Content-Length: 0\r\n");
  private static final int CRLF = ('\r' << 8) | '\n';

  private ResponseWriter() {}

  /**
   * The final head, without {@code Connection} and the closing empty line (the downstream
   * connection adds them). {@code ours} is Egret's {@code Via} entry, e.g. {@code 1.1 egret-3f9a};
   * {@code room} more bytes are left free, for a small body to join the head.
   */
  static ByteBuf finalHead(ByteBufAllocator alloc, ResponseHead r, byte[] ours,
      RelayedHead.Framing framing, int room) {
    ByteBuf out = alloc.buffer(r.size() + ours.length + 96 + room);
    r.writeStatusLine(out);
    int status = r.status();
    // As Netty's encoder did: no length on a 204 (RFC 9110 section 8.6), and a 205 has no content
    // whatever the upstream sent (section 15.3.6).
    boolean dropLength = status == 204 || status == 205;
    boolean viaSeen = copyEndToEnd(r, out, dropLength);
    out.writeBytes(VIA_PREFIX);
    if (viaSeen) {
      for (int i = 0; i < r.lineCount(); i++) {
        if (r.nameIs(i, VIA)) {
          r.writeValue(out, i);
          out.writeBytes(COMMA_SP);
        }
      }
    }
    out.writeBytes(ours);
    out.writeShort(CRLF);
    if (framing == RelayedHead.Framing.CHUNKED) {
      out.writeBytes(CHUNKED);
    }
    if (status == 205) {
      out.writeBytes(NO_CONTENT);
    }
    return out;
  }

  /** An interim (1xx) head, whole: end-to-end lines only, no length, and the empty line. */
  static ByteBuf interim(ByteBufAllocator alloc, ResponseHead r) {
    ByteBuf out = alloc.buffer(r.size() + 16);
    r.writeStatusLine(out);
    copyEndToEnd(r, out, true);
    out.writeShort(CRLF);
    return out;
  }

  /** Copies the lines that go on; returns whether a {@code Via} line was left out. */
  private static boolean copyEndToEnd(ResponseHead r, ByteBuf out, boolean dropLength) {
    boolean viaSeen = false;
    int n = r.lineCount();
    int run = 0;
    for (int i = 0; i < n; i++) {
      if (HopByHop.droppedFromResponse(r, i)
          || (dropLength && r.nameLength(i) == 14 && r.nameIs(i, CONTENT_LENGTH))) {
        r.writeLines(out, run, i);
        run = i + 1;
        viaSeen |= r.nameLength(i) == 3 && r.nameIs(i, VIA);
      }
    }
    r.writeLines(out, run, n);
    return viaSeen;
  }

  static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.ISO_8859_1);
  }
}
