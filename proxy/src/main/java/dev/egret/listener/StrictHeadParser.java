package dev.egret.listener;

import dev.egret.listener.RequestTargets;
import dev.egret.exchange.RequestHead;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads one HTTP/1.1 request head strictly (RFC 9110/9112 and docs/security.md, "Strict parsing"):
 * {@code new StrictHeadParser().parse(bytes, len)} returns a {@link RequestHead} or throws a
 * {@link ProxyFailure} of kind {@link ErrorKind#REQUEST_ERROR} whose status is 400, 414 (request
 * line too long), 431 (too many or too large headers), 501 (a transfer coding other than
 * chunked) or 505 (HTTP version), and whose details name the problem in one sentence.
 *
 * <p>Nothing is repaired: a request that two parsers could read two ways (both Content-Length
 * and Transfer-Encoding, folded lines, bare LF, a Host naming another host than the target) is
 * how request smuggling starts, so it is refused. Immutable and thread-safe.
 */
public final class StrictHeadParser {
  public static final int DEFAULT_MAX_REQUEST_LINE_BYTES = 8192;
  /** The documented {@code limits.maxHeaderBytes} default. */
  public static final int DEFAULT_MAX_HEADER_BYTES = 16384;
  public static final int DEFAULT_MAX_HEADER_COUNT = 100;

  private final int maxRequestLineBytes;
  private final int maxHeaderBytes;
  private final int maxHeaderCount;

  public StrictHeadParser() {
    this(DEFAULT_MAX_REQUEST_LINE_BYTES, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_COUNT);
  }

  /**
   * @param maxRequestLineBytes longest request line, without its CRLF; longer answers 414
   * @param maxHeaderBytes most bytes of header lines (CRLFs included, final empty line not);
   *     more answers 431
   * @param maxHeaderCount most header lines; more answers 431
   */
  public StrictHeadParser(int maxRequestLineBytes, int maxHeaderBytes, int maxHeaderCount) {
    if (maxRequestLineBytes < 16 || maxHeaderBytes < 0 || maxHeaderCount < 0) {
      throw new IllegalArgumentException("request head limits are too small");
    }
    this.maxRequestLineBytes = maxRequestLineBytes;
    this.maxHeaderBytes = maxHeaderBytes;
    this.maxHeaderCount = maxHeaderCount;
  }

  public int maxRequestLineBytes() {
    return maxRequestLineBytes;
  }

  public int maxHeaderBytes() {
    return maxHeaderBytes;
  }

  public int maxHeaderCount() {
    return maxHeaderCount;
  }

  /**
   * Parses {@code head[0, len)}: the request line and header lines, each ended by CRLF, then the
   * empty line (CRLF) that ends the head. Leading empty lines must already be dropped.
   */
  public RequestHead parse(byte[] head, int len) {
    return parse(head, len, TargetForm.PROXY);
  }

  /**
   * How request-targets are read. {@link #PROXY}: the proxy port's absolute-form {@code
   * http(s)://} or a CONNECT's {@code host:port}. {@link Origin}: origin-form {@code /path} whose
   * authority is {@code fixed} (the CONNECT a tunnel was opened with) or, when that is null, the
   * {@code Host} header with {@code port} (a transparent listener's destination port).
   */
  public sealed interface TargetForm {
    TargetForm PROXY = new Proxy();

    record Proxy() implements TargetForm {}

    record Origin(RequestHead.Authority fixed, int port) implements TargetForm {}
  }

  /** As {@link #parse(byte[], int)}, reading the target as {@code form} says. */
  public RequestHead parse(byte[] head, int len, TargetForm form) {
    return parse(head, len, form, null);
  }

  /**
   * A request line {@link #checkRequestLine} has passed: its three parts and, on the proxy
   * port, the target's authority (null for origin-form, whose authority comes from elsewhere).
   */
  record Line(String method, String target, String version, RequestHead.Authority authority) {}

