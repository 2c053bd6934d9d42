package dev.egret.upgrade;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.RecordingTelemetry;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Egret's own response parser on the upgrade path, against an upstream on a real TLS socket that
 * writes exactly the bytes a case gives it: every response that is not sound HTTP/1.1 (bad chunk
 * sizes, obs-fold, framing given two ways, control characters in values, an oversized head, ...)
 * is a 502 {@code http_protocol_error} whose details name the problem, and never reaches the
 * client; sound ones are relayed with their hop-by-hop headers left out, Egret's {@code Via}
 * added and the body framed again, also when the head arrives one byte per write.
 */
class ResponseParsingTest {
  private static final String HOST = "127.0.0.1";
  private static final Duration WAIT = Duration.ofSeconds(10);

  @TempDir static Path dir;
  static SSLServerSocket upstream;
  /** The bytes the upstream answers the next request with; it then closes the connection. */
  static final AtomicReference<String> script = new AtomicReference<>();
  /** Writes the answer one byte per write and flush (a head split across many reads). */
  static volatile boolean drip;
  /** Keeps each connection for further requests instead of closing after one answer. */
  static volatile boolean keepOpen;
  static final AtomicInteger accepted = new AtomicInteger();
  static final AtomicInteger paths = new AtomicInteger();
  static RecordingTelemetry seen;
  static SSLContext serverTls;
  /** An upstream whose TLS runs over a socket of its own, so it can reset the TCP connection. */
  static java.net.ServerSocket resetting;
  static EgretFixture egret;

