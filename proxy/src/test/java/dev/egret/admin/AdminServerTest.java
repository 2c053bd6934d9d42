package dev.egret.admin;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class AdminServerTest {
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  private final AtomicInteger scrapes = new AtomicInteger();
  private final AtomicReference<String> scrapeThread = new AtomicReference<>();
  private Vertx vertx;
  private AdminServer admin;
  private int port;

  @BeforeEach
  void start() throws Exception {
    vertx = Vertx.vertx();
    admin = new AdminServer(vertx, "127.0.0.1", 0, () -> {
      scrapeThread.set(Thread.currentThread().getName());
      return "# TYPE egret_tunnels_active gauge\negret_tunnels_active " + scrapes.incrementAndGet()
          + ".0\n";
    });
    port = await(admin.start());
  }

  @AfterEach
  void stop() throws Exception {
    await(admin.close());
    await(vertx.close());
  }

  @Test
  void servesPrometheusTextOffTheEventLoop() throws Exception {
    HttpResponse<String> response = get("/metrics");

    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.headers().firstValue("content-type"))
        .contains("text/plain; version=0.0.4; charset=utf-8");
    assertThat(response.body()).isEqualTo(
        "# TYPE egret_tunnels_active gauge\negret_tunnels_active 1.0\n");
    assertThat(scrapeThread.get()).doesNotContain("eventloop");
  }

  @Test
  void answersHealthzWhileAlive() throws Exception {
    HttpResponse<String> response = get("/healthz");

    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.body()).isEqualTo("ok");
  }

  @Test
  void isReadyOnlyBetweenMarkReadyAndMarkDraining() throws Exception {
    assertThat(get("/readyz").statusCode()).as("before the proxy serves").isEqualTo(503);

    admin.markReady();
    HttpResponse<String> ready = get("/readyz");
    assertThat(ready.statusCode()).isEqualTo(200);
    assertThat(ready.body()).isEqualTo("ready");

    admin.markDraining();
    HttpResponse<String> draining = get("/readyz");
    assertThat(draining.statusCode()).isEqualTo(503);
    assertThat(draining.body()).isEqualTo("draining");

    admin.markReady();
    assertThat(get("/readyz").statusCode()).as("a drain is not undone").isEqualTo(503);
    assertThat(get("/healthz").statusCode()).as("alive while draining").isEqualTo(200);
  }

  @Test
  void answers404ForOtherPathsAnd405ForOtherMethods() throws Exception {
    assertThat(get("/").statusCode()).isEqualTo(404);
    assertThat(get("/metrics/extra").statusCode()).isEqualTo(404);

    HttpResponse<String> post = send(HttpRequest.newBuilder(uri("/metrics"))
        .POST(HttpRequest.BodyPublishers.ofString("x")));
    assertThat(post.statusCode()).isEqualTo(405);
    assertThat(post.headers().firstValue("allow")).contains("GET");
    assertThat(send(HttpRequest.newBuilder(uri("/readyz"))
        .method("DELETE", HttpRequest.BodyPublishers.noBody())).statusCode()).isEqualTo(405);
    assertThat(scrapes.get()).as("a refused request renders nothing").isZero();
  }

  @Test
  void answers500WhenTheScrapeFails() throws Exception {
    AdminServer broken = new AdminServer(vertx, "127.0.0.1", 0, () -> {
      throw new IllegalStateException("registry closed");
    });
    int brokenPort = await(broken.start());
    try {
      HttpResponse<String> response = http.send(
          HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + brokenPort + "/metrics"))
              .timeout(Duration.ofSeconds(10)).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(response.statusCode()).isEqualTo(500);
      assertThat(response.body()).contains("IllegalStateException");
    } finally {
      await(broken.close());
    }
  }

  private HttpResponse<String> get(String path) throws Exception {
    return send(HttpRequest.newBuilder(uri(path)).GET());
  }

  private HttpResponse<String> send(HttpRequest.Builder request) throws Exception {
    return http.send(request.timeout(Duration.ofSeconds(10)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private URI uri(String path) {
    return URI.create("http://127.0.0.1:" + port + path);
  }

  private static <T> T await(Future<T> future) throws Exception {
    return future.toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }
}
