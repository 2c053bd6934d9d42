package dev.egret.upgrade;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SIGTERM drains (docs: "Shutdown"): readiness turns 503 at once while the admin port stays up,
 * the proxy keeps serving new connections for {@code shutdown.grace}, a request in flight
 * finishes, an idle kept-alive connection is closed, what is left at {@code shutdown.deadline}
 * is cut and counted, and the exit code is 0. Egret runs as a child process to get the signal.
 */
class DrainTest {
  private static final Duration WAIT = Duration.ofSeconds(20);
  @TempDir static Path dir;
  static PartnerApi partner;
  static Path rootPem;
  static SSLContext trust;

  @BeforeAll
  static void start() throws Exception {
    TestCert root = TestPki.rootCa("Drain Test Root").issue();
    partner = PartnerApi.start(root.leaf("127.0.0.1").issue(), dir);
    rootPem = root.writePem(dir).cert();
    trust = root.clientContext();
  }

  @AfterAll
  static void stop() throws Exception {
    partner.close();
  }

  private static EgretFixture egret(String shutdown) throws Exception {
    return EgretFixture.builder().childJvm().start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        shutdown: %s
        timeouts: {handshake: 20s}
        allow:
          - host: 127.0.0.1
            ports: [%d]
        """.formatted(rootPem.getFileName(), shutdown, partner.port()));
  }

  private static HttpClient client(EgretFixture egret) {
    return HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", egret.proxyPort())))
        .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
  }

  private static int readyz(EgretFixture egret) throws Exception {
    return HttpClient.newHttpClient().send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + egret.adminPort() + "/readyz"))
        .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.discarding())
        .statusCode();
  }

  private static URI url(String path) {
    return URI.create("http://127.0.0.1:" + partner.port() + path);
  }

  @Test
  void letsARequestInFlightFinishAfterSigtermAndExitsZero() throws Exception {
    try (EgretFixture egret = egret("{grace: 2s, deadline: 15s}")) {
      // An idle kept-alive connection, answered once.
      Socket idle = new Socket("127.0.0.1", egret.proxyPort());
      idle.setSoTimeout(10_000);
      OutputStream out = idle.getOutputStream();
      out.write(("GET " + url("/bytes/10") + " HTTP/1.1\r\nHost: 127.0.0.1:" + partner.port()
          + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      InputStream in = idle.getInputStream();
      byte[] first = new byte[4096];
      assertThat(new String(first, 0, in.read(first), StandardCharsets.ISO_8859_1))
          .startsWith("HTTP/1.1 200");
      CompletableFuture<HttpResponse<String>> slow = client(egret).sendAsync(
          HttpRequest.newBuilder(url("/slow/3000")).timeout(WAIT).build(),
          HttpResponse.BodyHandlers.ofString());
      long reached = System.nanoTime() + WAIT.toNanos();
      while (!partner.requests().contains("GET /slow/3000") && System.nanoTime() < reached) {
        java.util.concurrent.locks.LockSupport.parkNanos(5_000_000); // polls a list, bounded
      }
      assertThat(partner.requests()).contains("GET /slow/3000");

      egret.terminate();

      egret.awaitMessage(m -> m.contains("SIGTERM"), WAIT);
      assertThat(readyz(egret)).isEqualTo(503);
      assertThat(in.read()).as("the idle kept-alive connection is closed").isEqualTo(-1);
      HttpResponse<String> during = client(egret).send(HttpRequest.newBuilder(url("/bytes/5"))
          .timeout(WAIT).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(during.statusCode()).as("a new connection during the grace").isEqualTo(200);
      assertThat(during.headers().firstValue("connection")).hasValue("close");
      HttpResponse<String> done = slow.get(WAIT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS);
      assertThat(done.statusCode()).isEqualTo(200);
      assertThat(done.body()).isEqualTo("slow");
      assertThat(egret.awaitExit(WAIT)).isZero();
      String line = egret.awaitMessage(m -> m.contains("drained in"), WAIT);
      System.out.println("drain, request in flight: " + line); // the timings, for the report
      assertThat(line).contains("nothing cut");
      idle.close();
    }
  }

  @Test
  void cutsATunnelStillOpenAtTheDeadlineAndCountsIt() throws Exception {
    try (EgretFixture egret = egret("{grace: 200ms, deadline: 1500ms}")) {
      Socket s = new Socket("127.0.0.1", egret.proxyPort());
      s.setSoTimeout(10_000);
      s.getOutputStream().write(("CONNECT 127.0.0.1:" + partner.port() + " HTTP/1.1\r\nHost: "
          + "127.0.0.1:" + partner.port() + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
      byte[] head = new byte[39];
      assertThat(s.getInputStream().readNBytes(head, 0, head.length)).isEqualTo(head.length);
      assertThat(new String(head, StandardCharsets.US_ASCII))
          .isEqualTo("HTTP/1.1 200 Connection Established\r\n\r\n");
      SSLSocket tls = (SSLSocket) trust.getSocketFactory().createSocket(s, "127.0.0.1",
          partner.port(), true);
      tls.startHandshake(); // an open, idle tunnel

      long start = System.nanoTime();
      egret.terminate();

      assertThat(egret.awaitExit(WAIT)).isZero();
      long tookMs = (System.nanoTime() - start) / 1_000_000;
      assertThat(tookMs).isGreaterThanOrEqualTo(1400);
      String line = egret.awaitMessage(m -> m.contains("drained in"), WAIT);
      System.out.println("drain, tunnel past the deadline: " + line);
      assertThat(line).contains("1 cut at the deadline").contains("tunnel=1");
      assertThat(tls.getInputStream().read()).isEqualTo(-1);
      tls.close();
    }
  }

  /**
   * The cut is counted where dashboards read it: egret_shutdown_cut_total{kind="tunnel"} on the
   * admin port's /metrics (in-process, since a child process exits right after its cut).
   */
  @Test
  void countsTheCutInTheShutdownCutMetric() throws Exception {
    Path own = java.nio.file.Files.createDirectories(dir.resolve("metric"));
    java.nio.file.Files.copy(rootPem, own.resolve(rootPem.getFileName()),
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    try (EgretFixture egret = EgretFixture.builder().observed().start(own, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: 127.0.0.1
            ports: [%d]
        """.formatted(rootPem.getFileName(), partner.port()));
        Socket s = new Socket("127.0.0.1", egret.proxyPort())) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write(("CONNECT 127.0.0.1:" + partner.port() + " HTTP/1.1\r\nHost: "
          + "127.0.0.1:" + partner.port() + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
      byte[] head = new byte[39];
      assertThat(s.getInputStream().readNBytes(head, 0, head.length)).isEqualTo(head.length);
      SSLSocket tls = (SSLSocket) trust.getSocketFactory().createSocket(s, "127.0.0.1",
          partner.port(), true);
      tls.startHandshake(); // an open, idle tunnel
      assertThat(egret.scrape()).doesNotContain("egret_shutdown_cut_total{kind=\"tunnel\"} 1.0");

      var report = egret.server().drain(Duration.ofMillis(50), Duration.ofMillis(300))
          .await(WAIT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS);

      assertThat(report.cut()).containsEntry("tunnel", 1);
      assertThat(egret.scrape()).contains("egret_shutdown_cut_total{kind=\"tunnel\"} 1.0");
      assertThat(tls.getInputStream().read()).isEqualTo(-1);
    }
  }
}
