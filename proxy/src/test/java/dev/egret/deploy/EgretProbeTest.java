package dev.egret.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * deploy/healthcheck/egret-probe, the image's HEALTHCHECK, against admin ports that answer well
 * and badly, through real loopback sockets. The binary is the one {@code -Degret.probe=PATH}
 * names ({@code .ci/deploy-checks.sh} builds it with deploy/healthcheck/build.sh and fails if
 * this test was skipped), or one built here when musl-gcc is on the PATH.
 */
class EgretProbeTest {
  private static final Duration DEADLINE = Duration.ofSeconds(15);
  private static Path probe;

  private ServerSocket server;
  private Thread acceptor;
  private final ConcurrentLinkedQueue<String> requests = new ConcurrentLinkedQueue<>();

  @BeforeAll
  static void findOrBuildTheProbe() throws Exception {
    String given = System.getProperty("egret.probe");
    if (given != null && !given.isBlank()) {
      probe = Path.of(given);
      assertThat(probe).as("-Degret.probe").isExecutable();
      return;
    }
    Path out = DeployFiles.file("proxy/target/egret-probe");
    Process build = new ProcessBuilder("sh", DeployFiles.file("deploy/healthcheck/build.sh").toString(), out.toString())
        .redirectErrorStream(true).start();
    String log = new String(build.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!build.waitFor(60, TimeUnit.SECONDS) || build.exitValue() != 0) {
      System.err.println("EgretProbeTest SKIPPED: cannot build the probe (needs musl-gcc, Debian musl-tools): " + log);
      probe = null;
      return;
    }
    probe = out;
  }

  @BeforeEach
  void needsTheProbe() {
    assumeTrue(probe != null, "no egret-probe binary: install musl-tools or pass -Degret.probe=PATH");
  }

  @AfterEach
  void stopServer() throws Exception {
    if (server != null) {
      server.close();
      acceptor.join(DEADLINE.toMillis());
    }
  }

  /** A loopback server that answers each connection with what {@code answer} gives for its number. */
  private int serve(Function<Integer, byte[]> answer) throws IOException {
    server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    acceptor = new Thread(() -> {
      int n = 0;
      while (!server.isClosed()) {
        try (Socket s = server.accept()) {
          s.setSoTimeout((int) DEADLINE.toMillis());
          requests.add(readHead(s.getInputStream()));
          byte[] reply = answer.apply(n++);
          if (reply == null) {
            // Say nothing and keep the connection open until the probe gives up and closes.
            s.getInputStream().read();
            continue;
          }
          OutputStream out = s.getOutputStream();
          for (byte b : reply) {
            out.write(b); // one byte at a time: the probe must not need the line in one read
            out.flush();
          }
        } catch (IOException e) {
          // closed by the test, or the probe hung up: both end this connection only.
        }
      }
    }, "probe-test-server");
    acceptor.setDaemon(true);
    acceptor.start();
    return server.getLocalPort();
  }

  private static String readHead(InputStream in) throws IOException {
    StringBuilder head = new StringBuilder();
    int c;
    while ((c = in.read()) >= 0) {
      head.append((char) c);
      if (head.length() >= 4 && head.substring(head.length() - 4).equals("\r\n\r\n")) {
        break;
      }
    }
    return head.toString();
  }

  private record Result(int exit, String stderr, Duration took) {}

