package dev.egret.listener;

import dev.egret.exchange.RequestHead;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The strict head rules as a table: named raw request, expected status, words of the details. */
class StrictHeadParserTest {
  private static final String GET = "GET http://a.example/ HTTP/1.1";
  private static final String POST = "POST http://a.example/ HTTP/1.1";

  private final StrictHeadParser parser = new StrictHeadParser();

  /** A head: request line, then header lines, each with CRLF, then the empty line. */
  static String head(String requestLine, String... headers) {
    StringBuilder sb = new StringBuilder(requestLine).append("\r\n");
    for (String h : headers) {
      sb.append(h).append("\r\n");
    }
    return sb.append("\r\n").toString();
  }

  static Arguments refused(String name, String raw, int status, String details) {
    return Arguments.of(name, raw, status, details);
  }

  static Stream<Arguments> refusals() {
    List<Arguments> cases = new ArrayList<>(List.of(
        // Body framing
        refused("CL and TE", head(POST, "Content-Length: 5", "Transfer-Encoding: chunked"),
            400, "request has both Content-Length and Transfer-Encoding"),
        refused("TE then CL", head(POST, "Transfer-Encoding: chunked", "Content-Length: 5"),
            400, "both Content-Length and Transfer-Encoding"),
        refused("repeated identical CL", head(POST, "Content-Length: 5", "content-length: 5"),
            400, "repeated Content-Length"),
        refused("CL list", head(POST, "Content-Length: 5, 5"), 400, "not a decimal number"),
        refused("plus-signed CL", head(POST, "Content-Length: +5"), 400, "signed Content-Length"),
        refused("negative CL", head(POST, "Content-Length: -1"), 400, "signed Content-Length"),
        refused("spaced CL", head(POST, "Content-Length: 1 0"), 400, "white space inside"),
        refused("hex CL", head(POST, "Content-Length: 0x10"), 400, "not a decimal number"),
        refused("hex letters CL", head(POST, "Content-Length: 1a"), 400, "not a decimal number"),
        refused("empty CL", head(POST, "Content-Length:"), 400, "empty Content-Length"),
        refused("CL just over Long.MAX", head(POST, "Content-Length: 9223372036854775808"),
            400, "overflows"),
        refused("CL far over Long.MAX", head(POST, "Content-Length: 99999999999999999999999"),
            400, "overflows"),
        refused("TE gzip", head(POST, "Transfer-Encoding: gzip"), 501, "other than a single chunked"),
        refused("TE gzip, chunked", head(POST, "Transfer-Encoding: gzip, chunked"),
            501, "other than a single chunked"),
        refused("TE chunked, chunked", head(POST, "Transfer-Encoding: chunked, chunked"),
            501, "other than a single chunked"),
        refused("TE xchunked", head(POST, "Transfer-Encoding: xchunked"),
            501, "other than a single chunked"),
        refused("TE repeated", head(POST, "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
            400, "repeated Transfer-Encoding"),
        refused("TE empty", head(POST, "Transfer-Encoding: "), 400, "empty Transfer-Encoding"),
        refused("TE with vertical tab", head(POST, "Transfer-Encoding: chunked\u000b"),
            400, "control character in the value of header Transfer-Encoding"),
        refused("TE on HTTP/1.0", head("POST http://a.example/ HTTP/1.0",
            "Transfer-Encoding: chunked"), 400, "Transfer-Encoding on an HTTP/1.0 request"),
        refused("CONNECT with a body", head("CONNECT a.example:443 HTTP/1.1", "Content-Length: 5"),
            400, "CONNECT request with a body"),

        // Line syntax
        refused("obs-fold", head(GET, "X-A: 1", " 2"), 400, "obsolete line folding"),
        refused("obs-fold with tab", head(GET, "X-A: 1", "\t2"), 400, "obsolete line folding"),
        refused("bare LF after a header", GET + "\r\nX-A: 1\nX-B: 2\r\n\r\n", 400, "bare LF"),
        refused("bare LF after the request line", GET + "\nX-A: 1\r\n\r\n", 400, "bare LF"),
        refused("bare LF head", GET + "\n\n", 400, "bare LF"),
        refused("bare CR in a value", head(GET, "X-A: a\rb"), 400, "bare CR"),
        refused("bare CR in the request line", head("GET http://a.example/\r HTTP/1.1"),
            400, "bare CR"),
        refused("NUL in a value", head(GET, "X-A: a\u0000b"), 400,
            "NUL or control character in the value of header X-A"),
        refused("NUL in a name", head(GET, "X-\u0000A: b"), 400,
            "NUL or control character in a header name"),
        refused("control char in a value", head(GET, "X-A: a\u0001b"), 400, "control character"),
        refused("DEL in a value", head(GET, "X-A: a\u007fb"), 400, "control character"),
        refused("space before colon", head(GET, "Host : a.example"),
            400, "white space before a header's colon"),
        refused("tab before colon", head(GET, "Host\t: a.example"),
            400, "white space before a header's colon"),
        refused("invalid header name", head(GET, "X(A): 1"),
            400, "invalid character '(' in a header name"),
        refused("space inside a header name", head(GET, "X A: 1"),
            400, "invalid character ' ' in a header name"),
        refused("header without colon", head(GET, "NoColon"), 400, "without a colon"),
        refused("empty header name", head(GET, ": x"), 400, "empty header name"),
        refused("invalid method", head("G(T http://a.example/ HTTP/1.1"),
            400, "invalid character '(' in the method"),
        refused("no empty line at the end", GET + "\r\nHost: a.example\r\n",
            400, "does not end with an empty line"),

        // Request line and version
        refused("HTTP/0.9", head("GET http://a.example/"), 400, "HTTP/0.9"),
        refused("double space", head("GET  http://a.example/ HTTP/1.1"), 400, "single spaces"),
        refused("space in target", head("GET http://a.example/a b HTTP/1.1"), 400, "single spaces"),
        refused("trailing space", head(GET + " "), 400, "single spaces"),
        refused("lower-case version", head("GET http://a.example/ http/1.1"),
            400, "malformed HTTP version"),
        refused("HTTP/1.2", head("GET http://a.example/ HTTP/1.2"), 505, "HTTP/1.2 is not supported"),
        refused("HTTP/2.0", head("GET http://a.example/ HTTP/2.0"), 505, "HTTP/2.0 is not supported"),
        refused("HTTP/2", head("GET http://a.example/ HTTP/2"), 505, "HTTP/2 is not supported"),
        refused("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\n", 505, "HTTP/2 connection preface"),
        refused("non-ASCII in the target", head("GET http://caf\u00e9.example/ HTTP/1.1"),
            400, "non-ASCII byte in the request line"),
        refused("tab in the request line", head("GET\thttp://a.example/ HTTP/1.1"),
            400, "control character in the request line"),

        // Request-target forms
        refused("origin-form", head("GET /path HTTP/1.1", "Host: a.example"), 400,
            "origin-form request on the proxy port; set HTTP_PROXY so the client sends absolute-form"),
        refused("asterisk-form", head("OPTIONS * HTTP/1.1"), 400, "asterisk-form"),
        refused("ftp scheme", head("GET ftp://a.example/ HTTP/1.1"), 400, "scheme other than"),
        refused("authority-form without CONNECT", head("GET a.example:443 HTTP/1.1"),
            400, "neither absolute-form"),
        refused("no host", head("GET http:///path HTTP/1.1"), 400, "without a host"),
        refused("userinfo", head("GET http://user@a.example/ HTTP/1.1"), 400, "userinfo"),
        refused("userinfo with password", head("GET http://u:p@a.example/ HTTP/1.1"),
            400, "userinfo"),
        refused("backslash-at trick", head("GET http://a.example\\@b.example/ HTTP/1.1"),
            400, "userinfo"),
        refused("backslash in the host", head("GET http://a.example\\b/ HTTP/1.1"),
            400, "backslash in the host"),
        refused("backslash in the path", head("GET http://a.example/a\\..\\b HTTP/1.1"),
            400, "backslash in the request target"),
        refused("fragment", head("GET http://a.example/p#frag HTTP/1.1"), 400, "fragment"),
        refused("percent in the host", head("GET http://a%2eexample/ HTTP/1.1"),
            400, "percent-encoding in the host"),
        refused("underscore in the host", head("GET http://a_b.example/ HTTP/1.1"),
            400, "invalid character '_' in the host"),
        refused("empty label", head("GET http://a..example/ HTTP/1.1"), 400, "empty label"),
        refused("label over 63", head("GET http://" + "a".repeat(64) + ".example/ HTTP/1.1"),
            400, "not a valid host name"),
        refused("decimal IPv4", head("GET http://2130706433/ HTTP/1.1"), 400, "canonical dotted-quad"),
        refused("octal IPv4", head("GET http://0177.0.0.1/ HTTP/1.1"), 400, "canonical dotted-quad"),
        refused("hex IPv4", head("GET http://0x7f.0.0.1/ HTTP/1.1"), 400, "canonical dotted-quad"),
        refused("short IPv4", head("GET http://127.1/ HTTP/1.1"), 400, "canonical dotted-quad"),
        refused("hex short IPv4", head("GET http://0x7f.1/ HTTP/1.1"), 400, "canonical dotted-quad"),
        refused("hex last label", head("GET http://1.2.3.0x4/ HTTP/1.1"), 400, "canonical dotted-quad"),
        refused("IPv4 with trailing dot", head("GET http://127.0.0.1./ HTTP/1.1"),
            400, "canonical dotted-quad"),
        refused("IPv4 octet over 255", head("GET http://256.0.0.1/ HTTP/1.1"),
            400, "canonical dotted-quad"),
        refused("port 0", head("GET http://a.example:0/ HTTP/1.1"), 400, "outside 1-65535"),
        refused("port 65536", head("GET http://a.example:65536/ HTTP/1.1"), 400, "outside 1-65535"),
        refused("non-digit port", head("GET http://a.example:8o/ HTTP/1.1"),
            400, "port must be a number"),
        refused("six-digit port", head("GET http://a.example:100080/ HTTP/1.1"),
            400, "port must be a number"),
        refused("empty port", head("GET http://a.example:/ HTTP/1.1"), 400, "empty port"),
        refused("unbracketed IPv6", head("GET http://::1/ HTTP/1.1"), 400, "must be in brackets"),
        refused("IPv6 bad char", head("GET http://[::g]/ HTTP/1.1"), 400, "invalid character"),
        refused("IPv6 nine groups", head("GET http://[1:2:3:4:5:6:7:8:9]/ HTTP/1.1"),
            400, "malformed"),
        refused("IPv6 two gaps", head("GET http://[1::2::3]/ HTTP/1.1"), 400, "malformed"),
        refused("IPv6 zone id", head("GET http://[fe80::1%25eth0]/ HTTP/1.1"),
            400, "percent-encoding"),
        refused("IPv6 unclosed", head("GET http://[::1/ HTTP/1.1"), 400, "closing bracket"),

        // Paths an allowlist path rule must not be walked around with
        refused("dot-dot segment", head("GET http://a.example/a/../b HTTP/1.1"), 400, "dot segment"),
        refused("dot segment", head("GET http://a.example/a/./b HTTP/1.1"), 400, "dot segment"),
        refused("trailing dot-dot", head("GET http://a.example/a/.. HTTP/1.1"), 400, "dot segment"),
        refused("encoded dot-dot", head("GET http://a.example/a/%2e%2e/b HTTP/1.1"),
            400, "dot segment"),
        refused("mixed-case encoded dot-dot", head("GET http://a.example/a/%2E./b HTTP/1.1"),
            400, "dot segment"),
        refused("dot-dot with path parameter", head("GET http://a.example/p/..;/admin HTTP/1.1"),
            400, "dot segment"),
        refused("encoded slash", head("GET http://a.example/a%2fb HTTP/1.1"), 400, "encoded slash"),
        refused("upper-case encoded slash", head("GET http://a.example/a%2Fb HTTP/1.1"),
            400, "encoded slash"),
        refused("encoded backslash", head("GET http://a.example/a%5cb HTTP/1.1"),
            400, "encoded backslash"),
        refused("malformed percent-encoding", head("GET http://a.example/a%zz HTTP/1.1"),
            400, "malformed percent-encoding"),

        // CONNECT
        refused("CONNECT with scheme", head("CONNECT https://a.example:443 HTTP/1.1"),
            400, "without a scheme or path"),
        refused("CONNECT with path", head("CONNECT a.example:443/x HTTP/1.1"),
            400, "without a scheme or path"),
        refused("CONNECT without port", head("CONNECT a.example HTTP/1.1"), 400, "port is missing"),
        refused("CONNECT port 0", head("CONNECT a.example:0 HTTP/1.1"), 400, "outside 1-65535"),
        refused("CONNECT port 99999", head("CONNECT a.example:99999 HTTP/1.1"),
            400, "outside 1-65535"),
        refused("CONNECT plus port", head("CONNECT a.example:+443 HTTP/1.1"),
            400, "port must be a number"),
        refused("CONNECT userinfo", head("CONNECT u@a.example:443 HTTP/1.1"), 400, "userinfo"),
        refused("CONNECT unbracketed IPv6", head("CONNECT ::1:443 HTTP/1.1"),
            400, "must be in brackets"),
        refused("CONNECT decimal IPv4", head("CONNECT 2130706433:443 HTTP/1.1"),
            400, "canonical dotted-quad"),

        // Host header
        refused("Host names another host", head(GET, "Host: b.example"), 400, "names another host"),
        refused("Host names another port", head(GET, "Host: a.example:8080"),
            400, "names another host"),
        refused("Host names https port for http", head(GET, "Host: a.example:443"),
            400, "names another host"),
        refused("two Host headers", head(GET, "Host: a.example", "Host: a.example"),
            400, "more than one Host"),
        refused("Host with userinfo", head(GET, "Host: u@a.example"), 400, "not a valid host"),
        refused("Host with a space", head(GET, "Host: a example"), 400, "not a valid host"),
        refused("empty Host", head(GET, "Host:"), 400, "not a valid host"),
        refused("CONNECT Host names another host", head("CONNECT a.example:443 HTTP/1.1",
            "Host: b.example:443"), 400, "names another host"),

        // Limits
        refused("request line too long", head("GET http://a.example/" + "a".repeat(8200) + " HTTP/1.1"),
            414, "request line is longer than 8192 bytes"),
        refused("too many headers", head(GET, manyHeaders(101)), 431, "more than 100 header fields"),
        refused("headers too large", head(GET, "X-Big: " + "b".repeat(16384)),
            431, "larger than 16384 bytes")));
    return cases.stream();
  }

  private static String manyHeaders(int count) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < count; i++) {
      sb.append(i == 0 ? "" : "\r\n").append("X-H").append(i).append(": v");
    }
    return sb.toString();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("refusals")
  void refusesAmbiguousOrMalformedHeads(String name, String raw, int status, String details) {
    ProxyFailure failure = catchThrowableOfType(ProxyFailure.class, () -> parse(raw));

    assertThat(failure).as(name).isNotNull();
    assertThat(failure.kind()).isEqualTo(ErrorKind.REQUEST_ERROR);
    assertThat(failure.status()).as(failure.details()).isEqualTo(status);
    assertThat(failure.details()).contains(details);
  }

