package dev.egret.upgrade;

import dev.egret.exchange.RequestHead;
import dev.egret.policy.HeaderRules;
import dev.egret.trace.HopTrace;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufUtil;
import java.util.List;
import java.util.Set;

/**
 * Writes the upstream request head straight from the client's parsed head into one buffer, with
 * only the rewrites a proxy must make: the request line in origin-form, {@code Host}, the
 * hop-by-hop headers left out ({@link HopByHop}), the rule's injected headers in place of the
 * client's, Egret's {@code Via}, and the framing of the body as the client sent it. Header names
 * keep their case and order; no header map is built.
 *
 * <p>Values are ISO-8859-1, as the strict parser decoded them, so each char is written as the
 * one byte it came from.
 */
final class RequestWriter {
  private static final byte[] CRLF = {'\r', '\n'};
  private static final byte[] COLON_SP = {':', ' '};

  private RequestWriter() {}

  static ByteBuf head(ByteBufAllocator alloc, RequestHead head, String pathAndQuery,
      String hostHeader, HeaderRules rules, HopTrace trace, String via) {
    List<RequestHead.Header> headers = head.headers();
    int size = head.method().length() + pathAndQuery.length() + hostHeader.length()
        + via.length() + 96;
    for (int i = 0; i < headers.size(); i++) {
      RequestHead.Header h = headers.get(i);
      size += h.name().length() + h.value().length() + 4;
    }
    ByteBuf buf = alloc.buffer(size);
    ByteBufUtil.writeAscii(buf, head.method());
    buf.writeByte(' ');
    ByteBufUtil.writeAscii(buf, pathAndQuery);
    buf.writeBytes(HTTP11);
    field(buf, "Host", hostHeader);
    Set<String> named = HopByHop.connectionTokens(headers);
    boolean replacing = !rules.isEmpty();
    boolean viaSeen = false;
    for (int i = 0; i < headers.size(); i++) {
      RequestHead.Header h = headers.get(i);
      String name = h.name();
      if (HopByHop.dropped(name, named)) {
        viaSeen |= name.equalsIgnoreCase("via");
        continue;
      }
      if ((!replacing || !rules.replaces(name)) && (trace == null || !trace.rewrites(name))) {
        field(buf, name, h.value());
      }
    }
    if (trace != null) {
      // A rule's injected header of the same name wins over the trace's.
      trace.addHeaders((name, value) -> {
        if (!replacing || !rules.replaces(name)) {
          field(buf, name, value);
        }
      });
    }
    if (replacing) {
      rules.addTo((name, value) -> field(buf, name, value));
    }
    ByteBufUtil.writeAscii(buf, "Via: ");
    if (viaSeen) {
      for (int i = 0; i < headers.size(); i++) {
        RequestHead.Header h = headers.get(i);
        if (h.name().equalsIgnoreCase("via")) {
          ByteBufUtil.writeAscii(buf, h.value());
          ByteBufUtil.writeAscii(buf, ", ");
        }
      }
    }
    ByteBufUtil.writeAscii(buf, via);
    buf.writeBytes(CRLF);
    RequestHead.Framing framing = head.framing();
    if (framing.type() == RequestHead.Framing.Type.CONTENT_LENGTH) {
      ByteBufUtil.writeAscii(buf, "Content-Length: ");
      ByteBufUtil.writeAscii(buf, Long.toString(framing.contentLength()));
      buf.writeBytes(CRLF);
    } else if (framing.type() == RequestHead.Framing.Type.CHUNKED) {
      ByteBufUtil.writeAscii(buf, "Transfer-Encoding: chunked\r\n");
    }
    buf.writeBytes(CRLF);
    return buf;
  }

  private static final byte[] HTTP11 = {' ', 'H', 'T', 'T', 'P', '/', '1', '.', '1', '\r', '\n'};

  private static void field(ByteBuf buf, String name, String value) {
    ByteBufUtil.writeAscii(buf, name);
    buf.writeBytes(COLON_SP);
    ByteBufUtil.writeAscii(buf, value);
    buf.writeBytes(CRLF);
  }

  /** The chunk-size line that precedes {@code length} bytes of chunked body. */
  static ByteBuf chunkHeader(ByteBufAllocator alloc, int length) {
    ByteBuf b = alloc.buffer(10);
    ByteBufUtil.writeAscii(b, Integer.toHexString(length));
    b.writeBytes(CRLF);
    return b;
  }
}
