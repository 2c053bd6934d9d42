package dev.egret.lambda;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** {@code egret lambda}'s refusals before it serves: each names the problem, none is silent. */
class ExtensionCommandTest {
  record Result(int code, String err) {}

  private static Result lambda(Map<String, String> env, String... args) {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Extension.main(new ArrayDeque<>(List.of(args)), env,
        new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(code, err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void outsideLambdaExitsTwoSayingWhatIsMissing() {
    Result r = lambda(Map.of("EGRET_CONFIG", "egret.yaml"));
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err()).contains("AWS_LAMBDA_RUNTIME_API is not set");
  }

  @Test
  void malformedRuntimeApiExitsTwo() {
    Result r = lambda(Map.of("AWS_LAMBDA_RUNTIME_API", "127.0.0.1", "EGRET_CONFIG", "egret.yaml"));
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err()).contains("AWS_LAMBDA_RUNTIME_API must be HOST:PORT, got '127.0.0.1'");
  }

  @Test
  void unknownArgumentOrBadIntervalExitsTwo() {
    assertThat(lambda(Map.of(), "--verbose").err()).contains("unexpected argument '--verbose'");
    Result r = lambda(Map.of("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001", "EGRET_METRICS_INTERVAL", "often"));
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err()).contains("EGRET_METRICS_INTERVAL must be a duration such as 60s");
  }

  @Test
  void withoutEgretConfigRegistersThenReportsConfigInvalid() throws Exception {
    try (FakeExtensionsApi api = FakeExtensionsApi.start()) {
      Result r = lambda(Map.of("AWS_LAMBDA_RUNTIME_API", api.address()), "--name", "egret-test");
      assertThat(r.code()).isEqualTo(2);
      assertThat(api.registered.get(5, TimeUnit.SECONDS).headers().get("Lambda-Extension-Name"))
          .isEqualTo("egret-test");
      FakeExtensionsApi.Call error = api.initError.get(5, TimeUnit.SECONDS);
      assertThat(error.headers().get("Lambda-Extension-Function-Error-Type")).isEqualTo("Extension.ConfigInvalid");
      assertThat(new ObjectMapper().readTree(error.body()).get("errorMessage").asText())
          .startsWith("EGRET_CONFIG is not set");
      assertThat(api.firstNext).isNotDone();
    }
  }

  @Test
  void unreachableExtensionsApiExitsOneNamingIt() throws Exception {
    int closedPort;
    try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      closedPort = s.getLocalPort();
    }
    Result r = lambda(Map.of("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:" + closedPort));
    assertThat(r.code()).isEqualTo(1);
    assertThat(r.err()).contains("cannot register with the Extensions API at 127.0.0.1");
  }

  @Test
  void metricsIntervalTakesTheConfigsDurationForms() {
    assertThat(Extension.interval(null)).hasSeconds(60);
    assertThat(Extension.interval("500ms")).hasMillis(500);
    assertThat(Extension.interval("2m")).hasMinutes(2);
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> Extension.interval("10ms"))
        .hasMessageContaining("at least 100ms");
  }

  /** An Extensions API that misbehaves on register as {@code answer} says. */
  private static Result againstApi(io.vertx.core.Handler<io.vertx.core.http.HttpServerRequest> answer)
      throws Exception {
    io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
    try {
      int port = vertx.createHttpServer().requestHandler(answer).listen(0, "127.0.0.1")
          .await(10, TimeUnit.SECONDS).actualPort();
      return lambda(Map.of("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:" + port, "EGRET_CONFIG", "egret.yaml"));
    } finally {
      vertx.close().await(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void registerAnsweredWithoutAnIdentifierExitsOne() throws Exception {
    Result r = againstApi(req -> req.response().end("{}"));
    assertThat(r.code()).isEqualTo(1);
    assertThat(r.err()).contains("register answered without a Lambda-Extension-Identifier header");
  }

  @Test
  void registerRefusedExitsOneWithTheStatusAndBody() throws Exception {
    Result r = againstApi(req -> req.response().setStatusCode(403)
        .end("{\"errorType\":\"Extension.Forbidden\"}"));
    assertThat(r.code()).isEqualTo(1);
    assertThat(r.err()).contains("POST /2020-01-01/extension/register answered 403: {\"errorType\":\"Extension.Forbidden\"}");
  }

  @Test
  void anOversizedAnswerIsRefusedNotBuffered() throws Exception {
    Result r = againstApi(req -> req.response().putHeader("Lambda-Extension-Identifier", "x")
        .end("x".repeat(ExtensionsApi.MAX_BODY + 1)));
    assertThat(r.code()).isEqualTo(1);
    assertThat(r.err()).contains("the Extensions API sent a body over 65536 bytes");
  }
}
