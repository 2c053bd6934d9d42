package dev.egret.lambda;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code egret lambda} in a JVM of its own against an Extensions API that misbehaves: answers
 * an error, never answers, or starts an answer and never finishes it. Whatever it does, the
 * extension exits in bounded time, non-zero, with a line that says which call failed; an
 * extension that outlives its API keeps the sandbox from ever shutting down cleanly.
 */
class ExtensionDeadlinesTest {
  /** The slowest way out: a 10 s register deadline plus a loaded machine's JVM exit. */
  private static final Duration EXIT_WITHIN = Duration.ofSeconds(20);

  @TempDir Path dir;

  private Layer.Child extension(FakeExtensionsApi api, String yaml) throws Exception {
    return Layer.extension(api, dir, Files.writeString(dir.resolve("egret.yaml"), yaml));
  }

  private static final String GOOD = """
      version: 1
      listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
      allow:
        - host: api.example.com
      """;

  /** Waits for the exit; returns the seconds from {@code sinceNanos} to when it was seen. */
  private static double exited(Layer.Child egret, long sinceNanos) throws Exception {
    boolean exited = egret.process.waitFor(EXIT_WITHIN.toMillis(), TimeUnit.MILLISECONDS);
    double seconds = (System.nanoTime() - sinceNanos) / 1e9;
    assertThat(exited).as("exited within %s; stderr %s", EXIT_WITHIN, egret.stderr).isTrue();
    return seconds;
  }

  @Test
  void exitsWhenEventNextFailsAndExitErrorIsNeverAnswered() throws Exception {
    try (FakeExtensionsApi api = FakeExtensionsApi.start()
        .misbehave("/event/next", req -> req.response().setStatusCode(500).end("{\"errorType\":\"Internal\"}"))
        .misbehave("/exit/error", req -> { })) {
      try (Layer.Child egret = extension(api, GOOD)) {
        FakeExtensionsApi.Call next = api.firstNext.get(60, TimeUnit.SECONDS);
        FakeExtensionsApi.Call exitError = api.exitError.get(10, TimeUnit.SECONDS);
        assertThat(exitError.headers().get("Lambda-Extension-Function-Error-Type"))
            .isEqualTo("Extension.EventLoopFailed");
        double seconds = exited(egret, next.atNanos());
        assertThat(egret.process.exitValue()).isEqualTo(1);
        assertThat(egret.stderr).anySatisfy(l -> assertThat(l).contains("event/next failed")
            .contains("answered 500"));
        assertThat(egret.stderr).anySatisfy(l -> assertThat(l)
            .contains("POST /2020-01-01/extension/exit/error was not answered within 2 s"));
        System.out.printf("exited %.1f s after event/next answered 500%n", seconds);
      }
    }
  }

  @Test
  void exitsWhenEventNextStartsAnAnswerAndNeverFinishesIt() throws Exception {
    try (FakeExtensionsApi api = FakeExtensionsApi.start()
        .misbehave("/event/next", req -> req.response().setChunked(true)
            .putHeader("Content-Type", "application/json").write("{\"eventType\":"))) {
      try (Layer.Child egret = extension(api, GOOD)) {
        FakeExtensionsApi.Call next = api.firstNext.get(60, TimeUnit.SECONDS);
        exited(egret, next.atNanos());
        assertThat(egret.process.exitValue()).isEqualTo(1);
        assertThat(egret.stderr).anySatisfy(l -> assertThat(l).contains("event/next failed")
            .contains("body was not complete within 2 s"));
      }
    }
  }

  @Test
  void exitsWhenRegisterIsNeverAnswered() throws Exception {
    try (FakeExtensionsApi api = FakeExtensionsApi.start().misbehave("/register", req -> { })) {
      try (Layer.Child egret = extension(api, GOOD)) {
        FakeExtensionsApi.Call register = api.registered.get(60, TimeUnit.SECONDS);
        exited(egret, register.atNanos());
        assertThat(egret.process.exitValue()).isEqualTo(1);
        assertThat(egret.stderr).anySatisfy(l -> assertThat(l)
            .contains("cannot register with the Extensions API")
            .contains("was not answered within 10 s"));
        assertThat(api.calls).extracting(FakeExtensionsApi.Call::path)
            .doesNotContain("/2020-01-01/extension/event/next");
      }
    }
  }

  @Test
  void exitsTwoWhenABadConfigsInitErrorIsNeverAnswered() throws Exception {
    try (FakeExtensionsApi api = FakeExtensionsApi.start().misbehave("/init/error", req -> { })) {
      try (Layer.Child egret = extension(api, "version: 1\nallow:\n  - host: a.example\n    ports: [0]\n")) {
        FakeExtensionsApi.Call initError = api.initError.get(60, TimeUnit.SECONDS);
        exited(egret, initError.atNanos());
        assertThat(egret.process.exitValue()).isEqualTo(2);
        assertThat(egret.stderr).anySatisfy(l -> assertThat(l).contains("ports[0] is 0"));
        assertThat(egret.stderr).anySatisfy(l -> assertThat(l)
            .contains("init/error was not answered within 2 s"));
      }
    }
  }
}
