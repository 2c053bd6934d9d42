package dev.egret.lambda;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import dev.egret.trace.OtlpReceiver;
import io.opentelemetry.proto.trace.v1.Span;
import io.vertx.core.json.JsonObject;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code egret lambda} with tracing on, in a JVM of its own: it registers for INVOKE as well,
 * the invocation's {@code X-Amzn-Trace-Id} parents a hop that brings no trace header, and the
 * spans reach the collector by the time the extension has handled SHUTDOWN.
 */
class ExtensionTracingTest {
  private static final Pattern PROXY_PORT = Pattern.compile("proxy on 127\\.0\\.0\\.1:(\\d+)");
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;

  @Test
  void theInvocationsTraceHeaderParentsHopsAndSpansAreFlushedByShutdown() throws Exception {
    TestCert root = TestPki.rootCa("Lambda Tracing Root").issue();
    try (FakeExtensionsApi api = FakeExtensionsApi.start();
         OtlpReceiver otlp = new OtlpReceiver();
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
          tracing: {exporter: otlp, endpoint: "%s", sampleRatio: 0}
          """.formatted(rootPem, upstream.port(), otlp.endpoint()));
      try (Layer.Child egret = child(api, config)) {
        FakeExtensionsApi.Call register = api.registered.get(60, TimeUnit.SECONDS);
        assertThat(JSON.readTree(register.body()).get("events").toString())
            .isEqualTo("[\"INVOKE\",\"SHUTDOWN\"]");
        Matcher port = PROXY_PORT.matcher(egret.stderrLine(l -> PROXY_PORT.matcher(l).find())
            .get(60, TimeUnit.SECONDS));
        assertThat(port.find()).isTrue();
        int proxyPort = Integer.parseInt(port.group(1));

        JsonObject invoke = FakeExtensionsApi.invoke().put("tracing", new JsonObject()
            .put("type", "X-Amzn-Trace-Id")
            .put("value", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"));
        api.answerNext(invoke, Duration.ofSeconds(30));
        // The extension has taken the invocation's header once it asks for the next event.
        api.awaitNextCall(Duration.ofSeconds(30));
        // The hop brings no trace header: the invocation's is its parent (at sampleRatio 0 a
        // hop with no parent would not be traced at all).
        String response = exchange(proxyPort, "GET http://127.0.0.1:" + upstream.port()
            + "/orders/7 HTTP/1.1\r\nHost: 127.0.0.1:" + upstream.port() + "\r\nConnection: close\r\n\r\n");
        assertThat(response).startsWith("HTTP/1.1 200");

        api.answerNext(FakeExtensionsApi.shutdown(System.currentTimeMillis() + 2000),
            Duration.ofSeconds(30));
        assertThat(egret.process.waitFor(10, TimeUnit.SECONDS)).as("exited; stderr %s", egret.stderr)
            .isTrue();
        assertThat(egret.process.exitValue()).as("stderr %s", egret.stderr).isZero();
      }
      List<Span> spans = otlp.awaitSpans(2, Duration.ofSeconds(5));
      assertThat(spans).anySatisfy(s -> {
        assertThat(s.getKind()).isEqualTo(Span.SpanKind.SPAN_KIND_SERVER);
        assertThat(HexFormat.of().formatHex(s.getTraceId().toByteArray()))
            .isEqualTo("5759e988bd862e3fe1be46a994272793");
        assertThat(HexFormat.of().formatHex(s.getParentSpanId().toByteArray()))
            .isEqualTo("53995c3f42cd8ad8");
      });
    }
  }

  private Layer.Child child(FakeExtensionsApi api, Path config) throws Exception {
    return Layer.extension(api, dir, config);
  }

  private static String exchange(int port, String request) throws Exception {
    try (Socket s = new Socket("127.0.0.1", port)) {
      s.setSoTimeout(20_000);
      s.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
      InputStream in = s.getInputStream();
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }
}