  @BeforeAll
  static void start() throws Exception {
    TestCert root = TestPki.rootCa("Response Parsing Root").issue();
    TestCert leaf = root.leaf(HOST).issue();
    SSLContext server = SSLContext.getInstance("TLS");
    server.init(leaf.keyManagerFactory().getKeyManagers(), null, null);
    upstream = (SSLServerSocket) server.getServerSocketFactory()
        .createServerSocket(0, 50, InetAddress.getByName(HOST));
    serverTls = server;
    resetting = new java.net.ServerSocket(0, 50, InetAddress.getByName(HOST));
    Thread t = new Thread(ResponseParsingTest::serve, "scripted-upstream");
    t.setDaemon(true);
    t.start();
    seen = new RecordingTelemetry();
    egret = EgretFixture.builder().telemetry(seen).start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        limits: {maxHeaderBytes: 4096}
        timeouts: {response: 5s}
        allow:
          - host: 127.0.0.1
            ports: [%d, %d]
        """.formatted(root.writePem(dir).cert().getFileName(), upstream.getLocalPort(),
        resetting.getLocalPort()));
  }

  @AfterAll
  static void stop() throws Exception {
    resetting.close();
    egret.close();
    upstream.close();
  }

  private static void serve() {
    while (!upstream.isClosed()) {
      try {
        Socket s = upstream.accept();
        accepted.incrementAndGet();
        Thread t = new Thread(() -> answer(s), "scripted-connection");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        // closed: the loop ends
      }
    }
  }

  /**
   * Reads a request head and writes the script; closes then, unless {@link #keepOpen}: then it
   * answers each further head on the connection the same way.
   */
  private static void answer(Socket socket) {
    try (Socket s = socket) {
      InputStream in = s.getInputStream();
      do {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int matched = 0;
        while (matched < 4) {
          int b = in.read();
          if (b < 0) {
            return;
          }
          head.write(b);
          matched = (b == "\r\n\r\n".charAt(matched)) ? matched + 1 : (b == '\r' ? 1 : 0);
        }
        byte[] answer = script.get().getBytes(StandardCharsets.ISO_8859_1);
        OutputStream out = s.getOutputStream();
        if (drip) {
          for (byte b : answer) {
            out.write(b);
            out.flush();
          }
        } else {
          out.write(answer);
          out.flush();
        }
      } while (keepOpen);
    } catch (IOException e) {
      // Egret closed first: the connection is done
    }
  }

  /** One request on a downstream connection of its own; returns all the client got. */
  private static String exchange(String method, String path, String version) throws Exception {
    try (Socket s = new Socket(HOST, egret.proxyPort())) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write((method + " http://" + HOST + ":" + upstream.getLocalPort() + path + " "
          + version + "\r\nHost: " + HOST + ":" + upstream.getLocalPort()
          + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      return new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
    }
  }

  private static String get(String path) throws Exception {
    return exchange("GET", path, "HTTP/1.1");
  }

  private static Hop hopFor(String path) throws InterruptedException {
    return seen.awaitHop(h -> h.url != null && h.url.endsWith(path), WAIT);
  }

  private static String path(String name) {
    return "/" + name + "-" + paths.incrementAndGet();
  }

  static Stream<Arguments> malformed() {
    String ok = "HTTP/1.1 200 OK\r\n";
    String chunked = ok + "Transfer-Encoding: chunked\r\n\r\n";
    return Stream.of(
        Arguments.of("chunk size not hex", chunked + "zz\r\nhello\r\n0\r\n\r\n",
            "chunk size 'zz' is not hexadecimal"),
        Arguments.of("negative chunk size", chunked + "-5\r\nhello\r\n0\r\n\r\n",
            "chunk size '-5' is not hexadecimal"),
        Arguments.of("chunk size with a prefix", chunked + "0x5\r\nhello\r\n0\r\n\r\n",
            "chunk size '0x5' is not hexadecimal"),
        Arguments.of("chunk size then junk", chunked + "5 x\r\nhello\r\n0\r\n\r\n",
            "chunk size '5 x' is not hexadecimal"),
        Arguments.of("chunk size overflowing", chunked
            + "fffffffffffffffff\r\nhello\r\n0\r\n\r\n", "chunk size of the response is too large"),
        Arguments.of("chunk size line ending in a bare LF", chunked + "5\nhello\r\n0\r\n\r\n",
            "bare LF"),
        Arguments.of("obs-fold", ok + "X-A: one\r\n  two\r\nContent-Length: 2\r\n\r\nok",
            "obs-fold"),
        Arguments.of("Content-Length and chunked", ok + "Content-Length: 5\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "both Content-Length and Transfer-Encoding"),
        Arguments.of("two equal Content-Lengths", ok + "Content-Length: 5\r\nContent-Length: 5"
            + "\r\n\r\nhello", "more than one Content-Length"),
        Arguments.of("a Content-Length list", ok + "Content-Length: 5, 5\r\n\r\nhello",
            "Content-Length '5, 5' is not a number"),
        Arguments.of("a signed Content-Length", ok + "Content-Length: +5\r\n\r\nhello",
            "Content-Length '+5' is not a number"),
        Arguments.of("a coding before chunked", ok + "Transfer-Encoding: gzip, chunked\r\n\r\n"
            + "5\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding 'gzip, chunked'"),
        Arguments.of("chunked twice", ok + "Transfer-Encoding: chunked\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "Transfer-Encoding 'chunked, chunked'"),
        Arguments.of("Transfer-Encoding in HTTP/1.0", "HTTP/1.0 200 OK\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "HTTP/1.0 response"),
        Arguments.of("bare CR in a value", ok + "X-A: a\rb\r\nContent-Length: 5\r\n\r\nhello",
            "holds a bare CR in its value"),
        Arguments.of("NUL in a value", ok + "X-A: a\0b\r\nContent-Length: 5\r\n\r\nhello",
            "control character 0x00"),
        Arguments.of("a line ending in a bare LF", ok + "X-A: a\nContent-Length: 5\r\n\r\nhello",
            "bare LF"),
        Arguments.of("whitespace before the colon", ok + "X-A : a\r\nContent-Length: 5\r\n\r\n"
            + "hello", "'X-A' is followed by whitespace"),
        Arguments.of("a header without a name", ok + ": a\r\nContent-Length: 5\r\n\r\nhello",
            "has no name"),
        Arguments.of("a status outside 100..599", "HTTP/1.1 600 Odd\r\nContent-Length: 5\r\n\r\n"
            + "hello", "status code 600 is outside 100..599"),
        Arguments.of("HTTP/2 in a status line", "HTTP/2 200 OK\r\nContent-Length: 5\r\n\r\n"
            + "hello", "does not start with an HTTP/1.1 status line"),
        Arguments.of("a head larger than the limit", ok + ("X-Filler: " + "f".repeat(100)
            + "\r\n").repeat(200) + "Content-Length: 5\r\n\r\nhello", "larger than 16384 bytes"),
        Arguments.of("a head cut off by a close", ok + "Content-Length: 5\r\nX-A: a",
            "closed in the middle of a response head"),
        Arguments.of("a negative Content-Length", ok + "Content-Length: -5\r\n\r\nhello",
            "Content-Length '-5' is not a number"),
        Arguments.of("a Content-Length with inner space", ok + "Content-Length: 1 5\r\n\r\n"
            + "hello", "Content-Length '1 5' is not a number"),
        Arguments.of("a Content-Length past a long", ok + "Content-Length: "
            + "99999999999999999999\r\n\r\nhello", "is not a number Egret accepts"),
        Arguments.of("an empty Content-Length", ok + "Content-Length:\r\n\r\nhello",
            "Content-Length '' is not a number"),
        Arguments.of("a hex Content-Length", ok + "Content-Length: 0x5\r\n\r\nhello",
            "Content-Length '0x5' is not a number"),
        Arguments.of("16 significant hex digits", chunked + "1000000000000005\r\nhello\r\n"
            + "0\r\n\r\n", "chunk size of the response is too large"),
        Arguments.of("a bare CR in a chunk extension", chunked + "5;a=b\rc\r\nhello\r\n"
            + "0\r\n\r\n", "chunk extension of the response holds the control character 0x0D"),
        Arguments.of("an LF inside a chunk extension", chunked + "5;a=\"\n\"\r\nhello\r\n"
            + "0\r\n\r\n", "bare LF"),
        Arguments.of("a chunk-size line that never ends", chunked + "0".repeat(5000),
            "chunk-size line of the response is longer than 4096 bytes"),
        Arguments.of("an unknown coding", ok + "Transfer-Encoding: identity\r\n\r\nhello",
            "Transfer-Encoding 'identity'"),
        Arguments.of("a bare CR in the reason", "HTTP/1.1 200 O\rK\r\nContent-Length: 5\r\n"
            + "\r\nhello", "status line holds a bare CR"),
        Arguments.of("a bare CR ending a line", ok + "X-A: a\r\rContent-Length: 5\r\n\r\n"
            + "hello", "bare CR"),
        Arguments.of("a NUL in a name", ok + "X\0A: a\r\nContent-Length: 5\r\n\r\nhello",
            "followed by the character 0x00"),
        Arguments.of("DEL in a value", ok + "X-A: a\u007fb\r\nContent-Length: 5\r\n\r\nhello",
            "control character 0x7F"),
        Arguments.of("a status line in lower case", "http/1.1 200 OK\r\nContent-Length: 5\r\n"
            + "\r\nhello", "does not start with an HTTP/1.1 status line"),
        Arguments.of("a two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 5\r\n\r\nhello",
            "status code is not three digits"),
        Arguments.of("a head that never ends", ok + "X-A: " + "a".repeat(20_000),
            "larger than"),
        Arguments.of("trailers larger than the limit", chunked + "0\r\n"
            + ("X-T: " + "t".repeat(100) + "\r\n").repeat(200) + "\r\n",
            "trailers are larger than"),
        Arguments.of("leading CRLF before the status line", "\r\n" + ok
            + "Content-Length: 5\r\n\r\nhello", "does not start with an HTTP/1.1 status line"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("malformed")
  void refusesAMalformedResponseWith502NamingTheProblem(String name, String answer,
      String details) throws Exception {
    script.set(answer);
    String path = path("malformed");

    String got = get(path);

    assertThat(got).startsWith("HTTP/1.1 502").contains("error=http_protocol_error")
        .doesNotContain("hello");
    Hop hop = hopFor(path);
    assertThat(hop.error).isEqualTo(ErrorKind.UPSTREAM_PROTOCOL_ERROR);
    assertThat(hop.errorDetails).contains(details);
  }

  static Stream<Arguments> brokenAfterTheStart() {
    String chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    return Stream.of(
        Arguments.of("chunk longer than its size", chunked + "3\r\nhello\r\n0\r\n\r\n",
            "broke off after 3 bytes", "not followed by CRLF"),
        Arguments.of("malformed trailer", chunked + "5\r\nhello\r\n0\r\nno colon\r\n\r\n",
            "broke off after 5 bytes", "trailer line of the response is not a header field"),
        Arguments.of("NUL in a trailer", chunked + "5\r\nhello\r\n0\r\nX-Sum: a\0\r\n\r\n",
            "broke off after 5 bytes", "control character 0x00"));
  }

  /**
   * A body that turns out malformed after some of it was relayed: too late for a 502, so the
   * client's response is cut off (its last chunk never sent) and the hop records why.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("brokenAfterTheStart")
  void cutsOffAResponseWhoseBodyTurnsOutMalformed(String name, String answer, String brokeOff,
      String details) throws Exception {
    script.set(answer);
    String path = path("broken");

    String got = get(path);

    assertThat(got).startsWith("HTTP/1.1 200 OK\r\n").doesNotEndWith("0\r\n\r\n");
    Hop hop = hopFor(path);
    assertThat(hop.error).isEqualTo(ErrorKind.UPSTREAM_PROTOCOL_ERROR);
    assertThat(hop.errorDetails).contains(brokeOff).contains(details);
  }

  @Test
  void relaysAHeadThatArrivesOneByteAtATime() throws Exception {
    script.set("HTTP/1.1 200 Fine\r\nX-Kept: a\r\nKeep-Alive: timeout=5\r\nConnection: x-hop, "
        + "keep-alive\r\nX-Hop: gone\r\nVia: 1.1 cdn\r\nX-Also-Kept: b\r\nContent-Length: 5\r\n"
        + "\r\nhello");
    drip = true;
    String path = path("drip");
    String got;
    try {
      got = get(path);
    } finally {
      drip = false;
    }

    assertThat(got).startsWith("HTTP/1.1 200 Fine\r\nX-Kept: a\r\n").endsWith("\r\n\r\nhello")
        .contains("X-Also-Kept: b\r\n").contains("Content-Length: 5\r\n")
        .containsPattern("\r\nVia: 1\\.1 cdn, 1\\.1 egret-[^\r]+\r\n")
        .doesNotContain("X-Hop").doesNotContain("Keep-Alive").doesNotContain("x-hop");
    assertThat(hopFor(path).error).isNull();
  }

  static Stream<Arguments> strayAfterTheEnd() {
    return Stream.of(
        Arguments.of("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-N: 1\r\n\r\nhello",
            200),
        Arguments.of("HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-N: 1\r\n\r\n"
            + "5\r\nhello\r\n0\r\n\r\n", 200),
        Arguments.of("GET", "HTTP/1.1 304 Not Modified\r\nX-N: 1\r\nContent-Length: 5\r\n\r\n"
            + "hello", 304),
        Arguments.of("GET", "HTTP/1.1 200 OK\r\nX-N: 1\r\nContent-Length: 2\r\n\r\nhello",
            200),
        Arguments.of("GET", "HTTP/1.1 200 OK\r\nX-N: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "2\r\nhe\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!", 200));
  }

  /** Bytes past a response's end never become the next request's answer: HEAD, 304, length. */
  @ParameterizedTest(name = "{0} {2}: {1}")
  @MethodSource("strayAfterTheEnd")
  void neverAnswersTheNextRequestWithBytesPastAResponsesEnd(String method, String answer,
      int status) throws Exception {
    script.set(answer);
    keepOpen = true;
    int before = accepted.get();
    String last = path("stray-next");
    try (Socket s = new Socket(HOST, egret.proxyPort())) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      InputStream in = s.getInputStream();
      String target = "http://" + HOST + ":" + upstream.getLocalPort();
      for (int i = 0; i < 2; i++) {
        out.write((method + " " + target + (i == 0 ? path("stray-first") : last) + " HTTP/1.1\r\n"
            + "Host: " + HOST + ":" + upstream.getLocalPort() + "\r\n\r\n")
            .getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
        RawResponse r = RawResponse.read(in, method.equals("HEAD"));
        assertThat(r.status()).as("request %d", i).isEqualTo(status);
        assertThat(r.header("x-n")).as("request %d", i).isEqualTo("1");
        assertThat(r.body()).as("request %d", i).doesNotContain("evil").isIn("", "he");
      }
    } finally {
      keepOpen = false;
    }
    assertThat(accepted.get() - before).as("a fresh upstream connection for the second")
        .isEqualTo(2);
    assertThat(hopFor(last).error).isNull();
  }

  @Test
  void neverReusesAnUpstreamConnectionWithStrayBytesAfterAResponse() throws Exception {
    // A 204 has no body; the upstream sends one anyway. Read as the start of the next answer, it
    // would fail the next request, which did nothing wrong; the connection is closed instead.
    script.set("HTTP/1.1 204 No Content\r\nX-N: 1\r\n\r\nstray");
    keepOpen = true;
    int before = accepted.get();
    try (Socket s = new Socket(HOST, egret.proxyPort())) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      InputStream in = s.getInputStream();
      String target = "http://" + HOST + ":" + upstream.getLocalPort();
      for (int i = 0; i < 2; i++) {
        out.write(("GET " + target + "/stray-" + i + " HTTP/1.1\r\nHost: " + HOST + ":"
            + upstream.getLocalPort() + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
        RawResponse r = RawResponse.read(in, false);
        assertThat(r.status()).as("request %d", i).isEqualTo(204);
        assertThat(r.header("x-n")).isEqualTo("1");
      }
    } finally {
      keepOpen = false;
    }
    assertThat(accepted.get() - before).as("a fresh upstream connection for the second")
        .isEqualTo(2);
    assertThat(hopFor("/stray-1").error).isNull();
  }

  @Test
  void dropsHopByHopHeadersWhateverTheirCase() throws Exception {
    script.set("HTTP/1.1 200 OK\r\nKEEP-alive: timeout=5\r\ntE: trailers\r\nUPGRADE: h2c\r\n"
        + "trailer: X-Sum\r\nProxy-AUTHENTICATE: Basic\r\nPROXY-connection: keep-alive\r\n"
        + "CONNECTION: X-Named, Upgrade\r\nx-NAMED: 1\r\nX-Kept: yes\r\nContent-Length: 5\r\n"
        + "\r\nhello");
    String path = path("hop-case");

    String got = get(path);

    String head = got.substring(0, got.indexOf("\r\n\r\n") + 2).toLowerCase(java.util.Locale.ROOT);
    assertThat(head).startsWith("http/1.1 200 ok\r\n").contains("\r\nx-kept: yes\r\n")
        .contains("\r\ncontent-length: 5\r\n").doesNotContain("keep-alive")
        .doesNotContain("\r\nte:").doesNotContain("upgrade").doesNotContain("trailer")
        .doesNotContain("proxy-").doesNotContain("x-named");
    assertThat(got).endsWith("\r\n\r\nhello");
  }

  /**
   * A body that ends at the close is only whole when the upstream closed; a reset (the upstream
   * crashed mid-body) cuts it off, and the client must not get a last chunk that says it is
   * complete.
   */
  @Test
  void cutsOffACloseDelimitedBodyWhenTheUpstreamResets() throws Exception {
    java.util.concurrent.CountDownLatch relayed = new java.util.concurrent.CountDownLatch(1);
    Thread t = new Thread(() -> {
      try (Socket raw = resetting.accept()) {
        javax.net.ssl.SSLSocket tls = (javax.net.ssl.SSLSocket) serverTls.getSocketFactory()
            .createSocket(raw, null, raw.getPort(), false);
        tls.setUseClientMode(false);
        InputStream in = tls.getInputStream();
        int matched = 0;
        while (matched < 4) {
          int b = in.read();
          if (b < 0) {
            return;
          }
          matched = (b == "\r\n\r\n".charAt(matched)) ? matched + 1 : (b == '\r' ? 1 : 0);
        }
        tls.getOutputStream().write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial"
            .getBytes(StandardCharsets.ISO_8859_1));
        tls.getOutputStream().flush();
        relayed.await(10, java.util.concurrent.TimeUnit.SECONDS);
        raw.setSoLinger(true, 0); // closing the TCP socket under the TLS: a reset, no close_notify
      } catch (IOException | InterruptedException e) {
        // the test fails on what the client got
      }
    }, "resetting-upstream");
    t.setDaemon(true);
    t.start();
    String path = path("reset");
    ByteArrayOutputStream got = new ByteArrayOutputStream();
    try (Socket s = new Socket(HOST, egret.proxyPort())) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write(("GET http://" + HOST + ":" + resetting.getLocalPort() + path
          + " HTTP/1.1\r\nHost: " + HOST + ":" + resetting.getLocalPort() + "\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      s.getOutputStream().flush();
      InputStream in = s.getInputStream();
      byte[] buf = new byte[4096];
      for (int n; (n = in.read(buf)) >= 0; ) {
        got.write(buf, 0, n);
        String so = got.toString(StandardCharsets.ISO_8859_1);
        if (so.contains("partial\r\n")) {
          relayed.countDown();
        }
        if (so.endsWith("\r\n0\r\n\r\n")) {
          break; // the response looks complete; the connection stays open for the next
        }
      }
    } catch (java.net.SocketException e) {
      // Egret reset the client connection: what it got so far is in got
    }
    String text = got.toString(StandardCharsets.ISO_8859_1);
    assertThat(text).startsWith("HTTP/1.1 200 OK\r\n").contains("7\r\npartial\r\n")
        .doesNotEndWith("0\r\n\r\n");
    assertThat(hopFor(path).error).isEqualTo(ErrorKind.RESPONSE_INCOMPLETE);
  }

  static Stream<Arguments> connectionNamingFraming() {
    String ok = "HTTP/1.1 200 OK\r\n";
    return Stream.of(
        Arguments.of("Content-Length", ok + "Connection: content-length, x-gone\r\nX-Gone: 1\r\n"
            + "Content-Length: 5\r\n\r\nhello"),
        Arguments.of("Transfer-Encoding", ok + "Connection: Transfer-Encoding\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Arguments.of("Content-Length, mixed case", ok + "connection: x-gone, CONTENT-length\r\n"
            + "content-LENGTH: 5\r\n\r\nhello"));
  }

  /**
   * A Connection header may name any header as hop-by-hop, but not the body's framing: a
   * response relayed without its length on a kept-alive connection would run into the next.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("connectionNamingFraming")
  void keepsTheFramingWhenTheUpstreamsConnectionHeaderNamesIt(String name, String answer)
      throws Exception {
    script.set(answer);
    try (Socket s = new Socket(HOST, egret.proxyPort())) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      InputStream in = s.getInputStream();
      String target = "http://" + HOST + ":" + upstream.getLocalPort();
      for (int i = 0; i < 2; i++) {
        out.write(("GET " + target + path("named-framing") + " HTTP/1.1\r\nHost: " + HOST + ":"
            + upstream.getLocalPort() + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
        RawResponse r = RawResponse.read(in, false);
        assertThat(r.status()).as("request %d", i).isEqualTo(200);
        assertThat(r.body()).as("request %d", i).isEqualTo("hello");
        assertThat(r.header("x-gone")).isNull();
      }
    }
  }

  static Stream<Arguments> sound() {
    String ok = "HTTP/1.1 200 OK\r\n";
    StringBuilder many = new StringBuilder(ok);
    for (int i = 0; i < 100; i++) {
      many.append("X-H").append(i).append(": v").append(i).append("\r\n");
    }
    return Stream.of(
        Arguments.of("obs-text in the reason", "HTTP/1.1 200 Gr\u00fc\u00dfe\r\nContent-Length: 5"
            + "\r\n\r\nhello", "HTTP/1.1 200 Gr\u00fc\u00dfe\r\n"),
        Arguments.of("a tab in a value", ok + "X-A: a\tb\r\nContent-Length: 5\r\n\r\nhello",
            "X-A: a\tb\r\n"),
        Arguments.of("an empty value", ok + "X-Empty:\r\nContent-Length: 5\r\n\r\nhello",
            "X-Empty:\r\n"),
        Arguments.of("obs-text in a value", ok + "X-A: caf\u00e9\r\nContent-Length: 5\r\n\r\n"
            + "hello", "X-A: caf\u00e9\r\n"),
        Arguments.of("100 headers", many + "Content-Length: 5\r\n\r\nhello", "X-H99: v99\r\n"),
        Arguments.of("a Content-Length with leading zeros", ok + "Content-Length: 0005\r\n\r\n"
            + "hello", "HTTP/1.1 200 OK\r\n"),
        Arguments.of("Transfer-Encoding in mixed case", ok + "transfer-ENCODING: Chunked \r\n"
            + "\r\n5\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: chunked\r\n"),
        Arguments.of("chunk sizes with leading zeros and upper case", ok
            + "Transfer-Encoding: chunked\r\n\r\n00000000000000000003\r\nhel\r\n0002 ;x=1\r\nlo"
            + "\r\n000\r\n\r\n", "Transfer-Encoding: chunked\r\n"),
        Arguments.of("an interim 103 first", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            + ok + "Content-Length: 5\r\n\r\nhello", "HTTP/1.1 103 Early Hints\r\nLink: </a>"
            + "\r\n\r\nHTTP/1.1 200 OK\r\n"));
  }

  /** Responses a conforming server may send, which the strict parser must still relay. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("sound")
  void relaysASoundResponse(String name, String answer, String expected) throws Exception {
    script.set(answer);
    String path = path("sound");

    String got = get(path);

    assertThat(got).contains(expected).doesNotContain("error=");
    InputStream in = new java.io.ByteArrayInputStream(got.getBytes(StandardCharsets.ISO_8859_1));
    RawResponse r = RawResponse.read(in, false);
    while (r.status() < 200) {
      r = RawResponse.read(in, false);
    }
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.body()).isEqualTo("hello");
    assertThat(in.read()).as("nothing after the response").isEqualTo(-1);
    assertThat(hopFor(path).error).isNull();
  }

  @Test
  void dropsChunkExtensionsAndTrailersAndFramesTheBodyAgain() throws Exception {
    script.set("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
        + "5;name=\"v\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n");
    String path = path("extensions");

    String got = get(path);

    assertThat(got).startsWith("HTTP/1.1 200 OK\r\n").contains("Transfer-Encoding: chunked")
        .doesNotContain("name=").doesNotContain("X-Sum").doesNotContain("Trailer:");
    assertThat(got.substring(got.indexOf("\r\n\r\n") + 4))
        .isEqualTo("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  }

  @Test
  void relaysABodyEndedByTheUpstreamsCloseAsChunks() throws Exception {
    script.set("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
    String path = path("close-delimited");

    String got = get(path);

    assertThat(got).startsWith("HTTP/1.1 200 OK\r\n").contains("Transfer-Encoding: chunked")
        .endsWith("\r\n0\r\n\r\n").contains("until the end");
    assertThat(hopFor(path).error).isNull();
  }

  @Test
  void sendsA205WithoutTheContentTheUpstreamWronglySent() throws Exception {
    script.set("HTTP/1.1 205 Reset Content\r\nContent-Length: 5\r\n\r\nhello");
    String path = path("reset");

    String got = get(path);

    assertThat(got).startsWith("HTTP/1.1 205 Reset Content\r\n").contains("Content-Length: 0\r\n")
        .doesNotContain("Content-Length: 5").doesNotContain("hello").endsWith("\r\n\r\n");
  }

  @Test
  void answersAStatusLineWithoutAReasonPhrase() throws Exception {
    script.set("HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok");
    String path = path("no-reason");

    String got = get(path);

    assertThat(got).startsWith("HTTP/1.1 200 \r\n").endsWith("\r\n\r\nok");
  }

  @Test
  void relaysAnHttp10UpstreamAsHttp11() throws Exception {
    script.set("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    String path = path("http10-upstream");

    String got = get(path);

    assertThat(got).startsWith("HTTP/1.1 200 OK\r\n").endsWith("\r\n\r\nok");
    assertThat(hopFor(path).error).isNull();
  }
}