  /**
   * As {@link #parse(byte[], int, TargetForm)}; {@code checked}, when not null, is what {@link
   * #checkRequestLine} returned for the same bytes' request line, which is then not split and
   * judged a second time (the decoder checks each line as it arrives). Every other rule applies
   * as without it.
   */
  RequestHead parse(byte[] head, int len, TargetForm form, Line checked) {
    checkLineEndings(head, len);
    if (len < 4 || head[len - 4] != FieldLines.CR || head[len - 3] != FieldLines.LF) {
      throw Refusals.badRequest("request head does not end with an empty line");
    }
    int lineEnd = indexOfCrlf(head, 0, len);
    if (lineEnd > maxRequestLineBytes) {
      throw Refusals.uriTooLong("request line is longer than " + maxRequestLineBytes + " bytes");
    }
    String method;
    String target;
    String version;
    if (checked != null) {
      method = checked.method();
      target = checked.target();
      version = checked.version();
    } else {
      String[] line = requestLine(head, lineEnd);
      method = line[0];
      target = line[1];
      version = line[2];
    }

    List<RequestHead.Header> headers = new ArrayList<>();
    int headerEnd = len - 2;
    int headerStart = lineEnd + 2;
    if (headerEnd - headerStart > maxHeaderBytes) {
      throw Refusals.headersTooLarge("request headers are larger than " + maxHeaderBytes + " bytes");
    }
    for (int pos = headerStart; pos < headerEnd; ) {
      int end = indexOfCrlf(head, pos, headerEnd);
      if (headers.size() == maxHeaderCount) {
        throw Refusals.headersTooLarge("request has more than " + maxHeaderCount + " header fields");
      }
      headers.add(FieldLines.parse(head, pos, end, "header"));
      pos = end + 2;
    }

    RequestHead.Authority authority;
    if (form instanceof TargetForm.Origin origin) {
      if (checked == null) {
        RequestTargets.originForm(method, target);
      }
      authority = origin.fixed() != null ? origin.fixed() : hostAuthority(headers, origin.port());
    } else {
      authority = checked != null ? checked.authority() : RequestTargets.parse(method, target);
    }
    RequestHead.Framing framing = framing(version, headers);
    if (method.equals("CONNECT") && framing.type() != RequestHead.Framing.Type.NONE
        && framing.contentLength() != 0) {
      throw Refusals.badRequest("CONNECT request with a body");
    }
    checkHost(form instanceof TargetForm.Origin ? null : target, authority, headers);
    return new RequestHead(method, target, version, headers, framing, authority);
  }

  /** A transparent listener's destination: the Host header's name, at the listener's port. */
  private static RequestHead.Authority hostAuthority(List<RequestHead.Header> headers, int port) {
    RequestHead.Header host = null;
    for (int k = 0; k < headers.size(); k++) {
      RequestHead.Header h = headers.get(k);
      if (h.name().equalsIgnoreCase("host")) {
        if (host != null) {
          throw Refusals.badRequest("request has more than one Host header");
        }
        host = h;
      }
    }
    if (host == null) {
      throw Refusals.badRequest("no Host header: a transparent listener takes the destination "
          + "from it");
    }
    RequestTargets.HostPort named;
    try {
      named = RequestTargets.hostPort(host.value(), false);
    } catch (ProxyFailure e) {
      throw Refusals.badRequest("Host header is not a valid host[:port]: " + e.details());
    }
    if (named.port() >= 0 && named.port() != port) {
      throw Refusals.badRequest("Host header " + host.value() + " names port " + named.port()
          + ", but this listener stands for port " + port);
    }
    return new RequestHead.Authority("http", named.host(), port);
  }

  /**
   * Checks the request line alone, {@code head[0, len)} with its CRLF, as soon as it has
   * arrived: an HTTP/0.9 request never sends a header section, so waiting for the empty line
   * would leave it hanging until the idle timeout; and a bad target is refused before its
   * headers are read. {@link #parse} checks the same line again with the rest of the head.
   */
  Line checkRequestLine(byte[] head, int len) {
    return checkRequestLine(head, len, TargetForm.PROXY);
  }

  /** Returns the checked line, which {@link #parse(byte[], int, TargetForm, Line)} takes. */
  Line checkRequestLine(byte[] head, int len, TargetForm form) {
    checkLineEndings(head, len);
    int lineEnd = len - 2;
    if (lineEnd > maxRequestLineBytes) {
      throw Refusals.uriTooLong("request line is longer than " + maxRequestLineBytes + " bytes");
    }
    String[] line = requestLine(head, lineEnd);
    RequestHead.Authority authority = null;
    if (form instanceof TargetForm.Origin) {
      RequestTargets.originForm(line[0], line[1]);
    } else {
      authority = RequestTargets.parse(line[0], line[1]);
    }
    return new Line(line[0], line[1], line[2], authority);
  }

