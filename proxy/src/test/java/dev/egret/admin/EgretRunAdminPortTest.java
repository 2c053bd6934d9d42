package dev.egret.admin;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.egret.config.ConfigCompiler;
import dev.egret.testing.LogLines;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code egret run} as an operator starts it: a separate JVM running {@code dev.egret.cli.Egret} with
 * a config file, probed from outside on its admin port the way Prometheus, an ECS health check
 * and {@code egret ready} do, then stopped with SIGTERM.
 */
class EgretRunAdminPortTest {
  private static final Duration START_DEADLINE = Duration.ofSeconds(60);
  private static final String JAVA =
      Path.of(System.getProperty("java.home"), "bin", "java").toString();

  @TempDir Path dir;
  private Process egret;
  private final LogLines stdout = new LogLines();
  private final LogLines stderr = new LogLines();
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  @AfterEach
  void stop() throws InterruptedException {
    if (egret != null && egret.isAlive()) {
      egret.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void servesMetricsHealthAndReadinessOnTheAdminPortUntilSigterm() throws Exception {
    // Port 0 would leave the admin port unknown to the probes: take two free ports instead.
    int proxyPort = freePort();
    int adminPort = freePort();
    String yaml = """
        version: 1
        listen: {proxy: 127.0.0.1:%d, admin: 127.0.0.1:%d}
        allow:
          - host: api.partner.test
        """.formatted(proxyPort, adminPort);
    Path config = Files.writeString(dir.resolve("egret.yaml"), yaml);
    String sha256 = ConfigCompiler.sha256(yaml.getBytes(StandardCharsets.UTF_8));

    egret = egret("run", "--config", config.toString()).start();
    drain(egret.getInputStream(), stdout);
    drain(egret.getErrorStream(), stderr);
    assertThat(stderr.awaitLine(l -> l.startsWith("egret: proxy on"), START_DEADLINE))
        .contains("127.0.0.1:" + proxyPort, "127.0.0.1:" + adminPort, sha256);

    String admin = "http://127.0.0.1:" + adminPort;
    assertThat(get(admin + "/readyz")).satisfies(r -> {
      assertThat(r.statusCode()).isEqualTo(200);
      assertThat(r.body()).isEqualTo("ready");
    });
    assertThat(get(admin + "/healthz").statusCode()).isEqualTo(200);

    // One hop through the proxy port: its line reaches stdout and its series /metrics.
    assertThat(send(proxyPort, "GET http://exfil.attacker.test/x HTTP/1.1\r\n"
        + "Host: exfil.attacker.test\r\nConnection: close\r\n\r\n")).startsWith("HTTP/1.1 403");
    JsonNode line = new ObjectMapper().readTree(
        stdout.awaitLine(l -> l.contains("exfil.attacker.test"), START_DEADLINE));
    assertThat(line.get("outcome").asText()).isEqualTo("denied");
    assertThat(line.get("error").asText()).isEqualTo("http_request_denied");

    HttpResponse<String> metrics = get(admin + "/metrics");
    assertThat(metrics.statusCode()).isEqualTo(200);
    assertThat(metrics.headers().firstValue("content-type"))
        .hasValue(AdminServer.METRICS_CONTENT_TYPE);
    assertThat(metrics.body()).contains(
        "egret_config_info{sha256=\"" + sha256 + "\"} 1",
        "egret_requests_total{destination=\"denied\",error=\"http_request_denied\","
            + "kind=\"upgrade\",outcome=\"denied\"} 1.0",
        "egret_tunnels_active 0.0",
        // JVM and Vert.x meters sit beside Egret's own.
        "jvm_memory_used_bytes",
        "vertx_pool_");

    Process ready = egret("ready", "--admin", "127.0.0.1:" + adminPort).start();
    assertThat(ready.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(ready.exitValue()).isZero();
    assertThat(new String(ready.getInputStream().readAllBytes(), StandardCharsets.UTF_8))
        .contains("readyz: 200");

    egret.destroy(); // SIGTERM: Egret drains, closes and exits 0 (orchestrators read non-zero as failure)
    assertThat(egret.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(egret.exitValue()).isZero();
    assertThat(String.join("\n", stderr.lines())).doesNotContain("Exception");

    Process notReady = egret("ready", "--admin", "127.0.0.1:" + adminPort).start();
    assertThat(notReady.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(notReady.exitValue()).isEqualTo(1);
  }

  /** A JVM running the Egret command line with the test classpath (which holds main's classes). */
  private ProcessBuilder egret(String... args) {
    List<String> command = new ArrayList<>(List.of(JAVA, "-Xmx256m", "-XX:TieredStopAtLevel=1",
        "-cp", System.getProperty("java.class.path"), "dev.egret.cli.Egret"));
    command.addAll(List.of(args));
    return new ProcessBuilder(command).directory(dir.toFile());
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      return s.getLocalPort();
    }
  }

  /** Copies a subprocess's output into {@code sink} on a daemon thread, until it closes. */
  private static void drain(InputStream from, LogLines sink) {
    Thread t = new Thread(() -> {
      try (from) {
        from.transferTo(sink);
      } catch (IOException e) {
        // The process is gone; what arrived is in the sink.
      }
    }, "egret-run-output");
    t.setDaemon(true);
    t.start();
  }

  private HttpResponse<String> get(String url) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10))
        .build(), HttpResponse.BodyHandlers.ofString());
  }

  private static String send(int port, String request) throws IOException {
    try (Socket s = new Socket("127.0.0.1", port)) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write(request.getBytes(StandardCharsets.ISO_8859_1));
      return new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
    }
  }
}