  private static Result run(String... args) throws Exception {
    List<String> argv = new ArrayList<>(List.of(probe.toString()));
    argv.addAll(List.of(args));
    long start = System.nanoTime();
    Process p = new ProcessBuilder(argv).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(DEADLINE.toMillis(), TimeUnit.MILLISECONDS)).as("probe exited").isTrue();
    return new Result(p.exitValue(), err, Duration.ofNanos(System.nanoTime() - start));
  }

  private static byte[] status(String line) {
    return (line + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
  }

  @Test
  void passesOn200AndAsksForTheGivenPath() throws Exception {
    int port = serve(n -> status("HTTP/1.1 200 OK"));
    Result r = run("127.0.0.1:" + port, "/readyz");
    assertThat(r.exit()).as(r.stderr()).isZero();
    assertThat(requests.peek()).startsWith("GET /readyz HTTP/1.1\r\n").contains("\r\nHost: ");
  }

  @Test
  void failsOn503WhileEgretStartsOrDrains() throws Exception {
    int port = serve(n -> status("HTTP/1.1 503 Service Unavailable"));
    Result r = run("127.0.0.1:" + port);
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.stderr()).contains("503");
  }

  @Test
  void failsWhenNothingListens() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    Result r = run("127.0.0.1:" + port);
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.stderr()).contains("cannot connect");
  }

  @Test
  void givesUpOnASilentPeerWellWithinTheHealthCheckTimeout() throws Exception {
    int port = serve(n -> null);
    Result r = run("127.0.0.1:" + port);
    assertThat(r.exit()).isEqualTo(1);
    // The image's HEALTHCHECK and the ECS health check allow 5 s.
    assertThat(r.took()).isLessThan(Duration.ofMillis(4500));
  }

  @Test
  void refusesLookalikeAndGarbageStatusLines() throws Exception {
    for (String line : List.of("HTTP/1.1 2000 OK", "HTTP/1.1 20", "SSH-2.0-OpenSSH_9.2", "HTTP/2 200 OK", "http/1.1 200 OK")) {
      Result r = run("127.0.0.1:" + serve(n -> status(line)));
      assertThat(r.exit()).as("answer %s", line).isEqualTo(1);
      stopServer();
      server = null;
    }
  }

  @Test
  void waitRetriesUntilReady() throws Exception {
    int port = serve(n -> status(n < 2 ? "HTTP/1.1 503 Service Unavailable" : "HTTP/1.1 200 OK"));
    Result r = run("--wait", "10", "127.0.0.1:" + port, "/readyz");
    assertThat(r.exit()).as(r.stderr()).isZero();
    assertThat(requests).hasSize(3);
  }

  @Test
  void waitIsBounded() throws Exception {
    int port = serve(n -> status("HTTP/1.1 503 Service Unavailable"));
    Result r = run("--wait", "1", "127.0.0.1:" + port);
    assertThat(r.exit()).isEqualTo(1);
    assertThat(requests.size()).isBetween(1, 3);
  }

  @Test
  void refusesNamesAndBadArgumentsWithUsage() throws Exception {
    for (List<String> args : List.of(
        List.of("localhost:9901"), List.of("127.0.0.1:0"), List.of("127.0.0.1:99999"),
        List.of("127.0.0.1"), List.of("--wait", "x"), List.of("127.0.0.1:9901", "/a b"))) {
      Result r = run(args.toArray(String[]::new));
      assertThat(r.exit()).as("args %s", args).isEqualTo(2);
      assertThat(r.stderr()).as("args %s", args).contains("usage:");
    }
  }

  @Test
  void reachesAnIpv6Loopback() throws Exception {
    server = new ServerSocket(0, 50, InetAddress.getByName("::1"));
    int port = server.getLocalPort();
    acceptor = new Thread(() -> {
      try (Socket s = server.accept()) {
        readHead(s.getInputStream());
        s.getOutputStream().write(status("HTTP/1.1 200 OK"));
      } catch (IOException e) {
        // the test's assertion says what happened
      }
    });
    acceptor.start();
    Result r = run("[::1]:" + port);
    assertThat(r.exit()).as(r.stderr()).isZero();
  }

  @Test
  void theImageProbeIsTheBinaryBuiltFromTheRepository() throws IOException {
    // Static: runs on the Alpine JRE base or a distroless one, with no libraries.
    byte[] head = Files.readAllBytes(probe);
    assertThat(new String(head, 1, 3, StandardCharsets.US_ASCII)).isEqualTo("ELF");
    assertThat(new String(head, StandardCharsets.ISO_8859_1)).doesNotContain("ld-linux", "libc.so");
    assertThat(head.length).as("bytes").isLessThan(200_000);
  }
}
