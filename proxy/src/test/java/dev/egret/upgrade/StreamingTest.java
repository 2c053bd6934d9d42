package dev.egret.upgrade;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bodies of 100 MiB stream through Egret both ways, with and without Content-Length.
 *
 * <p>Egret runs as a child JVM with {@code -Xmx64m -XX:MaxDirectMemorySize=64m} and {@code
 * -XX:+ExitOnOutOfMemoryError}: an Egret that buffered a whole 100 MiB body (on the heap or in
 * direct buffers) would die of it, and the transfer would break off. So a matching byte count and
 * SHA-256 on the far side, with Egret still alive, is the proof that it streamed with flat memory.
 * Neither side of the test holds a body whole either: bytes are generated and digested as they go.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class StreamingTest {
  private static final long SIZE = 100 * Generated.MIB;
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Digest EXPECTED_DOWNLOAD =
      new Digest(SIZE, Generated.sha256(PartnerApi.SEED, SIZE));
  @TempDir static Path dir;
  static PartnerApi partner;
  static EgretFixture egret;
  static HttpClient client;

  @BeforeAll
  static void start() throws Exception {
    TestCert root = TestPki.rootCa("Streaming Test Root").issue();
    partner = PartnerApi.start(root.leaf("127.0.0.1").issue(), dir);
    Path rootPem = root.writePem(dir).cert();
    egret = EgretFixture.builder()
        .childJvm("-Xmx64m", "-XX:MaxDirectMemorySize=64m", "-XX:+ExitOnOutOfMemoryError")
        .start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: 127.0.0.1
            ports: [%d]
        """.formatted(rootPem.getFileName(), partner.port()));
    client = HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", egret.proxyPort())))
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build();
  }

  @AfterAll
  static void stop() throws Exception {
    if (egret != null) {
      egret.close();
    }
    if (partner != null) {
      partner.close();
    }
  }

  @AfterEach
  void egretSurvived() {
    assertThat(egret.alive()).as("egret is alive; it said: %s then %s", egret.messages(),
        egret.logLines()).isTrue();
    assertThat(egret.messages()).noneMatch(m -> m.contains("OutOfMemoryError"));
  }

  private static URI url(String path) {
    return URI.create("http://127.0.0.1:" + partner.port() + path);
  }

  @Test
  void streamsA100MibResponseAndPassesItsContentLength() throws Exception {
    HttpResponse<InputStream> r = client.send(HttpRequest.newBuilder(url("/bytes/" + SIZE)).build(),
        HttpResponse.BodyHandlers.ofInputStream());
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.headers().firstValueAsLong("content-length")).hasValue(SIZE);
    assertThat(r.headers().firstValue("transfer-encoding")).isEmpty();
    assertThat(digest(r.body())).isEqualTo(EXPECTED_DOWNLOAD);
    JsonNode log = JSON.readTree(egret.awaitLogLine(l -> l.contains("/bytes/" + SIZE + "\""),
        Duration.ofSeconds(10)));
    assertThat(log.get("outcome").asText()).isEqualTo("allowed");
    assertThat(log.get("bytes_downstream").asLong()).isEqualTo(SIZE);
  }

  @Test
  void streamsA100MibChunkedResponse() throws Exception {
    HttpResponse<InputStream> r = client.send(
        HttpRequest.newBuilder(url("/bytes/" + SIZE + "?chunked")).build(),
        HttpResponse.BodyHandlers.ofInputStream());
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.headers().firstValue("content-length")).isEmpty();
    assertThat(digest(r.body())).isEqualTo(EXPECTED_DOWNLOAD);
  }

  @Test
  void streamsA100MibRequestBodyWithContentLength() throws Exception {
    HttpRequest request = HttpRequest.newBuilder(url("/digest"))
        .POST(BodyPublishers.fromPublisher(
            BodyPublishers.ofInputStream(() -> Generated.stream(7, SIZE)), SIZE))
        .build();
    JsonNode answer =
        JSON.readTree(client.send(request, HttpResponse.BodyHandlers.ofString()).body());
    assertThat(answer.get("bytes").asLong()).isEqualTo(SIZE);
    assertThat(answer.get("sha256").asText()).isEqualTo(Generated.sha256(7, SIZE));
    assertThat(answer.get("contentLength").asText()).isEqualTo(Long.toString(SIZE));
    assertThat(answer.get("transferEncoding").isNull()).isTrue();
  }

  @Test
  void streamsA100MibChunkedRequestBody() throws Exception {
    // ofInputStream has no length, so the JDK client sends it chunked.
    HttpRequest request = HttpRequest.newBuilder(url("/digest"))
        .PUT(BodyPublishers.ofInputStream(() -> Generated.stream(11, SIZE)))
        .build();
    HttpResponse<String> r = client.send(request, HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    JsonNode answer = JSON.readTree(r.body());
    assertThat(answer.get("bytes").asLong()).isEqualTo(SIZE);
    assertThat(answer.get("sha256").asText()).isEqualTo(Generated.sha256(11, SIZE));
    assertThat(answer.get("transferEncoding").asText()).isEqualToIgnoringCase("chunked");
    assertThat(answer.get("contentLength").isNull()).isTrue();
  }

  @Test
  void curlUploadWaitsForContinueAndArrivesWhole() throws Exception {
    long size = 3 * Generated.MIB;
    Path file = dir.resolve("upload.bin");
    try (InputStream in = Generated.stream(13, size);
        OutputStream out = Files.newOutputStream(file)) {
      in.transferTo(out);
    }
    Process curl = new ProcessBuilder("curl", "-sS", "-v", "--max-time", "60",
        "-x", "http://127.0.0.1:" + egret.proxyPort(), "-H", "Expect: 100-continue",
        "-T", file.toString(), url("/digest").toString())
        .redirectErrorStream(true).start();
    String out = new String(curl.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(curl.waitFor(70, TimeUnit.SECONDS)).isTrue();
    assertThat(curl.exitValue()).as(out).isZero();
    assertThat(out).contains("> Expect: 100-continue").contains("< HTTP/1.1 100 Continue");
    String json = out.substring(out.indexOf("{\"bytes\""));
    JsonNode answer = JSON.readTree(json.substring(0, json.indexOf('}') + 1));
    assertThat(answer.get("bytes").asLong()).isEqualTo(size);
    assertThat(answer.get("sha256").asText()).isEqualTo(Generated.sha256(13, size));
  }

  record Digest(long bytes, String sha256) {}

  private static Digest digest(InputStream body) throws Exception {
    MessageDigest digest = Generated.newDigest();
    long count = 0;
    byte[] buf = new byte[64 * 1024];
    try (body) {
      int n;
      while ((n = body.read(buf)) > 0) {
        digest.update(buf, 0, n);
        count += n;
      }
    }
    return new Digest(count, HexFormat.of().formatHex(digest.digest()));
  }
}
