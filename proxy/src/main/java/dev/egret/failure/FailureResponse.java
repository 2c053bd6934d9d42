package dev.egret.failure;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;

/**
 * The one place that turns a {@link ProxyFailure} into what the client receives: the status, a
 * {@code Proxy-Status} header (RFC 9209) naming {@code egret} and the error type, and a short
 * JSON body {@code {"error", "details", "host", "rule"}}. The downstream connection's responses and
 * the raw bytes written where no HTTP encoder runs (a connection over the cap) come from here.
 */
public final class FailureResponse {
  private static final JsonFactory JSON = new JsonFactory();
  /** The challenge of a 407: gateway clients authenticate with Basic (name:token). */
  static final String PROXY_CHALLENGE = "Basic realm=\"egret\"";

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
   * The answer as a Netty response, for the downstream connection's encoder. {@code close} adds
   * {@code Connection: close}; the caller closes after writing it. Otherwise keep-alive stays as
   * the client asked, so a denied request on a kept-alive connection costs nothing more.
   */
  public static FullHttpResponse response(ProxyFailure f, String host, String rule,
      boolean close) {
    byte[] body = body(f, host, rule).getBytes(StandardCharsets.UTF_8);
    FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1,
        HttpResponseStatus.valueOf(f.status(), reasonPhrase(f.status())),
        Unpooled.wrappedBuffer(body));
    r.headers()
        .set("Proxy-Status", proxyStatus(f))
        .set("Content-Type", "application/json")
        .set("Cache-Control", "no-store")
        .setInt("Content-Length", body.length);
    if (f.kind() == ErrorKind.PROXY_AUTHENTICATION_REQUIRED) {
      r.headers().set("Proxy-Authenticate", PROXY_CHALLENGE);
    }
    if (close) {
      r.headers().set("Connection", "close");
    }
    return r;
  }

  /** The whole HTTP/1.1 response as bytes, always with {@code Connection: close}. */
  public static ByteBuf raw(ProxyFailure f, String host, String rule) {
    byte[] body = body(f, host, rule).getBytes(StandardCharsets.UTF_8);
    String head = "HTTP/1.1 " + f.status() + " " + reasonPhrase(f.status()) + "\r\n"
        + "Proxy-Status: " + proxyStatus(f) + "\r\n"
        + "Content-Type: application/json\r\n"
        + "Cache-Control: no-store\r\n"
        + "Content-Length: " + body.length + "\r\n"
        + (f.kind() == ErrorKind.PROXY_AUTHENTICATION_REQUIRED
            ? "Proxy-Authenticate: " + PROXY_CHALLENGE + "\r\n" : "")
        + "Connection: close\r\n\r\n";
    return Unpooled.wrappedBuffer(head.getBytes(StandardCharsets.US_ASCII), body);
  }

  static String reasonPhrase(int status) {
    return switch (status) {
      case 400 -> "Bad Request";
      case 403 -> "Forbidden";
      case 407 -> "Proxy Authentication Required";
      case 408 -> "Request Timeout";
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
