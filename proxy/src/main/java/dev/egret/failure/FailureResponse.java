package dev.egret.failure;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;

/**
 * The one place that turns a {@link ProxyFailure} into what the client receives: the status, a
 * {@code Proxy-Status} header (RFC 9209) naming {@code egret} and the error type, and a short
 * JSON body {@code {"error", "details", "host", "rule"}}. Both the Vert.x response path and the
 * raw-bytes path (strict parsing, before Vert.x has a request) go through here.
 */
public final class FailureResponse {
  private static final JsonFactory JSON = new JsonFactory();

  private FailureResponse() {}

  /** The {@code Proxy-Status} value: {@code egret; error=TYPE; details="..."}. */
  public static String proxyStatus(ProxyFailure f) {
    return "egret; error=" + f.kind().proxyStatusError() + "; details=" + sfString(f.details());
  }

  /** The JSON body. {@code host} and {@code rule} may be null and are then left out. */
  public static String body(ProxyFailure f, String host, String rule) {
    StringWriter w = new StringWriter();
    try (JsonGenerator g = JSON.createGenerator(w)) {
      g.writeStartObject();
      g.writeStringField("error", f.kind().proxyStatusError());
      g.writeStringField("details", f.details());
      if (host != null) {
        g.writeStringField("host", host);
      }
      if (rule != null) {
        g.writeStringField("rule", rule);
      }
      g.writeEndObject();
    } catch (IOException e) {
      throw new IllegalStateException("writing JSON to a string cannot fail", e);
    }
    return w.append('\n').toString();
  }

  /**
   * Answers on a Vert.x request whose response has not started. {@code close} closes the client
   * connection after the answer (strict-parsing refusals); otherwise keep-alive stays as the
   * client asked, so a denied request on a kept-alive connection costs nothing more.
   */
  public static void send(HttpServerRequest request, ProxyFailure f, String host, String rule,
      boolean close) {
    HttpServerResponse response = request.response();
    if (response.headWritten()) {
      // Too late for a status: the response has started, so the only honest signal is a reset.
      response.reset();
      return;
    }
    Buffer body = Buffer.buffer(body(f, host, rule));
    response.setStatusCode(f.status())
        .putHeader("Proxy-Status", proxyStatus(f))
        .putHeader("Content-Type", "application/json")
        .putHeader("Cache-Control", "no-store")
        .putHeader("Content-Length", String.valueOf(body.length()));
    if (close) {
      response.putHeader("Connection", "close");
      response.end(body).onComplete(done -> request.connection().close());
    } else {
      response.end(body);
    }
  }

  /** The whole HTTP/1.1 response as bytes, always with {@code Connection: close}. */
  public static ByteBuf raw(ProxyFailure f, String host, String rule) {
    byte[] body = body(f, host, rule).getBytes(StandardCharsets.UTF_8);
    String head = "HTTP/1.1 " + f.status() + " " + reasonPhrase(f.status()) + "\r\n"
        + "Proxy-Status: " + proxyStatus(f) + "\r\n"
        + "Content-Type: application/json\r\n"
        + "Cache-Control: no-store\r\n"
        + "Content-Length: " + body.length + "\r\n"
        + "Connection: close\r\n\r\n";
    return Unpooled.wrappedBuffer(head.getBytes(StandardCharsets.US_ASCII), body);
  }

  static String reasonPhrase(int status) {
    return switch (status) {
      case 400 -> "Bad Request";
      case 403 -> "Forbidden";
      case 411 -> "Length Required";
      case 414 -> "URI Too Long";
      case 431 -> "Request Header Fields Too Large";
      case 501 -> "Not Implemented";
      case 502 -> "Bad Gateway";
      case 503 -> "Service Unavailable";
      case 504 -> "Gateway Timeout";
      case 505 -> "HTTP Version Not Supported";
      case 508 -> "Loop Detected";
      default -> "Error";
    };
  }

  /** An RFC 8941 sf-string: quoted, with {@code "} and {@code \} escaped, printable ASCII only. */
  static String sfString(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '"' || c == '\\') {
        b.append('\\').append(c);
      } else if (c >= 0x20 && c < 0x7f) {
        b.append(c);
      } else {
        b.append('?');
      }
    }
    return b.append('"').toString();
  }
}
