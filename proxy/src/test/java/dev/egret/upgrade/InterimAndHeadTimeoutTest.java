package dev.egret.upgrade;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.RecordingTelemetry;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
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
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hardening classes 9 and 10: an upstream's interim 1xx is relayed as interim, never as the final
 * answer, and the final answer follows (a 101 is refused with a detail that says why), and a
 * request head that drips in slower
 * than {@code timeouts.requestHead} is answered 408 and frees its connection slot.
 */
class InterimAndHeadTimeoutTest {
  private static final String HOST = "127.0.0.1";
  private static final Duration WAIT = Duration.ofSeconds(10);
  /** The scripted upstream serves one request per connection, so Egret must not pool it. */
  private static final String ONE_SHOT = "Connection: close\r\n";

  @TempDir static Path dir;
  static SSLServerSocket upstream;
  /** What the scripted upstream answers to the next request. */
  static final AtomicReference<String> script = new AtomicReference<>();
  static final AtomicInteger accepted = new AtomicInteger();
  static RecordingTelemetry seen;
  static EgretFixture egret;

  @BeforeAll
  static void start() throws Exception {
    TestCert root = TestPki.rootCa("Interim Root").issue();
    TestCert leaf = root.leaf(HOST).issue();
    SSLContext server = SSLContext.getInstance("TLS");
    server.init(leaf.keyManagerFactory().getKeyManagers(), null, null);
    upstream = (SSLServerSocket) server.getServerSocketFactory()
        .createServerSocket(0, 50, InetAddress.getByName(HOST));
    Thread t = new Thread(InterimAndHeadTimeoutTest::serve, "scripted-upstream");
    t.setDaemon(true);
    t.start();
    Path rootPem = root.writePem(dir).cert();
    seen = new RecordingTelemetry();
    egret = EgretFixture.builder().telemetry(seen).start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        timeouts: {requestHead: 500ms, response: 5s}
        allow:
          - host: 127.0.0.1
            ports: [%d]
        """.formatted(rootPem.getFileName(), upstream.getLocalPort()));
  }

  @AfterAll
  static void stop() throws Exception {
    egret.close();
    upstream.close();
  }

  /**
   * Accepts connections; on each, writes the script's bytes for each request head, keeping the
   * connection for the next head unless the script closes it, then waits for Egret to close or a
   * short while to pass.
   */
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

  /** One connection, on its own thread, so a kept-alive one holds up no other. */
  private static void answer(Socket socket) {
    while (true) {
      try (Socket s = socket) {
        InputStream in = s.getInputStream();
        String answer;
        do {
          StringBuilder head = new StringBuilder();
          while (!head.toString().endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) {
              break;
            }
            head.append((char) b);
          }
          if (head.isEmpty()) {
            break;
          }
          answer = script.get();
          s.getOutputStream().write(answer.getBytes(StandardCharsets.ISO_8859_1));
          s.getOutputStream().flush();
        } while (!answer.contains(ONE_SHOT) && !answer.startsWith("HTTP/1.1 101"));
        s.setSoTimeout(2000);
        in.read(); // until Egret closes or a short while passes
      } catch (IOException e) {
        // the connection is done
      }
      return;
    }
  }

  private static String exchange(String path) throws Exception {
    return exchange(path, "HTTP/1.1");
  }

  private static String exchange(String path, String version) throws Exception {
    try (Socket s = new Socket(HOST, egret.proxyPort())) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write(("GET http://" + HOST + ":" + upstream.getLocalPort() + path + " " + version
          + "\r\n"
          + "Host: " + HOST + ":" + upstream.getLocalPort() + "\r\nConnection: close\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      return new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
    }
  }

  @Test
  void relaysA102AsInterimThenTheFinalAnswer() throws Exception {
    script.set("HTTP/1.1 102 Processing\r\nX-Step: 1\r\n\r\n"
        + "HTTP/1.1 102 Processing\r\nX-Step: 2\r\n\r\n"
        + "HTTP/1.1 200 OK\r\n" + ONE_SHOT + "Content-Length: 2\r\n\r\nok");

    String answer = exchange("/processing", "HTTP/1.1");

    assertThat(answer).startsWith("HTTP/1.1 102 Processing\r\nX-Step: 1\r\n\r\n"
        + "HTTP/1.1 102 Processing\r\nX-Step: 2\r\n\r\nHTTP/1.1 200 OK\r\n").endsWith("ok");
    Hop hop = seen.awaitHop(h -> h.url != null && h.url.endsWith("/processing"), WAIT);
    assertThat(hop.status).isEqualTo(200);
  }

  @Test
  void aPooledConnectionAfterA102AnswersTheNextRequestWithItsOwnResponse() throws Exception {
    script.set("HTTP/1.1 102 Processing\r\n\r\n"
        + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkept");
    int before = accepted.get();

    for (int i = 0; i < 5; i++) {
      assertThat(exchange("/kept-" + i, "HTTP/1.1")).as("request %d", i)
          .startsWith("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\n").endsWith("kept");
    }
    script.set("HTTP/1.1 200 OK\r\n" + ONE_SHOT + "Content-Length: 4\r\n\r\nlast");
    assertThat(exchange("/kept-last", "HTTP/1.1")).startsWith("HTTP/1.1 200 OK\r\n")
        .endsWith("last");
    // Fewer upstream connections than requests: kept-alive connections were reused after their
    // 102s, and each answered its own request (a 1xx left unread would shift every answer).
    assertThat(accepted.get() - before).isLessThan(6);
  }

  @Test
  void aHeadRequestAnsweredWithAnInterimIsRefusedNeverLeftHanging() throws Exception {
    // Netty's client codec uses up a HEAD's turn on a 1xx (netty/netty#9721), so the final
    // answer's Content-Length would be read as a body that never comes: Egret refuses such a
    // HEAD at once and drops the connection, for 102 and for the 103 Vert.x relays itself.
    for (String interim : new String[] {"102 Processing", "103 Early Hints"}) {
      script.set("HTTP/1.1 " + interim + "\r\n\r\n"
          + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
      String head;
      try (Socket s = new Socket(HOST, egret.proxyPort())) {
        s.setSoTimeout(10_000);
        s.getOutputStream().write(("HEAD http://" + HOST + ":" + upstream.getLocalPort()
            + "/head-after-" + interim.substring(0, 3) + " HTTP/1.1\r\nHost: " + HOST + ":"
            + upstream.getLocalPort() + "\r\nConnection: close\r\n\r\n")
            .getBytes(StandardCharsets.ISO_8859_1));
        head = new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
      }
      assertThat(head).as(interim).startsWith("HTTP/1.1 502")
          .contains("error=http_protocol_error")
          .contains("answered a HEAD request with an interim " + interim.substring(0, 3));
    }
    script.set("HTTP/1.1 200 OK\r\n" + ONE_SHOT + "Content-Length: 5\r\n\r\nafter");
    assertThat(exchange("/after-head", "HTTP/1.1")).startsWith("HTTP/1.1 200 OK\r\n")
        .endsWith("after");
  }

  @Test
  void sendsNoInterimToAnHttp10Client() throws Exception {
    script.set("HTTP/1.1 102 Processing\r\n\r\n"
        + "HTTP/1.1 200 OK\r\n" + ONE_SHOT + "Content-Length: 2\r\n\r\nok");

    String answer = exchange("/processing10", "HTTP/1.0");

    assertThat(answer).startsWith("HTTP/1.0 200 OK\r\n").doesNotContain("102").endsWith("ok");
  }

  @Test
  void refusesAnEndlessRunOfInterimResponses() throws Exception {
    script.set("HTTP/1.1 102 Processing\r\n\r\n".repeat(Upgrade.MAX_INTERIM + 1)
        + "HTTP/1.1 200 OK\r\n" + ONE_SHOT + "Content-Length: 2\r\n\r\nok");

    String answer = exchange("/endless", "HTTP/1.1");

    assertThat(answer).contains("HTTP/1.1 502").contains("error=http_protocol_error")
        .contains("more than " + Upgrade.MAX_INTERIM + " interim responses")
        .doesNotContain("200 OK");
  }

  @Test
  void relays103EarlyHintsAsInterimThenTheFinalAnswer() throws Exception {
    script.set("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        + "HTTP/1.1 200 OK\r\n" + ONE_SHOT + "Content-Length: 2\r\n\r\nok");

    String answer = exchange("/hints");

    assertThat(answer).startsWith("HTTP/1.1 103 Early Hints").contains("Link: </a.css>")
        .contains("HTTP/1.1 200 OK").endsWith("ok");
  }

  @Test
  void neverRelaysAnUpstream101() throws Exception {
    script.set("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade"
        + "\r\n\r\n");

    String answer = exchange("/switch");

    assertThat(answer).startsWith("HTTP/1.1 502").contains("error=http_protocol_error")
        .contains("Egret does not relay protocol switches").doesNotContain("HTTP/1.1 101");
  }

  @Test
  void answers408ToAHeadThatDripsInAndFreesTheSlot() throws Exception {
    try (Socket s = new Socket(HOST, egret.proxyPort())) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write("GET http://127.0.0.1/ HTTP/1.1\r\nX-Drip: ".getBytes(StandardCharsets.US_ASCII));
      out.flush();
      String answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
      assertThat(answer).startsWith("HTTP/1.1 408 Request Timeout")
          .contains("error=http_request_error").contains("timeouts.requestHead");
    }
    Hop hop = seen.awaitHop(h -> h.status == 408, WAIT);
    assertThat(hop.error).isEqualTo(ErrorKind.REQUEST_ERROR);
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (egret.server().downstreamConnections() > 0 && System.nanoTime() < deadline) {
      java.util.concurrent.locks.LockSupport.parkNanos(5_000_000); // polls a count, bounded
    }
    assertThat(egret.server().downstreamConnections()).isZero();
  }
}
