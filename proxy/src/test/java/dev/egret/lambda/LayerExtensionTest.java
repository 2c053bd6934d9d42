package dev.egret.lambda;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The layer zip as Lambda runs it: its {@code extensions/egret}, unpacked from the zip, started
 * against a fake Extensions API on loopback, with {@code HTTP_PROXY} pointing at a trap. Runs in
 * the {@code integration-test} phase, after {@code package} built the layer.
 */
@Tag("layer")
class LayerExtensionTest {
  private static final Pattern PROXY_PORT = Pattern.compile("egret: proxy on 127\\.0\\.0\\.1:(\\d+),");
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path layerDir;
  @TempDir Path dir;

  static Path layer;
  static ServerSocket trap;
  static final AtomicInteger trapped = new AtomicInteger();

  @BeforeAll
  static void unpackAndSetTrap() throws Exception {
    layer = Layer.unpack(layerDir);
    // The function's HTTP_PROXY: every connection here is a call that should not have used it.
    trap = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    Thread t = new Thread(() -> {
      while (!trap.isClosed()) {
        try (Socket s = trap.accept()) {
          trapped.incrementAndGet();
        } catch (IOException e) {
          return;
        }
      }
    }, "proxy-trap");
    t.setDaemon(true);
    t.start();
  }

  @AfterAll
  static void closeTrap() throws IOException {
    trap.close();
  }

  private Layer.Child extension(FakeExtensionsApi api, Path config) throws IOException {
    ProcessBuilder pb = new ProcessBuilder(layer.resolve("extensions/egret").toString())
        .directory(dir.toFile());
    Map<String, String> env = pb.environment();
    env.put("AWS_LAMBDA_RUNTIME_API", api.address());
    env.put("EGRET_CONFIG", config.toString());
    String trapUrl = "http://127.0.0.1:" + trap.getLocalPort();
    for (String name : List.of("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")) {
      env.put(name, trapUrl);
    }
    env.remove("NO_PROXY");
    env.remove("no_proxy");
    // Fail the start if the class-data archive does not map: it is what makes the start fast.
    env.put("EGRET_JAVA_OPTS", "-Xshare:on");
    return new Layer.Child(pb);
  }

  @Test
  void registersServesBetweenEventsAndDrainsOnShutdownWithinTheDeadline() throws Exception {
    TestCert root = TestPki.rootCa("Layer Test Root").issue();
    try (FakeExtensionsApi api = FakeExtensionsApi.start();
         TlsTestServer upstream = TlsTestServer.https(root.leaf("127.0.0.1").issue()).name("orders").start()) {
      Path rootPem = root.writePem(dir).cert();
      Path config = Files.writeString(dir.resolve("egret.yaml"), """
          version: 1
          listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
          tls: {trust: [%s]}
          addresses: {allow: [127.0.0.1/32]}
          allow:
            - host: 127.0.0.1
              ports: [%d]
          """.formatted(rootPem, upstream.port()));
      try (Layer.Child egret = extension(api, config)) {
        FakeExtensionsApi.Call register = api.registered.get(30, TimeUnit.SECONDS);
        assertThat(register.method()).isEqualTo("POST");
        assertThat(register.headers().get("Lambda-Extension-Name")).isEqualTo("egret");
        assertThat(JSON.readTree(register.body()).get("events").toString()).isEqualTo("[\"SHUTDOWN\"]");

        FakeExtensionsApi.Call first = api.firstNext.get(30, TimeUnit.SECONDS);
        assertThat(first.method()).isEqualTo("GET");
        assertThat(first.headers().get("Lambda-Extension-Identifier")).isEqualTo(api.identifier);
        System.out.printf("layer cold start: %d ms from launcher start to event/next%n",
            TimeUnit.NANOSECONDS.toMillis(first.atNanos() - egret.startNanos));
        // Egret asks for its first event only once it serves: the port is printed before that.
        Matcher port = PROXY_PORT.matcher(egret.stderrLine(l -> PROXY_PORT.matcher(l).find())
            .get(10, TimeUnit.SECONDS));
        assertThat(port.find()).isTrue();
        int proxyPort = Integer.parseInt(port.group(1));

        api.answerNext(FakeExtensionsApi.invoke(), Duration.ofSeconds(10));
        String response = exchange(proxyPort, "GET http://127.0.0.1:" + upstream.port()
            + "/orders/7 HTTP/1.1\r\nHost: 127.0.0.1:" + upstream.port() + "\r\nConnection: close\r\n\r\n");
        assertThat(response).startsWith("HTTP/1.1 200");
        assertThat(upstream.requests()).singleElement()
            .satisfies(r -> assertThat(r.target()).isEqualTo("/orders/7"));

        long deadline = System.currentTimeMillis() + 2000;
        api.answerNext(FakeExtensionsApi.shutdown(deadline), Duration.ofSeconds(10));
        assertThat(egret.process.waitFor(5, TimeUnit.SECONDS)).as("exited; stderr %s", egret.stderr).isTrue();
        long exitedAt = System.currentTimeMillis();
        assertThat(egret.process.exitValue()).as("exit code; stderr %s", egret.stderr).isZero();
        // Waiting for the exit can only notice it late, never early: the slack is the test's.
        assertThat(exitedAt).as("exited by the SHUTDOWN deadline").isLessThanOrEqualTo(deadline + 250);

        assertThat(trapped.get()).as("connections to HTTP_PROXY").isZero();
        assertThat(api.calls).extracting(FakeExtensionsApi.Call::path)
            .doesNotContain("/2020-01-01/extension/init/error", "/2020-01-01/extension/exit/error");

        List<JsonNode> emf = new ArrayList<>();
        List<JsonNode> access = new ArrayList<>();
        for (String line : egret.stdout) {
          JsonNode node = JSON.readTree(line);
          (node.has("_aws") ? emf : access).add(node);
        }
        assertThat(access).singleElement()
            .satisfies(a -> assertThat(a.toString()).contains("\"destination\":\"127.0.0.1\""));
        // The last metrics went out at SHUTDOWN: one allowed upgrade to the rule's destination.
        JsonNode requests = emf.stream().filter(n -> n.has("egret_requests_total")).findFirst()
            .orElseThrow(() -> new AssertionError("no egret_requests_total EMF line in " + egret.stdout));
        assertThat(requests.get("destination").asText()).isEqualTo("127.0.0.1");
        assertThat(requests.get("outcome").asText()).isEqualTo("allowed");
        assertThat(requests.get("kind").asText()).isEqualTo("upgrade");
        assertThat(requests.get("egret_requests_total").asDouble()).isEqualTo(1.0);
        JsonNode directive = requests.get("_aws").get("CloudWatchMetrics").get(0);
        assertThat(directive.get("Namespace").asText()).isEqualTo("Egret");
        assertThat(directive.get("Dimensions").toString()).isEqualTo("[[\"destination\"]]");
        assertThat(directive.get("Metrics").toString())
            .contains("{\"Name\":\"egret_requests_total\",\"Unit\":\"Count\"}");
      }
    }
  }

