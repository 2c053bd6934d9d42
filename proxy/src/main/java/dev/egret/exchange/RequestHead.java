package dev.egret.exchange;

import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * A request head that passed {@link StrictHeadParser}: read {@link #authority()} for where the
 * client wants to go and {@link #framing()} for how its body ends. Header values keep the bytes
 * the client sent (decoded as ISO-8859-1), minus surrounding white space; names keep their case.
 *
 * @param method the request method, a token, case preserved ({@code CONNECT} is case-sensitive)
 * @param target the request-target exactly as sent
 * @param version {@code HTTP/1.1} or {@code HTTP/1.0}
 * @param headers every header field, in the order sent
 * @param framing how the body is delimited
 * @param authority the target's scheme, host and port, already checked against the Host header
 */
public record RequestHead(
    String method,
    String target,
    String version,
    List<Header> headers,
    Framing framing,
    Authority authority) {

  public RequestHead {
    headers = List.copyOf(headers);
  }

  /** One header field line, name as sent, value without leading or trailing white space. */
  public record Header(String name, String value) {}

  /**
   * How a body is delimited: no body, exactly {@code contentLength} bytes, or chunked coding.
   * {@code contentLength} is -1 unless the type is {@link Type#CONTENT_LENGTH}.
   */
  public record Framing(Type type, long contentLength) {
    public static final Framing NONE = new Framing(Type.NONE, -1);
    public static final Framing CHUNKED = new Framing(Type.CHUNKED, -1);

    public enum Type {
      NONE,
      CONTENT_LENGTH,
      CHUNKED
    }

    public static Framing contentLength(long length) {
      return new Framing(Type.CONTENT_LENGTH, length);
    }
  }

  /**
   * Where the request goes. {@code scheme} is {@code "http"} or {@code "https"} (lower case) for
   * an absolute-form target and null for {@code CONNECT}. {@code host} is as written in the
   * target (IPv6 in brackets), not yet normalised; {@code port} is explicit or the scheme's
   * default.
   */
  public record Authority(String scheme, String host, int port) {}

  public boolean isConnect() {
    return method.equals("CONNECT");
  }

  /** The first value of a header, compared case-insensitively by name. */
  public Optional<String> header(String name) {
    // A loop, not a stream with lower-cased copies: tracing looks up two headers per hop.
    for (int i = 0; i < headers.size(); i++) {
      Header h = headers.get(i);
      if (h.name().equalsIgnoreCase(name)) {
        return Optional.of(h.value());
      }
    }
    return Optional.empty();
  }
}
