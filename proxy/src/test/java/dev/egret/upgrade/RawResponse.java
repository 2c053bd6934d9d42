package dev.egret.upgrade;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * One HTTP/1.1 response read off a raw socket, framed exactly as RFC 9112 says and no further,
 * so the next response on a kept-alive connection starts where this one ended. A stray byte
 * (a body on a 204, say) shows up as garbage at the start of the next response.
 *
 * <pre>
 * out.write("HEAD http://h/x HTTP/1.1\r\nHost: h\r\n\r\n".getBytes(...));
 * RawResponse r = RawResponse.read(in, true);   // true: the request was HEAD
 * </pre>
 */
record RawResponse(int status, Map<String, String> headers, byte[] bodyBytes) {

  /** The header's value (names are lower case), or null. */
  String header(String name) {
    return headers.get(name.toLowerCase(Locale.ROOT));
  }

  String body() {
    return new String(bodyBytes, StandardCharsets.UTF_8);
  }

  /** Reads one response; {@code head} says the request was HEAD, so no body follows. */
  static RawResponse read(InputStream in, boolean head) throws IOException {
    String statusLine = line(in);
    if (!statusLine.startsWith("HTTP/1.1 ")) {
      throw new IOException("not a status line: '" + statusLine + "'");
    }
    int status = Integer.parseInt(statusLine.substring(9, 12));
    Map<String, String> headers = new LinkedHashMap<>();
    for (String l = line(in); !l.isEmpty(); l = line(in)) {
      int colon = l.indexOf(':');
      headers.put(l.substring(0, colon).trim().toLowerCase(Locale.ROOT),
          l.substring(colon + 1).trim());
    }
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    boolean noBody = head || status == 204 || status == 304 || status / 100 == 1;
    if (!noBody) {
      String te = headers.get("transfer-encoding");
      String cl = headers.get("content-length");
      if (te != null && te.equalsIgnoreCase("chunked")) {
        for (int size = Integer.parseInt(line(in).trim(), 16); size > 0;
            size = Integer.parseInt(line(in).trim(), 16)) {
          body.write(exactly(in, size));
          line(in);
        }
        line(in); // the empty line after the last chunk (no trailers expected)
      } else if (cl != null) {
        body.write(exactly(in, Integer.parseInt(cl)));
      } else {
        throw new IOException("a response without framing would need a close to end: " + headers);
      }
    }
    return new RawResponse(status, headers, body.toByteArray());
  }

  private static byte[] exactly(InputStream in, int n) throws IOException {
    byte[] b = in.readNBytes(n);
    if (b.length < n) {
      throw new EOFException("body ended after " + b.length + " of " + n + " bytes");
    }
    return b;
  }

  private static String line(InputStream in) throws IOException {
    StringBuilder b = new StringBuilder();
    int c;
    while ((c = in.read()) != '\n') {
      if (c < 0) {
        throw new EOFException("connection closed mid-line after '" + b + "'");
      }
      if (c != '\r') {
        b.append((char) c);
      }
    }
    return b.toString();
  }
}
