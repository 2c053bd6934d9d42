package dev.egret.listener;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.ReceivedRequest;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The strict-parsing list (docs/security.md), through a real Egret: each malformed or ambiguous request is
 * sent as raw bytes and must get its status with {@code Proxy-Status: egret;
 * error=http_request_error}, a closed connection, and nothing at the upstream. The upstream is a
 * {@link TlsTestServer} the allowlist admits, which records every request it reads; after each
 * refusal a well-formed request goes through Egret to the same upstream as a barrier, so "the
 * upstream saw nothing" is checked after anything Egret could have sent had arrived.
 */
class StrictParsingTest {
  private static final String HOST = "api.partner.test";
  private static final String DENIED = "other.partner.test";
  @TempDir static Path dir;
  static TlsTestServer upstream;
  static EgretFixture egret;
  /** {@code api.partner.test:PORT}, written as {A} in the cases below. */
  static String authority;

  @BeforeAll
  static void start() throws Exception {
    TestCert root = TestPki.rootCa("Strict Parsing Root").issue();
    upstream = TlsTestServer.https(root.leaf(HOST).issue()).name("partner").start();
    authority = HOST + ":" + upstream.port();
    egret = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1", DENIED, "127.0.0.1"))
        .start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d]
        """.formatted(root.writePem(dir).cert().getFileName(), HOST, upstream.port()));
  }

  @AfterAll
  static void stop() throws Exception {
    if (egret != null) {
      egret.close();
    }
    if (upstream != null) {
      upstream.close();
    }
  }

  private static Arguments refused(String name, int status, String request) {
    return Arguments.of(name, status, request);
  }

  static Stream<Arguments> malformed() {
    String get = "GET http://{A}/x HTTP/1.1\r\nHost: {A}\r\n";
    String post = "POST http://{A}/x HTTP/1.1\r\nHost: {A}\r\n";
    return Stream.of(
        // Framing: anything two parsers could split into different requests.
        refused("Content-Length and Transfer-Encoding", 400, post
            + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        refused("Transfer-Encoding and Content-Length", 400, post
            + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
        refused("repeated Content-Length", 400, post
            + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
        refused("Content-Length list", 400, post + "Content-Length: 5, 5\r\n\r\nhello"),
        refused("signed Content-Length (+)", 400, post + "Content-Length: +5\r\n\r\nhello"),
        refused("signed Content-Length (-)", 400, post + "Content-Length: -1\r\n\r\n"),
        refused("spaced Content-Length", 400, post + "Content-Length: 1 0\r\n\r\n0123456789"),
        refused("hex Content-Length", 400, post + "Content-Length: 0x5\r\n\r\nhello"),
        refused("overflowing Content-Length", 400, post
            + "Content-Length: 99999999999999999999999\r\n\r\nhello"),
        refused("Transfer-Encoding gzip", 501, post
            + "Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n"),
        refused("Transfer-Encoding chunked, chunked", 501, post
            + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
        refused("Transfer-Encoding chunked, identity", 501, post
            + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
        refused("Transfer-Encoding identity, chunked", 501, post
            + "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n"),
        refused("two Transfer-Encoding headers", 400, post
            + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        refused("Transfer-Encoding on HTTP/1.0", 400,
            "POST http://{A}/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        refused("malformed chunk size (not hex)", 400, post
            + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
        refused("malformed chunk size (0x prefix)", 400, post
            + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
        refused("malformed chunk size (white space)", 400, post
            + "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"),
        refused("chunk data without CRLF", 400, post
            + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
        // Field lines.
        refused("obsolete line folding", 400, get + "X-A: one\r\n  two\r\n\r\n"),
        refused("bare LF line endings", 400,
            "GET http://{A}/x HTTP/1.1\nHost: {A}\n\n"),
        refused("bare LF in one header line", 400, get + "X-A: one\nX-B: two\r\n\r\n"),
        refused("NUL in a header value", 400, get + "X-A: a\0b\r\n\r\n"),
        refused("NUL in a header name", 400, get + "X-\0A: b\r\n\r\n"),
        refused("CR in a header value", 400, get + "X-A: a\rb\r\n\r\n"),
        refused("white space before a colon", 400, get + "X-A : b\r\n\r\n"),
        refused("tab before a colon", 400, get + "Content-Length\t: 0\r\n\r\n"),
        // Hosts and request-targets.
        refused("control character in the host", 400,
            "GET http://api.partner\u0001.test/x HTTP/1.1\r\n\r\n"),
        refused("space in the host", 400, "GET http://api partner.test/x HTTP/1.1\r\n\r\n"),
        refused("backslash in the host", 400, "GET http://api\\partner.test/x HTTP/1.1\r\n\r\n"),
        refused("percent-encoding in the host", 400,
            "GET http://api%2epartner.test/x HTTP/1.1\r\n\r\n"),
        refused("userinfo user:pass@host", 400, "GET http://user:pass@{A}/x HTTP/1.1\r\n\r\n"),
        refused("userinfo user@host", 400, "GET http://user@{A}/x HTTP/1.1\r\n\r\n"),
        refused("backslash before @ (http://a\\@b/)", 400,
            "GET http://evil.test\\@{A}/x HTTP/1.1\r\n\r\n"),
        refused("fragment", 400, "GET http://{A}/x#frag HTTP/1.1\r\nHost: {A}\r\n\r\n"),
        refused("origin-form", 400, "GET /x HTTP/1.1\r\nHost: {A}\r\n\r\n"),
        refused("asterisk-form", 400, "OPTIONS * HTTP/1.1\r\nHost: {A}\r\n\r\n"),
        refused("scheme other than http(s)", 400, "GET ftp://{A}/x HTTP/1.1\r\n\r\n"),
        refused("authority-form on GET", 400, "GET {A} HTTP/1.1\r\n\r\n"),
        refused("CONNECT without a port", 400, "CONNECT " + HOST + " HTTP/1.1\r\n\r\n"),
        refused("CONNECT to port 0", 400, "CONNECT " + HOST + ":0 HTTP/1.1\r\n\r\n"),
        refused("CONNECT to port 65536", 400, "CONNECT " + HOST + ":65536 HTTP/1.1\r\n\r\n"),
        refused("CONNECT with a path", 400, "CONNECT {A}/x HTTP/1.1\r\n\r\n"),
        refused("CONNECT in absolute-form", 400, "CONNECT https://{A}/ HTTP/1.1\r\n\r\n"),
        refused("Host naming another host", 400,
            "GET http://{A}/x HTTP/1.1\r\nHost: " + DENIED + "\r\n\r\n"),
        refused("Host naming another port", 400,
            "GET http://{A}/x HTTP/1.1\r\nHost: " + HOST + ":1\r\n\r\n"),
        refused("two Host headers", 400, get + "Host: {A}\r\n\r\n"),
        refused("decimal IPv4 literal", 400, "GET http://2130706433/ HTTP/1.1\r\n\r\n"),
        refused("hex IPv4 literal", 400, "GET http://0x7f.0.0.1/ HTTP/1.1\r\n\r\n"),
        refused("octal IPv4 literal", 400, "GET http://0177.0.0.1/ HTTP/1.1\r\n\r\n"),
        refused("short IPv4 literal", 400, "GET http://127.1/ HTTP/1.1\r\n\r\n"),
        refused("CONNECT to a decimal IPv4 literal", 400,
            "CONNECT 2130706433:443 HTTP/1.1\r\n\r\n"),
        refused("dot segment ..", 400, "GET http://{A}/a/../x HTTP/1.1\r\n\r\n"),
        refused("dot segment .", 400, "GET http://{A}/./x HTTP/1.1\r\n\r\n"),
        refused("encoded dot segment", 400, "GET http://{A}/a/%2e%2E/x HTTP/1.1\r\n\r\n"),
        refused("encoded slash", 400, "GET http://{A}/a%2fb HTTP/1.1\r\n\r\n"),
        refused("backslash in the path", 400, "GET http://{A}/a\\..\\x HTTP/1.1\r\n\r\n"),
        // Versions and protocols.
        refused("HTTP/0.9 request", 400, "GET /\r\n"),
        refused("HTTP/0.9 absolute-form request", 400, "GET http://{A}/x\r\n"),
        refused("HTTP/2 preface", 505, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        refused("HTTP/2.0 request line", 505, "GET http://{A}/x HTTP/2.0\r\n\r\n"),
        refused("HTTP/1.2 request line", 505, "GET http://{A}/x HTTP/1.2\r\n\r\n"),
        refused("lower-case version", 400, "GET http://{A}/x http/1.1\r\n\r\n"),
        refused("two spaces in the request line", 400, "GET  http://{A}/x HTTP/1.1\r\n\r\n"),
        // Limits.
        refused("request line too long", 414,
            "GET http://{A}/" + "a".repeat(9000) + " HTTP/1.1\r\n\r\n"),
        refused("too many header fields", 431, get + "X-N: v\r\n".repeat(101) + "\r\n"),
        refused("header section too large", 431,
            get + "X-Big: " + "b".repeat(16_500) + "\r\n\r\n"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("malformed")
  void refusesAndClosesWithoutForwarding(String name, int status, String template)
      throws Exception {
    int before = upstream.requests().size();
    RawExchange r = RawExchange.send(egret.proxyPort(), template.replace("{A}", authority));

    assertThat(r.responses()).as(r.toString()).isNotEmpty();
    RawExchange.Response answer = r.responses().get(0);
    assertThat(answer.status()).as(r.toString()).isEqualTo(status);
    assertThat(answer.header("Proxy-Status")).as(r.toString())
        .hasValueSatisfying(v -> assertThat(v).startsWith("egret; error=http_request_error"));
    assertThat(answer.header("Connection")).hasValue("close");
    assertThat(answer.body()).contains("\"error\":\"http_request_error\"");
    assertThat(r.responses()).as("only the refusal is answered").hasSize(1);
    assertThat(r.closedByPeer()).as("Egret closed the connection: " + r).isTrue();
    assertThat(upstreamRequestsSince(before)).as("what reached the upstream").isEmpty();
  }

  @Test
  void refusesADeniedRequestPipelinedAfterAnAllowedOne() throws Exception {
    int before = upstream.requests().size();
    RawExchange r = RawExchange.send(egret.proxyPort(),
        "GET http://" + authority + "/first HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"
            + "GET http://" + DENIED + ":" + upstream.port() + "/second HTTP/1.1\r\n"
            + "Host: " + DENIED + ":" + upstream.port() + "\r\nConnection: close\r\n\r\n");

    assertThat(r.responses()).as(r.toString()).hasSize(2);
    assertThat(r.responses().get(0).status()).isEqualTo(200);
    assertThat(r.responses().get(0).body()).isEqualTo("hello from partner");
    RawExchange.Response denied = r.responses().get(1);
    assertThat(denied.status()).isEqualTo(403);
    assertThat(denied.header("Proxy-Status"))
        .hasValueSatisfying(v -> assertThat(v).startsWith("egret; error=http_request_denied"));
    assertThat(r.closedByPeer()).isTrue();
    List<ReceivedRequest> seen = upstreamRequestsSince(before);
    assertThat(seen).extracting(ReceivedRequest::target).containsExactly("/first");
  }

  @Test
  void closesTheConnectionAfterARefusedConnectSoNothingBehindItSkipsTheGuard() throws Exception {
    // After a CONNECT head the guard passes bytes through unparsed (they were meant for the
    // tunnel); were they passed on after the 403, a request behind it would reach Netty's
    // lenient decoder unchecked: here Content-Length with Transfer-Encoding, which Netty resolves
    // instead of refusing.
    int before = upstream.requests().size();
    RawExchange r = RawExchange.send(egret.proxyPort(),
        "CONNECT " + DENIED + ":443 HTTP/1.1\r\nHost: " + DENIED + ":443\r\n\r\n"
            + "POST http://" + authority + "/behind-connect HTTP/1.1\r\nHost: " + authority
            + "\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assertThat(r.responses()).as(r.toString()).extracting(RawExchange.Response::status)
        .containsExactly(403);
    assertThat(r.closedByPeer()).isTrue();
    assertThat(upstreamRequestsSince(before)).isEmpty();
  }

  @Test
  void keepsServingAKeptAliveConnectionAfterADeniedRequest() throws Exception {
    int before = upstream.requests().size();
    RawExchange r = RawExchange.send(egret.proxyPort(),
        "GET http://" + DENIED + ":" + upstream.port() + "/denied HTTP/1.1\r\n\r\n"
            + "GET http://" + authority + "/after HTTP/1.1\r\nConnection: close\r\n\r\n");

    assertThat(r.responses()).as(r.toString()).extracting(RawExchange.Response::status)
        .containsExactly(403, 200);
    assertThat(upstreamRequestsSince(before)).extracting(ReceivedRequest::target)
        .containsExactly("/after");
  }

  @Test
  void forwardsNothingOfAMalformedRequestPipelinedAfterAnAllowedOne() throws Exception {
    int before = upstream.requests().size();
    RawExchange r = RawExchange.send(egret.proxyPort(),
        "GET http://" + authority + "/first HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"
            + "POST http://" + authority + "/smuggled HTTP/1.1\r\nHost: " + authority + "\r\n"
            + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            + "GET http://" + authority + "/inner HTTP/1.1\r\n\r\n");

    List<RawExchange.Response> answers = r.responses();
    assertThat(answers).as(r.toString()).isNotEmpty();
    RawExchange.Response last = answers.get(answers.size() - 1);
    assertThat(last.status()).as(r.toString()).isEqualTo(400);
    assertThat(last.header("Proxy-Status"))
        .hasValueSatisfying(v -> assertThat(v).startsWith("egret; error=http_request_error"));
    assertThat(r.closedByPeer()).isTrue();
    assertThat(answers).as("the allowed first request is answered before the refusal")
        .extracting(RawExchange.Response::status).containsExactly(200, 400);
    assertThat(upstreamRequestsSince(before)).extracting(ReceivedRequest::target)
        .containsExactly("/first");
  }

  @Test
  void stillServesAWellFormedRequest() throws Exception {
    // The control for every refusal above: the same upstream, the same framing, accepted.
    int before = upstream.requests().size();
    RawExchange r = RawExchange.send(egret.proxyPort(),
        "POST http://" + authority + "/ok HTTP/1.1\r\nHost: " + authority + "\r\n"
            + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + "5;ext=1\r\nhello\r\n0\r\n\r\n");
    assertThat(r.responses()).as(r.toString()).extracting(RawExchange.Response::status)
        .containsExactly(200);
    List<ReceivedRequest> seen = upstreamRequestsSince(before);
    assertThat(seen).extracting(ReceivedRequest::target).containsExactly("/ok");
    assertThat(seen.get(0).bodyText()).isEqualTo("hello");
  }

  /**
   * The upstream's requests since {@code before}, after a barrier request has gone through, so
   * anything Egret sent before it has arrived. The barrier itself is left out.
   */
  private static List<ReceivedRequest> upstreamRequestsSince(int before) throws Exception {
    String barrier = "/barrier-" + UUID.randomUUID();
    RawExchange b = RawExchange.send(egret.proxyPort(),
        "GET http://" + authority + barrier + " HTTP/1.1\r\nConnection: close\r\n\r\n");
    assertThat(b.responses()).as("barrier: " + b).extracting(RawExchange.Response::status)
        .containsExactly(200);
    List<ReceivedRequest> seen = upstream.requests();
    List<ReceivedRequest> since = seen.subList(before, seen.size()).stream()
        .filter(q -> !q.target().equals(barrier)).toList();
    assertThat(seen.get(seen.size() - 1).target()).isEqualTo(barrier);
    return since;
  }
}
