package dev.egret.listener;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Raw bytes to the proxy port and everything that came back, for tests that must send what no
 * HTTP client would:
 *
 * <pre>
 * RawExchange r = RawExchange.send(egret.proxyPort(), "GET /x HTTP/1.1\r\n\r\n");
 * assertThat(r.closedByPeer()).isTrue();
 * assertThat(r.responses().get(0).status()).isEqualTo(400);
 * </pre>
 *
 * <p>It writes the request, then reads until Egret closes the connection or the deadline
 * passes; {@link #closedByPeer()} tells which.
 */
public final class RawExchange {
  private static final Duration DEADLINE = Duration.ofSeconds(10);

  private final byte[] received;
  private final boolean closedByPeer;

  private RawExchange(byte[] received, boolean closedByPeer) {
    this.received = received;
    this.closedByPeer = closedByPeer;
  }

  /** One response as read off the wire: status, header lines and the body. */
  public record Response(int status, List<String> headerLines, String body) {
    /** The first value of a header, name compared case-insensitively. */
    public Optional<String> header(String name) {
      String prefix = name.toLowerCase(Locale.ROOT) + ":";
      return headerLines.stream()
          .filter(l -> l.toLowerCase(Locale.ROOT).startsWith(prefix))
          .map(l -> l.substring(prefix.length()).trim())
          .findFirst();
    }
  }

  /** Sends {@code request} (ISO-8859-1) and reads until Egret closes or 10 s pass. */
  public static RawExchange send(int port, String request) throws IOException {
    return send(port, request.getBytes(StandardCharsets.ISO_8859_1));
  }

  public static RawExchange send(int port, byte[] request) throws IOException {
    try (Socket s = new Socket("127.0.0.1", port)) {
      s.setSoTimeout((int) DEADLINE.toMillis());
      OutputStream out = s.getOutputStream();
      try {
        out.write(request);
        out.flush();
      } catch (SocketException e) {
        // Egret may refuse and close before the whole request is written; read what it said.
      }
      InputStream in = s.getInputStream();
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      byte[] buf = new byte[8192];
      long deadline = System.nanoTime() + DEADLINE.toNanos();
      while (System.nanoTime() < deadline) {
        int n;
        try {
          n = in.read(buf);
        } catch (SocketTimeoutException e) {
          return new RawExchange(got.toByteArray(), false);
        } catch (SocketException e) {
          // A reset after Egret's answer still means Egret ended the connection.
          return new RawExchange(got.toByteArray(), true);
        }
        if (n < 0) {
          return new RawExchange(got.toByteArray(), true);
        }
        got.write(buf, 0, n);
      }
      return new RawExchange(got.toByteArray(), false);
    }
  }

  /** True when Egret closed the connection (read returned -1, or a reset) before the deadline. */
  public boolean closedByPeer() {
    return closedByPeer;
  }

  public String text() {
    return new String(received, StandardCharsets.ISO_8859_1);
  }

  /** Every complete response received, in order; bodies framed by Content-Length. */
  public List<Response> responses() {
    List<Response> out = new ArrayList<>();
    String text = text();
    int pos = 0;
    while (pos < text.length()) {
      int headEnd = text.indexOf("\r\n\r\n", pos);
      if (headEnd < 0) {
        break;
      }
      String[] lines = text.substring(pos, headEnd).split("\r\n");
      String[] statusLine = lines[0].split(" ", 3);
      List<String> headers = List.of(lines).subList(1, lines.length);
      int length = 0;
      for (String h : headers) {
        if (h.toLowerCase(Locale.ROOT).startsWith("content-length:")) {
          length = Integer.parseInt(h.substring("content-length:".length()).trim());
        }
      }
      int bodyStart = headEnd + 4;
      int bodyEnd = Math.min(text.length(), bodyStart + length);
      out.add(new Response(Integer.parseInt(statusLine[1]), headers,
          text.substring(bodyStart, bodyEnd)));
      pos = bodyEnd;
    }
    return out;
  }

  @Override
  public String toString() {
    return (closedByPeer ? "[closed] " : "[open] ") + text();
  }
}