  /** Every LF must follow a CR and every CR must precede an LF, anywhere in the head. */
  private static void checkLineEndings(byte[] head, int len) {
    for (int i = 0; i < len; i++) {
      if (head[i] == FieldLines.LF && (i == 0 || head[i - 1] != FieldLines.CR)) {
        throw Refusals.badRequest("bare LF (a line ending without CR) in the request head");
      }
      if (head[i] == FieldLines.CR && (i + 1 == len || head[i + 1] != FieldLines.LF)) {
        throw Refusals.badRequest("bare CR (a CR not followed by LF) in the request head");
      }
    }
  }

  /** Index of the CR of the first CRLF in [from, to); line endings are already checked. */
  private static int indexOfCrlf(byte[] head, int from, int to) {
    for (int i = from; i < to; i++) {
      if (head[i] == FieldLines.CR) {
        return i;
      }
    }
    return to;
  }

  private static String[] requestLine(byte[] head, int end) {
    for (int i = 0; i < end; i++) {
      int b = head[i] & 0xff;
      if (b >= 0x80) {
        throw Refusals.badRequest("non-ASCII byte in the request line");
      }
      if (FieldLines.isControl(b)) {
        throw Refusals.badRequest("control character in the request line");
      }
    }
    // The line split at every space, as String.split(" ", -1) would, read from the bytes: the
    // two spaces' places and how many there are.
    int first = -1;
    int second = -1;
    int spaces = 0;
    for (int i = 0; i < end; i++) {
      if (head[i] == ' ') {
        if (spaces == 0) {
          first = i;
        } else if (spaces == 1) {
          second = i;
        }
        spaces++;
      }
    }
    if (spaces == 1 && first > 0 && first < end - 1) {
      throw Refusals.badRequest("HTTP/0.9 request (no HTTP version) on the proxy port");
    }
    if (spaces != 2 || first == 0 || second == first + 1 || second == end - 1) {
      throw Refusals.badRequest(
          "request line is not METHOD SP target SP HTTP-version with single spaces");
    }
    String[] parts = {
        new String(head, 0, first, StandardCharsets.US_ASCII),
        new String(head, first + 1, second - first - 1, StandardCharsets.US_ASCII),
        new String(head, second + 1, end - second - 1, StandardCharsets.US_ASCII)};
    if (parts[0].equals("PRI") && parts[1].equals("*") && parts[2].equals("HTTP/2.0")) {
      throw Refusals.versionNotSupported(
          "HTTP/2 connection preface on the proxy port; Egret speaks HTTP/1.1 to clients");
    }
    checkVersion(parts[2]);
    for (int i = 0; i < parts[0].length(); i++) {
      if (!FieldLines.isTokenChar(parts[0].charAt(i))) {
        throw Refusals.badRequest("invalid character '" + parts[0].charAt(i) + "' in the method");
      }
    }
    return parts;
  }

  private static void checkVersion(String version) {
    if (version.equals("HTTP/1.1") || version.equals("HTTP/1.0")) {
      return;
    }
    if (version.matches("HTTP/[0-9](\\.[0-9])?")) {
      throw Refusals.versionNotSupported(
          "HTTP version " + version + " is not supported; use HTTP/1.1");
    }
    throw Refusals.badRequest("malformed HTTP version in the request line");
  }