  static Stream<Arguments> acceptedHeads() {
    return Stream.of(
        Arguments.of("plain GET", head(GET, "Accept: */*"), "http", "a.example", 80),
        Arguments.of("Host equals target", head(GET, "Host: a.example"), "http", "a.example", 80),
        Arguments.of("Host with explicit default port",
            head(GET, "Host: A.Example:80"), "http", "a.example", 80),
        Arguments.of("target with explicit default port, Host without",
            head("GET http://a.example:80/ HTTP/1.1", "Host: a.example"), "http", "a.example", 80),
        Arguments.of("https target, Host with 443",
            head("GET https://a.example/x HTTP/1.1", "Host: a.example:443"), "https", "a.example", 443),
        Arguments.of("upper-case scheme", head("GET HTTP://a.example/ HTTP/1.1"),
            "http", "a.example", 80),
        Arguments.of("non-default port matching Host",
            head("GET http://a.example:8080/p HTTP/1.1", "Host: a.example:8080"),
            "http", "a.example", 8080),
        Arguments.of("IPv6 literal target",
            head("GET http://[2001:db8::1]:8080/x HTTP/1.1", "Host: [2001:DB8::1]:8080"),
            "http", "[2001:db8::1]", 8080),
        Arguments.of("IPv4-mapped IPv6", head("GET http://[::ffff:1.2.3.4]/ HTTP/1.1"),
            "http", "[::ffff:1.2.3.4]", 80),
        Arguments.of("dotted-quad target", head("GET http://93.184.216.34/ HTTP/1.1"),
            "http", "93.184.216.34", 80),
        Arguments.of("percent-encoded space in the path",
            head("GET http://a.example/a%20b/c.d/..x/%2e%2ex?q=../%2f HTTP/1.1"),
            "http", "a.example", 80),
        Arguments.of("empty path with query", head("GET http://a.example?x=1 HTTP/1.1"),
            "http", "a.example", 80),
        Arguments.of("HTTP/1.0", head("GET http://a.example/ HTTP/1.0"), "http", "a.example", 80),
        Arguments.of("trailing-dot host name", head("GET http://a.example./ HTTP/1.1"),
            "http", "a.example.", 80),
        Arguments.of("HTAB and obs-text in a value", head(GET, "X-A: a\tb\u00e9"),
            "http", "a.example", 80),
        Arguments.of("CONNECT host:443", head("CONNECT a.example:443 HTTP/1.1",
            "Host: a.example:443"), null, "a.example", 443),
        Arguments.of("CONNECT with Host without port", head("CONNECT a.example:443 HTTP/1.1",
            "Host: a.example"), null, "a.example", 443),
        Arguments.of("CONNECT [::1]:443", head("CONNECT [::1]:443 HTTP/1.1"), null, "[::1]", 443),
        Arguments.of("CONNECT with Content-Length 0",
            head("CONNECT a.example:443 HTTP/1.1", "Content-Length: 0"), null, "a.example", 443));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("acceptedHeads")
  void acceptsWellFormedHeads(String name, String raw, String scheme, String host, int port) {
    RequestHead head = parse(raw);

    assertThat(head.authority()).isEqualTo(new RequestHead.Authority(scheme, host, port));
  }

  @Test
  void keepsRequestLineAndHeadersAsSent() {
    RequestHead head = parse(head("GET http://a.example/p?q HTTP/1.1",
        "Host: a.example", "X-Trace:  a b \t", "x-trace: 2"));

    assertThat(head.method()).isEqualTo("GET");
    assertThat(head.target()).isEqualTo("http://a.example/p?q");
    assertThat(head.version()).isEqualTo("HTTP/1.1");
    assertThat(head.headers()).containsExactly(
        new RequestHead.Header("Host", "a.example"),
        new RequestHead.Header("X-Trace", "a b"),
        new RequestHead.Header("x-trace", "2"));
    assertThat(head.header("X-TRACE")).contains("a b");
    assertThat(head.framing()).isEqualTo(RequestHead.Framing.NONE);
    assertThat(head.isConnect()).isFalse();
  }

  @Test
  void readsContentLengthFraming() {
    RequestHead head = parse(head(POST, "Content-Length:  0042 "));

    assertThat(head.framing()).isEqualTo(RequestHead.Framing.contentLength(42));
  }

  @Test
  void readsLargestContentLength() {
    RequestHead head = parse(head(POST, "Content-Length: 9223372036854775807"));

    assertThat(head.framing().contentLength()).isEqualTo(Long.MAX_VALUE);
  }

  @Test
  void readsChunkedFramingCaseInsensitively() {
    RequestHead head = parse(head(POST, "Transfer-Encoding: \tChunked "));

    assertThat(head.framing()).isEqualTo(RequestHead.Framing.CHUNKED);
  }

  @Test
  void marksConnect() {
    RequestHead head = parse(head("CONNECT a.example:443 HTTP/1.1"));

    assertThat(head.isConnect()).isTrue();
    assertThat(head.framing().type()).isEqualTo(RequestHead.Framing.Type.NONE);
  }

  @Test
  void acceptsHeadsExactlyAtTheLimits() {
    StrictHeadParser small = new StrictHeadParser(64, 40, 2);
    String line = "GET http://a.example/" + "a".repeat(64 - 30) + " HTTP/1.1";
    assertThat(line).hasSize(64);
    // Two header lines of 20 bytes each, CRLF included: exactly 40.
    String raw = head(line, "X-A: 1234567890123", "X-B: 1234567890123");

    assertThat(parse(small, raw).headers()).hasSize(2);
    assertThat(catchThrowableOfType(ProxyFailure.class,
        () -> parse(small, head(line + "a", "X-A: 1"))).status()).isEqualTo(414);
    assertThat(catchThrowableOfType(ProxyFailure.class,
        () -> parse(small, head(line, "X-A: 12345678901234", "X-B: 1234567890123")))
        .status()).isEqualTo(431);
    assertThat(catchThrowableOfType(ProxyFailure.class,
        () -> parse(small, head(line, "X-A: 1", "X-B: 2", "X-C: 3"))).status()).isEqualTo(431);
  }

  private RequestHead parse(String raw) {
    return parse(parser, raw);
  }

  private static RequestHead parse(StrictHeadParser p, String raw) {
    // ISO-8859-1 keeps every char below 256 as one byte, so the tables can hold raw octets.
    byte[] bytes = raw.getBytes(StandardCharsets.ISO_8859_1);
    return p.parse(bytes, bytes.length);
  }
}
