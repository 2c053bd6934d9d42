package dev.egret.upgrade;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.RecordingTelemetry;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Upstreams that misbehave on the pooled upstream leg, on real TLS sockets: one that closes a
 * kept-alive connection the moment the next request arrives (the race every pool meets when an
 * upstream's keep-alive timeout ends), one that closes its idle connections, responses framed two
 * ways (Content-Length and chunked, or two Content-Lengths), a bad chunk size, and one that never
 * answers. Each bad answer is a 502 {@code http_protocol_error} and never reaches the client as a
 * response; a closed pooled connection costs a bodiless idempotent request nothing.
 */
class MisbehavingUpstreamTest {
  private static final String HOST = "127.0.0.1";
  private static final Duration WAIT = Duration.ofSeconds(10);

  /** What the upstream does with the n-th request (from 1) on one of its connections. */
  interface Script {
    /** The bytes to answer, or null to close the connection without a word. */
    String answer(int requestOnConnection, String head);
  }

  /** A script answer that starts with this is written, then the connection closes. */
  private static final String CLOSE_AFTER = "close-after:";

  @TempDir static Path dir;
  static SSLServerSocket upstream;
  static final AtomicReference<Script> script = new AtomicReference<>();
  static final AtomicInteger accepted = new AtomicInteger();
  static final AtomicInteger heads = new AtomicInteger();
  /** Counted down when the upstream has closed a connection on its own. */
  static final AtomicReference<CountDownLatch> upstreamClosed = new AtomicReference<>();
  static RecordingTelemetry seen;
  static EgretFixture egret;

  @BeforeAll
  static void start() throws Exception {
    TestCert root = TestPki.rootCa("Misbehaving Root").issue();
    TestCert leaf = root.leaf(HOST).issue();
    SSLContext server = SSLContext.getInstance("TLS");
    server.init(leaf.keyManagerFactory().getKeyManagers(), null, null);
    upstream = (SSLServerSocket) server.getServerSocketFactory()
        .createServerSocket(0, 50, InetAddress.getByName(HOST));
    Thread t = new Thread(MisbehavingUpstreamTest::serve, "misbehaving-upstream");
    t.setDaemon(true);
    t.start();
    seen = new RecordingTelemetry();
    egret = EgretFixture.builder().telemetry(seen).start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        timeouts: {response: 1s, idle: 60s}
        allow:
          - host: 127.0.0.1
            ports: [%d]
        """.formatted(root.writePem(dir).cert().getFileName(), upstream.getLocalPort()));
  }

  @AfterAll
  static void stop() throws Exception {
    egret.close();
    upstream.close();
  }

  @BeforeEach
  void fresh() {
    upstreamClosed.set(new CountDownLatch(1));
  }

  private static void serve() {
    while (!upstream.isClosed()) {
      try {
        Socket s = upstream.accept();
        accepted.incrementAndGet();
        Thread t = new Thread(() -> answer(s), "misbehaving-connection");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        // closed: the loop ends
      }
    }
  }

  /** Reads request heads (and Content-Length bodies) and answers each as the script says. */
  private static void answer(Socket socket) {
    try (Socket s = socket) {
      InputStream in = s.getInputStream();
      for (int n = 1; ; n++) {
        String head = readHead(in);
        if (head == null) {
          return; // Egret closed it
        }
        heads.incrementAndGet();
        int length = contentLength(head);
        in.readNBytes(length);
        String answer = script.get().answer(n, head);
        if (answer == null) {
          s.close();
          upstreamClosed.get().countDown();
          return;
        }
        boolean close = answer.startsWith(CLOSE_AFTER);
        s.getOutputStream().write(answer.substring(close ? CLOSE_AFTER.length() : 0)
            .getBytes(StandardCharsets.ISO_8859_1));
        s.getOutputStream().flush();
        if (close) {
          s.close();
          upstreamClosed.get().countDown();
          return;
        }
      }
    } catch (IOException e) {
      // the connection is done
    }
  }

  private static String readHead(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    int matched = 0;
    while (matched < 4) {
      int b = in.read();
      if (b < 0) {
        return null;
      }
      head.write(b);
      matched = (b == "\r\n\r\n".charAt(matched)) ? matched + 1 : (b == '\r' ? 1 : 0);
    }
    return head.toString(StandardCharsets.ISO_8859_1);
  }

  private static int contentLength(String head) {
    for (String line : head.split("\r\n")) {
      if (line.toLowerCase().startsWith("content-length:")) {
        return Integer.parseInt(line.substring(15).trim());
      }
    }
    return 0;
  }

  private static String ok(String body) {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + body.length() + "\r\n\r\n" + body;
  }

  /** One request on a downstream connection of its own; returns all the client got. */
  private static String exchange(String method, String path, String body) throws Exception {
    try (Socket s = new Socket(HOST, egret.proxyPort())) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write((method + " http://" + HOST + ":" + upstream.getLocalPort() + path + " HTTP/1.1"
          + "\r\nHost: " + HOST + ":" + upstream.getLocalPort() + "\r\nConnection: close\r\n"
          + (body == null ? "" : "Content-Length: " + body.length() + "\r\n") + "\r\n"
          + (body == null ? "" : body)).getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      return new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
    }
  }

  private static Hop hopFor(String path) throws InterruptedException {
    return seen.awaitHop(h -> h.url != null && h.url.endsWith(path), WAIT);
  }

  /**
   * Two requests on one kept-alive downstream connection, so both use the pools of one event loop,
   * where the second finds the connection the first used (the most recently used goes first).
   * Runs {@code between} after the first answer; returns both answers.
   */
  private static RawResponse[] twoOnOneConnection(String first, String second, String body,
      Runnable between) throws Exception {
    try (Socket s = new Socket(HOST, egret.proxyPort())) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      InputStream in = s.getInputStream();
      String target = "http://" + HOST + ":" + upstream.getLocalPort();
      out.write(("GET " + target + first + " HTTP/1.1\r\nHost: " + HOST + ":"
          + upstream.getLocalPort() + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      RawResponse one = RawResponse.read(in, false);
      between.run();
      out.write(((body == null ? "GET " : "POST ") + target + second + " HTTP/1.1\r\nHost: "
          + HOST + ":" + upstream.getLocalPort() + "\r\nConnection: close\r\n"
          + (body == null ? "" : "Content-Length: " + body.length() + "\r\n") + "\r\n"
          + (body == null ? "" : body)).getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      return new RawResponse[] {one, RawResponse.read(in, false)};
    }
  }

  @Test
  void aPooledConnectionClosedAsTheNextRequestArrivesCostsAnIdempotentRequestNothing()
      throws Exception {
    // The first request on each connection is answered and the connection kept; the second
    // finds the upstream closing it, as when its keep-alive timeout ends just then.
    script.set((n, head) -> n == 1 ? ok("first") : null);
    int[] before = new int[1];

    RawResponse[] answers = twoOnOneConnection("/race-1", "/race-2", null,
        () -> before[0] = accepted.get());

    assertThat(answers[0].status()).isEqualTo(200);
    assertThat(answers[1].status()).as("retried once on a fresh connection").isEqualTo(200);
    assertThat(answers[1].body()).isEqualTo("first");
    assertThat(upstreamClosed.get().await(10, TimeUnit.SECONDS)).isTrue();
    assertThat(accepted.get() - before[0]).as("one fresh connection for the retry").isEqualTo(1);
    Hop hop = hopFor("/race-2");
    assertThat(hop.status).isEqualTo(200);
    assertThat(hop.error).isNull();
  }

  @Test
  void aRequestWithABodyIsNotSentTwiceWhenItsPooledConnectionCloses() throws Exception {
    script.set((n, head) -> n == 1 ? ok("first") : null);
    int[] headsBefore = new int[1];

    RawResponse[] answers = twoOnOneConnection("/post-race-1", "/post-race-2", "payload",
        () -> headsBefore[0] = heads.get());

    assertThat(answers[0].status()).isEqualTo(200);
    // The upstream may have acted on it before it closed: Egret says so rather than repeat it.
    assertThat(answers[1].status()).isEqualTo(502);
    assertThat(answers[1].header("proxy-status")).contains("error=destination_unavailable");
    assertThat(heads.get() - headsBefore[0]).as("sent once").isEqualTo(1);
    assertThat(hopFor("/post-race-2").error).isEqualTo(ErrorKind.DESTINATION_UNAVAILABLE);
  }

  @Test
  void aConnectionTheUpstreamClosedWhileIdleIsNotUsedAgain() throws Exception {
    // Answers with keep-alive framing, then closes the connection at once.
    script.set((n, head) -> CLOSE_AFTER + ok("idle-" + n));
    int[] before = new int[1];

    RawResponse[] answers = twoOnOneConnection("/idle-1", "/idle-2", null, () -> {
      try {
        assertThat(upstreamClosed.get().await(10, TimeUnit.SECONDS)).isTrue();
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
      before[0] = accepted.get();
    });

    assertThat(answers[1].status()).isEqualTo(200);
    assertThat(answers[1].body()).isEqualTo("idle-1");
    assertThat(accepted.get() - before[0]).as("a new connection").isEqualTo(1);
    assertThat(hopFor("/idle-2").error).isNull();
  }

  @Test
  void answers502ToAResponseWithContentLengthAndChunkedFraming() throws Exception {
    script.set((n, head) -> "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
        + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");

    String answer = exchange("GET", "/cl-te", null);

    assertThat(answer).startsWith("HTTP/1.1 502").contains("error=http_protocol_error")
        .doesNotContain("hello");
    Hop hop = hopFor("/cl-te");
    assertThat(hop.error).isEqualTo(ErrorKind.UPSTREAM_PROTOCOL_ERROR);
    assertThat(hop.errorDetails).contains("Content-Length").contains("Transfer-Encoding");
  }

  @Test
  void answers502ToAResponseWithTwoDifferentContentLengths() throws Exception {
    script.set((n, head) -> "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
        + "hello!");

    String answer = exchange("GET", "/two-lengths", null);

    assertThat(answer).startsWith("HTTP/1.1 502").contains("error=http_protocol_error")
        .doesNotContain("hello");
    assertThat(hopFor("/two-lengths").error).isEqualTo(ErrorKind.UPSTREAM_PROTOCOL_ERROR);
  }

  @Test
  void answers502ToABadChunkSize() throws Exception {
    script.set((n, head) -> "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "zz\r\nhello\r\n0\r\n\r\n");

    String answer = exchange("GET", "/bad-chunk", null);

    assertThat(answer).startsWith("HTTP/1.1 502").contains("error=http_protocol_error")
        .doesNotContain("hello");
    assertThat(hopFor("/bad-chunk").error).isEqualTo(ErrorKind.UPSTREAM_PROTOCOL_ERROR);
  }

  @Test
  void closesTheDownstreamConnectionOnABadChunkAfterTheResponseStarted() throws Exception {
    // The first chunk is sound and relayed; the second's size line is not hex.
    script.set((n, head) -> "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n");

    String answer = exchange("GET", "/bad-second-chunk", null);

    assertThat(answer).startsWith("HTTP/1.1 200").doesNotContain("world")
        .as("the chunked body is not terminated").doesNotEndWith("0\r\n\r\n");
    Hop hop = hopFor("/bad-second-chunk");
    assertThat(hop.error).isEqualTo(ErrorKind.UPSTREAM_PROTOCOL_ERROR);
    assertThat(hop.errorDetails).contains("broke off after 5 bytes");
  }

  @Test
  void answers504WhenTheUpstreamNeverAnswers() throws Exception {
    CountDownLatch never = new CountDownLatch(1);
    script.set((n, head) -> {
      try {
        never.await(5, TimeUnit.SECONDS); // holds the connection open, silent
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return null;
    });
    try {
      String answer = exchange("GET", "/silent", null);
      assertThat(answer).startsWith("HTTP/1.1 504").contains("error=http_response_timeout")
          .contains("timeouts.response");
    } finally {
      never.countDown();
    }
    assertThat(hopFor("/silent").error).isEqualTo(ErrorKind.RESPONSE_TIMEOUT);
  }
}