  private static RequestHead.Framing framing(String version, List<RequestHead.Header> headers) {
    String contentLength = null;
    String transferEncoding = null;
    int lengths = 0;
    int encodings = 0;
    for (int k = 0; k < headers.size(); k++) {
      RequestHead.Header h = headers.get(k);
      // Compared in place: a lower-cased copy of every name would be garbage on every request.
      String name = h.name();
      if (name.equalsIgnoreCase("content-length")) {
        lengths++;
        contentLength = h.value();
      } else if (name.equalsIgnoreCase("transfer-encoding")) {
        encodings++;
        transferEncoding = h.value();
      }
    }
    if (lengths > 0 && encodings > 0) {
      throw Refusals.badRequest("request has both Content-Length and Transfer-Encoding");
    }
    if (lengths > 1) {
      throw Refusals.badRequest("request has a repeated Content-Length header");
    }
    if (encodings > 0) {
      if (version.equals("HTTP/1.0")) {
        throw Refusals.badRequest("Transfer-Encoding on an HTTP/1.0 request");
      }
      if (encodings > 1) {
        throw Refusals.badRequest("request has a repeated Transfer-Encoding header");
      }
      if (transferEncoding.isEmpty()) {
        throw Refusals.badRequest("empty Transfer-Encoding header");
      }
      if (!transferEncoding.equalsIgnoreCase("chunked")) {
        throw Refusals.notImplemented(
            "Transfer-Encoding other than a single chunked is not supported");
      }
      return RequestHead.Framing.CHUNKED;
    }
    if (lengths == 1) {
      return RequestHead.Framing.contentLength(contentLength(contentLength));
    }
    return RequestHead.Framing.NONE;
  }

  private static long contentLength(String value) {
    if (value.isEmpty()) {
      throw Refusals.badRequest("empty Content-Length header");
    }
    char first = value.charAt(0);
    if (first == '+' || first == '-') {
      throw Refusals.badRequest("signed Content-Length header");
    }
    long length = 0;
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c == ' ' || c == '\t') {
        throw Refusals.badRequest("white space inside the Content-Length header");
      }
      if (c < '0' || c > '9') {
        throw Refusals.badRequest("Content-Length header is not a decimal number");
      }
      if (length > (Long.MAX_VALUE - (c - '0')) / 10) {
        throw Refusals.badRequest("Content-Length header overflows");
      }
      length = length * 10 + (c - '0');
    }
    return length;
  }

  /**
   * RFC 9112 lets the absolute-form target win over Host; Egret is stricter and refuses a
   * Host naming anything else, because a next hop might route on Host. Host is optional.
   */
  private static void checkHost(
      String uri, RequestHead.Authority target, List<RequestHead.Header> headers) {
    boolean originForm = uri == null;
    RequestHead.Header host = null;
    for (int k = 0; k < headers.size(); k++) {
      RequestHead.Header h = headers.get(k);
      if (h.name().equalsIgnoreCase("host")) {
        if (host != null) {
          throw Refusals.badRequest("request has more than one Host header");
        }
        host = h;
      }
    }
    if (host == null || (!originForm && sameAuthority(uri, target.scheme(), host.value()))) {
      return;
    }
    RequestTargets.HostPort named;
    try {
      named = RequestTargets.hostPort(host.value(), false);
    } catch (ProxyFailure e) {
      throw Refusals.badRequest("Host header is not a valid host[:port]: " + e.details());
    }
    // CONNECT has no scheme; a Host without a port there stands for 443, the tunnelled https.
    int defaultPort = target.scheme() == null ? 443 : RequestTargets.defaultPort(target.scheme());
    // In origin-form the authority came from the CONNECT or the listener, which named the port;
    // a Host without one (what most clients send) names the same place.
    int port = named.port() >= 0 ? named.port() : originForm ? target.port() : defaultPort;
    if (!named.host().equalsIgnoreCase(target.host()) || port != target.port()) {
      throw Refusals.badRequest("Host header " + host.value()
          + " names another host than the request target " + target.host() + ":" + target.port());
    }
  }

  /**
   * True when {@code host} is, character for character, the authority of the request-target
   * {@code uri} (the whole target for a CONNECT, whose {@code scheme} is null): it then names
   * the same host and port, read by the same rules the target already passed, and needs no
   * second parse. What most clients send; anything else is parsed and compared.
   */
  private static boolean sameAuthority(String uri, String scheme, String host) {
    if (host.isEmpty()) {
      return false;
    }
    if (scheme == null) {
      return uri.equals(host);
    }
    int start = scheme.length() + 3;
    int end = start + host.length();
    return end <= uri.length() && uri.regionMatches(start, host, 0, host.length())
        && (end == uri.length() || uri.charAt(end) == '/' || uri.charAt(end) == '?');
  }
}