  @Test
  void badConfigGoesToInitErrorWithItsLinesAndExitsNonZero() throws Exception {
    try (FakeExtensionsApi api = FakeExtensionsApi.start()) {
      Path config = Files.writeString(dir.resolve("egret.yaml"),
          "version: 1\nallow:\n  - host: a.example\n    ports: [0]\n");
      try (Layer.Child egret = extension(api, config)) {
        FakeExtensionsApi.Call error = api.initError.get(30, TimeUnit.SECONDS);
        assertThat(error.headers().get("Lambda-Extension-Identifier")).isEqualTo(api.identifier);
        assertThat(error.headers().get("Lambda-Extension-Function-Error-Type"))
            .isEqualTo("Extension.ConfigInvalid");
        JsonNode body = JSON.readTree(error.body());
        assertThat(body.get("errorType").asText()).isEqualTo("Extension.ConfigInvalid");
        assertThat(body.get("errorMessage").asText())
            .contains(config + ":4:13: allow[0].ports[0] is 0; it must be a whole number from 1 to 65535");
        assertThat(egret.process.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(egret.process.exitValue()).isEqualTo(2);
        assertThat(api.calls).extracting(FakeExtensionsApi.Call::path)
            .doesNotContain("/2020-01-01/extension/event/next");
        assertThat(trapped.get()).as("connections to HTTP_PROXY").isZero();
      }
    }
  }

  @Test
  void exitsNonZeroSoonAfterEventNextFailsEvenWhenExitErrorHangs() throws Exception {
    try (FakeExtensionsApi api = FakeExtensionsApi.start()
        .misbehave("/event/next", req -> req.response().setStatusCode(500).end())
        .misbehave("/exit/error", req -> { })) {
      Path config = Files.writeString(dir.resolve("egret.yaml"), """
          version: 1
          listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
          allow:
            - host: api.example.com
          """);
      try (Layer.Child egret = extension(api, config)) {
        FakeExtensionsApi.Call next = api.firstNext.get(30, TimeUnit.SECONDS);
        api.exitError.get(10, TimeUnit.SECONDS);
        // exit/error's 2 s deadline, the drain's second, and a loaded machine's slack.
        assertThat(egret.process.waitFor(15, TimeUnit.SECONDS)).as("exited; stderr %s", egret.stderr)
            .isTrue();
        System.out.printf("layer: exited %d ms after event/next answered 500%n",
            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - next.atNanos()));
        assertThat(egret.process.exitValue()).isEqualTo(1);
        assertThat(egret.stderr).anySatisfy(l -> assertThat(l).contains("exit/error was not answered within 2 s"));
      }
    }
  }

  private static String exchange(int port, String request) throws IOException {
    try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
      InputStream in = s.getInputStream();
      return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
    }
  }
}
