package dev.egret;

import dev.egret.cli.Egret;
import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static com.github.tomakehurst.wiremock.core.WireMockConfiguration.options;
import static org.assertj.core.api.Assertions.assertThat;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import dev.egret.telemetry.Telemetry;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Injected headers end to end: a client calls {@code http://} through Egret and WireMock, over
 * HTTPS only, plays the third-party API that needs a credential the client never holds. The
 * secret lives in a file laid out as a Kubernetes Secret volume ({@code token -> ..data/token},
 * {@code ..data -> ..v1}) so rotation is the same atomic link swap the kubelet does.
 */
class InjectedHeadersTest {
  private static final String SECRET_V1 = "sk-live-v1-7f3a9c0e51";
  private static final String SECRET_V2 = "sk-live-v2-b82d46e1c9";
  private static final String ENV_SECRET = "crm-env-token-44e1a0";
  private static final String CRM = "crm.partner.test";
  private static final String OPEN = "open.partner.test";
  private static final String DOWN = "down.partner.test";

  @TempDir static Path dir;
  static TestCert root;
  static WireMockServer partner;
  static int deadPort;
  static String rootPem;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Injected Headers Root").issue();
    TestCert leaf = root.leaf(CRM).dns(CRM, OPEN, DOWN).issue();
    partner = new WireMockServer(options().bindAddress("127.0.0.1").httpDisabled(true)
        .dynamicHttpsPort()
        .keystorePath(leaf.writePkcs12(dir).toString()).keystoreType("PKCS12")
        .keystorePassword(TestCert.PASSWORD).keyManagerPassword(TestCert.PASSWORD));
    partner.start();
    rootPem = root.writePem(dir).cert().getFileName().toString();
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      deadPort = s.getLocalPort(); // closed again: nothing listens there
    }
  }

  @AfterAll
  static void stop() {
    partner.stop();
  }

  @BeforeEach
  void stub() throws Exception {
    partner.resetAll();
    partner.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withBody("ok")));
    Path secrets = dir.resolve("secrets");
    Files.createDirectories(secrets.resolve("..v1"));
    Files.writeString(secrets.resolve("..v1/token"), SECRET_V1 + "\n");
    Files.deleteIfExists(secrets.resolve("..data"));
    Files.createSymbolicLink(secrets.resolve("..data"), Path.of("..v1"));
    if (!Files.exists(secrets.resolve("token"), java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      Files.createSymbolicLink(secrets.resolve("token"), Path.of("..data/token"));
    }
  }

  private static String config() {
    return """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d]
            headers:
              set: {Authorization: "Bearer ${file:secrets/token}"}
              remove: [Cookie]
          - host: %s
            ports: [%d]
            headers: {set: {X-Api-Key: "${file:secrets/token}"}}
            tunnel: allow
          - host: %s
            ports: [%d]
            headers: {set: {Authorization: "Bearer ${file:secrets/token}"}}
        """.formatted(rootPem, CRM, partner.httpsPort(), OPEN,
        partner.httpsPort(), DOWN, deadPort);
  }

  private static Map<String, String> hosts() {
    return Map.of(CRM, "127.0.0.1", OPEN, "127.0.0.1", DOWN, "127.0.0.1");
  }

  private static String url(String host, int port, String path) {
    return "http://" + host + ":" + port + path;
  }

  @Test
  void setsTheCredentialReplacesTheClientsOwnAndRemovesTheNamedHeader() throws Exception {
    try (EgretFixture egret =
        EgretFixture.builder().observed().hosts(hosts()).start(dir, config())) {
      HttpResponse<String> r = client(egret.proxyPort()).send(HttpRequest.newBuilder(
              URI.create(url(CRM, partner.httpsPort(), "/v1/orders?page=2")))
              .header("Authorization", "Bearer the-tasks-own-token")
              .header("Cookie", "session=abc")
              .header("X-Keep", "yes").build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).isEqualTo(200);
      LoggedRequest seen = partner.findAll(anyRequestedFor(urlEqualTo("/v1/orders?page=2"))).get(0);
      assertThat(seen.getHeaders().getHeader("Authorization").values())
          .containsExactly("Bearer " + SECRET_V1);
      assertThat(seen.containsHeader("Cookie")).isFalse();
      assertThat(seen.getHeader("X-Keep")).isEqualTo("yes");

      // An absolute-form https:// request is written by Egret too, so it gets the same treatment.
      String abs = raw(egret.proxyPort(), "GET https://" + CRM + ":" + partner.httpsPort()
          + "/v1/abs HTTP/1.1\r\nHost: " + CRM + ":" + partner.httpsPort()
          + "\r\nAuthorization: Basic dGFzazpvd24=\r\nConnection: close\r\n\r\n", false);
      assertThat(abs).startsWith("HTTP/1.1 200");
      assertThat(partner.findAll(anyRequestedFor(urlEqualTo("/v1/abs"))).get(0)
          .getHeaders().getHeader("Authorization").values()).containsExactly("Bearer " + SECRET_V1);

      // A failure on a rule with headers: the error body and Proxy-Status carry no secret.
      String failed = raw(egret.proxyPort(), "GET " + url(DOWN, deadPort, "/x")
          + " HTTP/1.1\r\nHost: " + DOWN + ":" + deadPort + "\r\nConnection: close\r\n\r\n", false);
      assertThat(failed).startsWith("HTTP/1.1 502").contains("connection_refused");

      List<String> outputs = new ArrayList<>(egret.awaitLogLines(3));
      outputs.add(egret.scrape());
      outputs.add(r.body() + r.headers().map());
      outputs.add(abs);
      outputs.add(failed);
      for (String output : outputs) {
        assertThat(output).doesNotContain(SECRET_V1);
      }
      assertThat(egret.logLines()).anySatisfy(l -> assertThat(l).contains("/v1/orders"));
    }
  }

  @Test
  void refusesATunnelThatWouldBypassTheHeadersAndTeachesToCallHttp() throws Exception {
    try (EgretFixture egret =
        EgretFixture.builder().observed().hosts(hosts()).start(dir, config())) {
      String authority = CRM + ":" + partner.httpsPort();
      String refused = raw(egret.proxyPort(),
          "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n", false);
      assertThat(refused).startsWith("HTTP/1.1 403")
          .contains("Proxy-Status: egret; error=http_request_denied")
          .contains("call http://" + authority + "/... instead (Egret upgrades it to TLS and adds them)")
          .contains("Authorization, Cookie")
          .contains("'tunnel: allow'")
          .doesNotContain(SECRET_V1);
      String line = egret.awaitLogLines(1).get(0);
      assertThat(line).contains("\"outcome\":\"denied\"").contains("call http://")
          .doesNotContain(SECRET_V1);

      // The rule that says tunnel: allow opens the tunnel (with no header added: Egret cannot).
      String open = raw(egret.proxyPort(), "CONNECT " + OPEN + ":" + partner.httpsPort()
          + " HTTP/1.1\r\nHost: " + OPEN + ":" + partner.httpsPort() + "\r\n\r\n", true);
      assertThat(open).startsWith("HTTP/1.1 200");
    }
  }

  @Test
  void aRotatedSecretFileIsUsedAfterTheChange() throws Exception {
    BlockingQueue<String> loads = new LinkedBlockingQueue<>();
    Telemetry recording = new Telemetry() {
      @Override
      public void configLoaded(String sha256) {
        loads.add(sha256);
      }

      @Override
      public void configReloadFailed(String reason) {
        loads.add("failed: " + reason);
      }
    };
    try (EgretFixture egret = EgretFixture.builder().hosts(hosts()).telemetry(recording)
        .start(dir, config())) {
      String startSha = loads.poll(10, TimeUnit.SECONDS);
      egret.server().watch(50);
      assertThat(callCrm(egret, "/before")).isEqualTo("Bearer " + SECRET_V1);

      // The kubelet's update: write the new version beside the old, then swap ..data atomically.
      Path secrets = dir.resolve("secrets");
      Files.createDirectories(secrets.resolve("..v2"));
      Files.writeString(secrets.resolve("..v2/token"), SECRET_V2 + "\n");
      Files.createSymbolicLink(secrets.resolve("..data_tmp"), Path.of("..v2"));
      Files.move(secrets.resolve("..data_tmp"), secrets.resolve("..data"),
          StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);

      // The config file did not change (same sha256); the file it names did.
      assertThat(loads.poll(15, TimeUnit.SECONDS)).isEqualTo(startSha);
      assertThat(callCrm(egret, "/after")).isEqualTo("Bearer " + SECRET_V2);
    } finally {
      Files.deleteIfExists(dir.resolve("secrets/..v2/token"));
      Files.deleteIfExists(dir.resolve("secrets/..v2"));
    }
  }

  @Test
  void aSecretFileThatBreaksIsRefusedOnceAndTheLastGoodValueKeepsServing() throws Exception {
    BlockingQueue<String> loads = new LinkedBlockingQueue<>();
    Telemetry recording = new Telemetry() {
      @Override
      public void configLoaded(String sha256) {
        loads.add("loaded");
      }

      @Override
      public void configReloadFailed(String reason) {
        loads.add("failed: " + reason);
      }
    };
    Path token = dir.resolve("secrets/..v1/token");
    try (EgretFixture egret = EgretFixture.builder().hosts(hosts()).telemetry(recording)
        .start(dir, config())) {
      assertThat(loads.poll(10, TimeUnit.SECONDS)).isEqualTo("loaded");
      egret.server().watch(20);
      replace(token, "two\nlines\n");
      String failed = loads.poll(15, TimeUnit.SECONDS);
      assertThat(failed).startsWith("failed: ").contains("has a line break")
          .doesNotContain("two").doesNotContain(SECRET_V1);
      assertThat(callCrm(egret, "/while-broken")).isEqualTo("Bearer " + SECRET_V1);
      replace(token, SECRET_V2 + "\n");
      assertThat(loads.poll(15, TimeUnit.SECONDS)).as("refused once, then reloaded").isEqualTo("loaded");
      assertThat(callCrm(egret, "/fixed")).isEqualTo("Bearer " + SECRET_V2);
    }
  }

  @Test
  void explainNamesTheHeadersAndWhereTheValueComesFromNeverTheValue() throws Exception {
    Path file = dir.resolve("explain.yaml");
    Files.writeString(file, """
        version: 1
        allow:
          - host: crm.partner.test
            headers:
              set: {Authorization: "Bearer ${env:CRM_TOKEN}", X-Api-Key: "${file:secrets/token}"}
              remove: [Cookie]
        """);
    String out = child(Map.of("CRM_TOKEN", ENV_SECRET), "explain", "--config", file.toString(),
        "http://crm.partner.test/v1/orders");
    assertThat(out).contains("headers:  Authorization: <set from env:CRM_TOKEN>")
        .contains("X-Api-Key: <set from file:secrets/token>")
        .contains("Cookie: <removed>")
        .doesNotContain(ENV_SECRET).doesNotContain(SECRET_V1);
    String tunnel = child(Map.of("CRM_TOKEN", ENV_SECRET), "explain", "--config", file.toString(),
        "crm.partner.test:443");
    assertThat(tunnel).contains("verdict:  deny").contains("call http://crm.partner.test/")
        .doesNotContain(ENV_SECRET);
    String missing = child(Map.of(), "check", file.toString());
    assertThat(missing).contains(file + ":5:28: allow[0].headers.set.Authorization: the "
        + "environment variable CRM_TOKEN is not set");
  }

  /**
   * Replaces a file's content in one step (a new file renamed over it), as a secret agent or
   * the kubelet does: a watcher that reads while a plain write is half done sees a third,
   * truncated content, which is a change of its own.
   */
  private static void replace(Path file, String content) throws Exception {
    Path next = file.resolveSibling(file.getFileName() + ".next");
    Files.writeString(next, content);
    Files.move(next, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  /** Runs {@code egret ARGS} in a child JVM with {@code env} added; returns stdout and stderr. */
  private static String child(Map<String, String> env, String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
        "dev.egret.cli.Egret"));
    command.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
    pb.environment().remove("CRM_TOKEN");
    pb.environment().putAll(env);
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return out;
  }

  private static String callCrm(EgretFixture egret, String path) throws Exception {
    HttpResponse<String> r = egret.client().send(HttpRequest.newBuilder(
        URI.create(url(CRM, partner.httpsPort(), path))).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    return partner.findAll(anyRequestedFor(urlEqualTo(path))).get(0).getHeader("Authorization");
  }

  private static java.net.http.HttpClient client(int proxyPort) {
    return java.net.http.HttpClient.newBuilder()
        .proxy(java.net.ProxySelector.of(new java.net.InetSocketAddress("127.0.0.1", proxyPort)))
        .version(java.net.http.HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5)).build();
  }

  /** Sends raw bytes; reads to the end, or only the response head when {@code headOnly}. */
  private static String raw(int port, String request, boolean headOnly) throws Exception {
    try (Socket s = new Socket("127.0.0.1", port)) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write(request.getBytes(StandardCharsets.US_ASCII));
      out.flush();
      InputStream in = s.getInputStream();
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      int b;
      while ((b = in.read()) >= 0) {
        got.write(b);
        if (headOnly && got.toString(StandardCharsets.US_ASCII).endsWith("\r\n\r\n")) {
          break;
        }
      }
      return got.toString(StandardCharsets.UTF_8);
    }
  }
}
