package dev.egret.tunnel;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;

/**
 * A hand-made {@code CONNECT} over a raw socket, the way curl and the SDKs open a tunnel, so tests
 * can see the proxy's exact answer and then put any bytes (TLS or not) in the tunnel.
 *
 * <pre>
 * ProxyConnect c = ProxyConnect.open(proxyPort, "api.partner.test:" + port);
 * assertThat(c.head()).startsWith("HTTP/1.1 200 Connection Established\r\n");
 * SSLSocket tls = c.tls(context, "api.partner.test", port, "TLSv1.3");
 * </pre>
 */
final class ProxyConnect implements AutoCloseable {
  private final Socket socket;
  private final String head;

  private ProxyConnect(Socket socket, String head) {
    this.socket = socket;
    this.head = head;
  }

  /** Sends {@code CONNECT authority} and reads the answer's head (not its body). */
  static ProxyConnect open(int proxyPort, String authority) throws IOException {
    Socket s = new Socket("127.0.0.1", proxyPort);
    s.setSoTimeout(15_000);
    s.getOutputStream().write(("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority
        + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
    s.getOutputStream().flush();
    return new ProxyConnect(s, readHead(s.getInputStream()));
  }

  /** The response head, status line to the empty line, exactly as sent. */
  String head() {
    return head;
  }

  int status() {
    return Integer.parseInt(head.substring(9, 12));
  }

  Socket socket() {
    return socket;
  }

  /** Starts a TLS client over the tunnel, SNI {@code host}, offering only {@code protocols}. */
  SSLSocket tls(SSLContext context, String host, int port, String... protocols)
      throws IOException {
    SSLSocket ssl = (SSLSocket) context.getSocketFactory().createSocket(socket, host, port, true);
    if (protocols.length > 0) {
      ssl.setEnabledProtocols(protocols);
    }
    ssl.startHandshake();
    return ssl;
  }

  /** The refusal's body, as long as its Content-Length says. */
  String body() throws IOException {
    java.util.regex.Matcher m = java.util.regex.Pattern
        .compile("(?i)\r\ncontent-length: *(\\d+)\r\n").matcher(head);
    if (!m.find()) {
      throw new AssertionError("no Content-Length in " + head);
    }
    byte[] body = socket.getInputStream().readNBytes(Integer.parseInt(m.group(1)));
    return new String(body, StandardCharsets.UTF_8);
  }

  /** Reads until EOF or reset; returns how many bytes came. */
  static long readUntilClosed(InputStream in) {
    long n = 0;
    byte[] buf = new byte[4096];
    try {
      for (int r; (r = in.read(buf)) >= 0; ) {
        n += r;
      }
    } catch (IOException reset) {
      // a reset is a close too
    }
    return n;
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }

  private static String readHead(InputStream in) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    int matched = 0;
    while (matched < 4) {
      int c = in.read();
      if (c < 0) {
        throw new EOFException("proxy closed after " + b.size() + " bytes of head: " + b);
      }
      b.write(c);
      matched = (c == "\r\n\r\n".charAt(matched)) ? matched + 1 : (c == '\r' ? 1 : 0);
    }
    return b.toString(StandardCharsets.ISO_8859_1);
  }
}
