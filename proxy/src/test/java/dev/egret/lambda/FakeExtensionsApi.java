package dev.egret.lambda;

import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Lambda's Extensions API, faked on 127.0.0.1 with a Vert.x server: answers {@code register} with
 * a fresh identifier, holds each {@code event/next} until the test answers it with an event, and
 * records every call (headers, body, arrival time) for assertions.
 *
 * <pre>{@code
 * try (FakeExtensionsApi api = FakeExtensionsApi.start()) {
 *   ... start the extension with AWS_LAMBDA_RUNTIME_API=api.address() ...
 *   api.answerNext(FakeExtensionsApi.shutdown(2000), Duration.ofSeconds(10));
 * }
 * }</pre>
 */
final class FakeExtensionsApi implements AutoCloseable {
  record Call(String method, String path, MultiMap headers, String body, long atNanos) {}

  final String identifier = UUID.randomUUID().toString();
  final List<Call> calls = new CopyOnWriteArrayList<>();
  final CompletableFuture<Call> registered = new CompletableFuture<>();
  final CompletableFuture<Call> firstNext = new CompletableFuture<>();
  final CompletableFuture<Call> initError = new CompletableFuture<>();
  final CompletableFuture<Call> exitError = new CompletableFuture<>();
  private final java.util.concurrent.BlockingDeque<HttpServerRequest> waiting =
      new java.util.concurrent.LinkedBlockingDeque<>();
  private final Map<String, Handler<HttpServerRequest>> misbehaviour = new ConcurrentHashMap<>();
  private final Vertx vertx;
  private final HttpServer server;

  private FakeExtensionsApi(Vertx vertx) throws Exception {
    this.vertx = vertx;
    this.server = vertx.createHttpServer().requestHandler(this::handle);
    server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
  }

  static FakeExtensionsApi start() throws Exception {
    return new FakeExtensionsApi(Vertx.vertx());
  }

  /**
   * From now on answers {@code path} (after {@code /2020-01-01/extension}, e.g. {@code
   * /event/next}) with {@code answer} instead; the call is still recorded and still completes its
   * future ({@link #exitError}, ...). An answer that never ends the response is an API that hangs.
   */
  FakeExtensionsApi misbehave(String path, Handler<HttpServerRequest> answer) {
    misbehaviour.put("/2020-01-01/extension" + path, answer);
    return this;
  }

  /** {@code host:port}, as Lambda sets {@code AWS_LAMBDA_RUNTIME_API}. */
  String address() {
    return "127.0.0.1:" + server.actualPort();
  }

  private void handle(HttpServerRequest request) {
    long at = System.nanoTime();
    request.body().onSuccess(body -> {
      Call call = new Call(request.method().name(), request.path(),
          MultiMap.caseInsensitiveMultiMap().addAll(request.headers()), body.toString(), at);
      calls.add(call);
      Handler<HttpServerRequest> misbehave = misbehaviour.get(request.path());
      if (misbehave != null) {
        misbehave.handle(request);
        switch (request.path()) {
          case "/2020-01-01/extension/register" -> registered.complete(call);
          case "/2020-01-01/extension/event/next" -> firstNext.complete(call);
          case "/2020-01-01/extension/init/error" -> initError.complete(call);
          case "/2020-01-01/extension/exit/error" -> exitError.complete(call);
          default -> { }
        }
        return;
      }
      switch (request.path()) {
        case "/2020-01-01/extension/register" -> {
          request.response().putHeader("Lambda-Extension-Identifier", identifier)
              .putHeader("Content-Type", "application/json")
              .end(new JsonObject().put("functionName", "orders").put("functionVersion", "$LATEST")
                  .put("handler", "app.handler").encode());
          registered.complete(call);
        }
        case "/2020-01-01/extension/event/next" -> {
          firstNext.complete(call);
          waiting.add(request);
        }
        case "/2020-01-01/extension/init/error" -> {
          request.response().setStatusCode(202).end("{\"status\":\"OK\"}");
          initError.complete(call);
        }
        case "/2020-01-01/extension/exit/error" -> {
          request.response().setStatusCode(202).end("{\"status\":\"OK\"}");
          exitError.complete(call);
        }
        default -> request.response().setStatusCode(404).end();
      }
    });
  }

  /**
   * Waits up to {@code within} until the extension asks for its next event, without answering:
   * it has handled the one before.
   */
  void awaitNextCall(Duration within) throws InterruptedException {
    HttpServerRequest next = waiting.poll(within.toMillis(), TimeUnit.MILLISECONDS);
    if (next == null) {
      throw new AssertionError("the extension asked for no next event within " + within
          + "; calls: " + calls);
    }
    waiting.putFirst(next);
  }

  /** Answers the oldest pending {@code event/next} (waiting up to {@code within} for one). */
  void answerNext(JsonObject event, Duration within) throws InterruptedException {
    HttpServerRequest next = waiting.poll(within.toMillis(), TimeUnit.MILLISECONDS);
    if (next == null) {
      throw new AssertionError("the extension asked for no next event within " + within
          + "; calls: " + calls);
    }
    next.response().putHeader("Lambda-Extension-Event-Identifier", UUID.randomUUID().toString())
        .putHeader("Content-Type", "application/json").end(event.encode());
  }

  static JsonObject invoke() {
    return new JsonObject().put("eventType", "INVOKE")
        .put("deadlineMs", System.currentTimeMillis() + 3000)
        .put("requestId", UUID.randomUUID().toString())
        .put("invokedFunctionArn", "arn:aws:lambda:eu-west-1:123456789012:function:orders");
  }

  static JsonObject shutdown(long deadlineMs) {
    return new JsonObject().put("eventType", "SHUTDOWN").put("shutdownReason", "spindown")
        .put("deadlineMs", deadlineMs);
  }

  @Override
  public void close() throws Exception {
    vertx.close().await(10, TimeUnit.SECONDS);
  }
}
