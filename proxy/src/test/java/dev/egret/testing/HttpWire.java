package dev.egret.testing;

import dev.egret.testing.ReceivedRequest.Header;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The test server's HTTP/1.1: just enough to read what a proxy forwards (Content-Length or
 * chunked bodies, {@code Expect: 100-continue}) and to answer it. Lenient on purpose: it records
 * what arrived, it is not the thing under test.
 */
final class HttpWire {
  private static final int MAX_HEAD = 64 * 1024;

  private HttpWire() {}

  /** Thrown when the bytes are not an HTTP/1.x request (a TLS ClientHello on a plain port). */
  static final class NotHttpException extends IOException {
    NotHttpException(String message) {
      super(message);
    }
  }

  /** Reads one request; empty when the client closed the connection between requests. */
  static Optional<ReceivedRequest> read(InputStream in, OutputStream out, String tlsProtocol,
      Optional<String> sni) throws IOException {
    int first = in.read();
    if (first < 0) {
      return Optional.empty();
    }
    if (first < 'A' || first > 'Z') {
      throw new NotHttpException(String.format("first byte 0x%02x is not an HTTP method", first));
    }
    String head = readHead(in, first);
    String[] lines = head.split("\r\n");
    String[] requestLine = lines[0].split(" ", 3);
    if (requestLine.length != 3) {
      throw new NotHttpException("malformed request line: " + lines[0]);
    }
    List<Header> headers = new ArrayList<>();
    for (int i = 1; i < lines.length; i++) {
      int colon = lines[i].indexOf(':');
      if (colon <= 0) {
        throw new NotHttpException("malformed header line: " + lines[i]);
      }
      headers.add(new Header(lines[i].substring(0, colon), lines[i].substring(colon + 1).trim()));
    }
    ReceivedRequest partial = new ReceivedRequest(requestLine[0], requestLine[1], requestLine[2],
        List.copyOf(headers), new byte[0], tlsProtocol, sni);
    if (partial.header("Expect").filter(v -> v.equalsIgnoreCase("100-continue")).isPresent()) {
      out.write("HTTP/1.1 100 Continue\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
      out.flush();
    }
    byte[] body = readBody(in, partial);
    return Optional.of(new ReceivedRequest(partial.method(), partial.target(), partial.version(),
        partial.headers(), body, tlsProtocol, sni));
  }

  /** Whether the connection may carry another request after this one. */
  static boolean keepAlive(ReceivedRequest request) {
    Optional<String> connection = request.header("Connection");
    if (connection.filter(v -> v.toLowerCase().contains("close")).isPresent()) {
      return false;
    }
    return !request.version().equals("HTTP/1.0")
        || connection.filter(v -> v.toLowerCase().contains("keep-alive")).isPresent();
  }

  /**
   * Answers with {@code hello from <name>} and headers echoing what was received: the method,
   * target, Host, TLS protocol and the header names in order.
   */
  static void respond(OutputStream out, ReceivedRequest request, int status, String serverName,
      boolean keepAlive) throws IOException {
    boolean bodyless = status == 204 || status == 304;
    byte[] body = bodyless ? new byte[0]
        : ("hello from " + serverName).getBytes(StandardCharsets.UTF_8);
    StringBuilder head = new StringBuilder()
        .append("HTTP/1.1 ").append(status).append(' ').append(reason(status)).append("\r\n");
    if (!bodyless) {
      head.append("Content-Type: text/plain; charset=utf-8\r\n")
          .append("Content-Length: ").append(body.length).append("\r\n");
    }
    head
        .append("X-Echo-Method: ").append(request.method()).append("\r\n")
        .append("X-Echo-Target: ").append(request.target()).append("\r\n")
        .append("X-Echo-Host: ").append(request.header("Host").orElse("")).append("\r\n")
        .append("X-Echo-Tls: ").append(request.tlsProtocol()).append("\r\n")
        .append("X-Echo-Header-Names: ")
        .append(String.join(", ", request.headers().stream().map(Header::name).toList()))
        .append("\r\n")
        .append("Connection: ").append(keepAlive ? "keep-alive" : "close").append("\r\n\r\n");
    out.write(head.toString().getBytes(StandardCharsets.UTF_8));
    if (!request.method().equals("HEAD")) {
      out.write(body);
    }
    out.flush();
  }

  /** What a plain HTTP server says to bytes that are not HTTP, e.g. a TLS ClientHello. */
  static void rejectNotHttp(OutputStream out) throws IOException {
    byte[] body = "not an HTTP request".getBytes(StandardCharsets.US_ASCII);
    out.write(("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: "
        + body.length + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
    out.write(body);
    out.flush();
  }

  private static String readHead(InputStream in, int first) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    head.write(first);
    // The last four bytes read, to spot the CRLF CRLF that ends the head.
    int window = first;
    while (window != 0x0D0A0D0A) {
      int b = in.read();
      if (b < 0) {
        throw new NotHttpException("connection closed inside the request head");
      }
      head.write(b);
      if (head.size() > MAX_HEAD) {
        throw new NotHttpException("request head longer than " + MAX_HEAD + " bytes");
      }
      window = (window << 8) | b;
    }
    String text = head.toString(StandardCharsets.ISO_8859_1);
    return text.substring(0, text.length() - 4);
  }

  private static byte[] readBody(InputStream in, ReceivedRequest request) throws IOException {
    if (request.header("Transfer-Encoding").filter(v -> v.equalsIgnoreCase("chunked"))
        .isPresent()) {
      return readChunked(in);
    }
    Optional<String> length = request.header("Content-Length");
    if (length.isEmpty()) {
      return new byte[0];
    }
    return readExactly(in, Integer.parseInt(length.get()));
  }

  private static byte[] readChunked(InputStream in) throws IOException {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    while (true) {
      String sizeLine = readLine(in);
      int semicolon = sizeLine.indexOf(';');
      int size = Integer.parseInt(
          (semicolon < 0 ? sizeLine : sizeLine.substring(0, semicolon)).trim(), 16);
      if (size == 0) {
        // Trailers, if any, end with an empty line.
        while (!readLine(in).isEmpty()) {
          continue;
        }
        return body.toByteArray();
      }
      body.write(readExactly(in, size));
      readLine(in);
    }
  }

  private static String readLine(InputStream in) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    int b;
    while ((b = in.read()) != '\n') {
      if (b < 0) {
        throw new NotHttpException("connection closed inside a chunked body");
      }
      if (b != '\r') {
        line.write(b);
      }
    }
    return line.toString(StandardCharsets.ISO_8859_1);
  }

  private static byte[] readExactly(InputStream in, int length) throws IOException {
    byte[] bytes = in.readNBytes(length);
    if (bytes.length != length) {
      throw new NotHttpException("connection closed after " + bytes.length + " of " + length
          + " body bytes");
    }
    return bytes;
  }

  private static String reason(int status) {
    return switch (status) {
      case 200 -> "OK";
      case 201 -> "Created";
      case 204 -> "No Content";
      case 400 -> "Bad Request";
      case 404 -> "Not Found";
      case 500 -> "Internal Server Error";
      case 503 -> "Service Unavailable";
      default -> "Status " + status;
    };
  }
}
