package dev.egret.upgrade;

import dev.egret.testing.TestCert;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.PfxOptions;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * The third-party API for the streaming, failure and pooling tests: a Vert.x HTTPS server on
 * 127.0.0.1 port 0 with its own event loop, which streams with back-pressure and misbehaves on
 * request. Routes:
 *
 * <ul>
 *   <li>{@code GET|HEAD /bytes/N} N bytes of {@link Generated} stream 1 with Content-Length;
 *       {@code /bytes/N?chunked} the same bytes chunked.
 *   <li>{@code POST|PUT /digest} reads the body and answers JSON {@code bytes}, {@code sha256},
 *       {@code contentLength} and {@code transferEncoding} as received.
 *   <li>{@code /status/S} answers status S with no body (204, 304).
 *   <li>{@code /hang} reads the request and never answers.
 *   <li>{@code /slow/MS} answers {@code 200 slow} after MS milliseconds.
 *   <li>{@code /break/N} promises 2N bytes (or, with {@code ?chunked}, a chunked body), sends N,
 *       then closes the connection.
 * </ul>
 *
 * <p>{@link #awaitEvent} tells how bodies went, each event ending with the request's URI:
 * {@code upload started}, {@code upload complete N}, {@code upload aborted N} (the request broke
 * off after N bytes), {@code download complete}, {@code download aborted} (the connection closed
 * before the response ended).
 *
 * <pre>
 * try (PartnerApi partner = PartnerApi.start(leaf, dir)) { ... partner.port() ... }
 * </pre>
 */
final class PartnerApi implements AutoCloseable {
  static final long SEED = 1;
  private static final int CHUNK = 64 * 1024;

  private final Vertx vertx;
  private final HttpServer server;
  private final AtomicInteger connections = new AtomicInteger();
  private final List<String> requests = new CopyOnWriteArrayList<>();
  private final List<String> events = new ArrayList<>();

  private PartnerApi(Vertx vertx, HttpServer server) {
    this.vertx = vertx;
    this.server = server;
  }

  static PartnerApi start(TestCert leaf, Path dir) throws Exception {
    Vertx vertx = Vertx.vertx();
    HttpServer server = vertx.createHttpServer(new HttpServerOptions()
        .setHost("127.0.0.1").setPort(0).setSsl(true)
        .setKeyCertOptions(new PfxOptions().setPath(leaf.writePkcs12(dir).toString())
            .setPassword(TestCert.PASSWORD)));
    PartnerApi api = new PartnerApi(vertx, server);
    server.connectionHandler(c -> api.connections.incrementAndGet());
    server.requestHandler(api::handle);
    server.listen().await(10, TimeUnit.SECONDS);
    return api;
  }

  int port() {
    return server.actualPort();
  }

  /** TLS connections accepted so far. */
  int connections() {
    return connections.get();
  }

  /** {@code METHOD path} of every request received, in order. */
  List<String> requests() {
    return List.copyOf(requests);
  }

  /** Waits for an event (see the class doc) to be recorded; fails with the events so far. */
  synchronized String awaitEvent(Predicate<String> match, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      for (String e : events) {
        if (match.test(e)) {
          return e;
        }
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("no matching event within " + timeout + ": " + events);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  synchronized List<String> events() {
    return List.copyOf(events);
  }

  private synchronized void event(String e) {
    events.add(e);
    notifyAll();
  }

  private void handle(HttpServerRequest req) {
    requests.add(req.method() + " " + req.path());
    String[] parts = req.path().split("/");
    String route = parts.length > 1 ? parts[1] : "";
    switch (route) {
      case "bytes" -> bytes(req, Long.parseLong(parts[2]), req.query() != null
          && req.query().contains("chunked"));
      case "digest" -> digest(req);
      case "status" -> req.response().setStatusCode(Integer.parseInt(parts[2]))
          .putHeader("ETag", "\"v1\"").end();
      case "hang" -> req.end(); // read it all, answer nothing
      case "slow" -> vertx.setTimer(Long.parseLong(parts[2]),
          id -> req.response().putHeader("Content-Length", "4").end("slow"));
      case "break" -> broken(req, Long.parseLong(parts[2]), req.query() != null
          && req.query().contains("chunked"));
      default -> req.response().setStatusCode(404).end();
    }
  }

  private void bytes(HttpServerRequest req, long length, boolean chunked) {
    HttpServerResponse resp = req.response().putHeader("Content-Type", "application/octet-stream");
    if (chunked) {
      resp.setChunked(true);
    } else {
      resp.putHeader("Content-Length", Long.toString(length));
    }
    if (req.method() == HttpMethod.HEAD) {
      resp.end();
      return;
    }
    resp.closeHandler(v -> {
      if (!resp.ended()) {
        event("download aborted " + req.uri());
      }
    });
    pump(resp, 0, length, () -> event("download complete " + req.uri()));
  }

  /**
   * Writes {@code [from, to)} one chunk per event-loop turn, waiting for a drain when the write
   * queue is full. One chunk per turn matters: behind TLS, Netty reports the queue full only on
   * a later turn, so a loop of writes in one turn would never see it and buffer everything.
   */
  private void pump(HttpServerResponse resp, long from, long to, Runnable ended) {
    if (resp.closed()) {
      return; // the client went away; the close handler recorded it
    }
    if (from >= to) {
      resp.end().onSuccess(v -> ended.run());
      return;
    }
    int n = (int) Math.min(CHUNK, to - from);
    byte[] chunk = new byte[n];
    Generated.fill(SEED, from, chunk, 0, n);
    resp.write(Buffer.buffer(chunk));
    if (resp.writeQueueFull()) {
      resp.drainHandler(v -> pump(resp, from + n, to, ended));
    } else {
      vertx.runOnContext(v -> pump(resp, from + n, to, ended));
    }
  }

  private void digest(HttpServerRequest req) {
    MessageDigest digest = Generated.newDigest();
    long[] count = {0};
    event("upload started " + req.uri());
    req.exceptionHandler(e -> event("upload aborted " + count[0] + " " + req.uri()));
    req.handler(buf -> {
      byte[] bytes = buf.getBytes();
      digest.update(bytes);
      count[0] += bytes.length;
    });
    req.endHandler(v -> {
      event("upload complete " + count[0] + " " + req.uri());
      JsonObject answer = new JsonObject()
          .put("bytes", count[0])
          .put("sha256", HexFormat.of().formatHex(digest.digest()))
          .put("contentLength", req.getHeader("Content-Length"))
          .put("transferEncoding", req.getHeader("Transfer-Encoding"));
      req.response().putHeader("Content-Type", "application/json").end(answer.encode());
    });
  }

  private static void broken(HttpServerRequest req, long sent, boolean chunked) {
    HttpServerResponse resp = req.response();
    if (chunked) {
      resp.setChunked(true);
    } else {
      resp.putHeader("Content-Length", Long.toString(sent * 2));
    }
    byte[] chunk = new byte[(int) sent];
    Generated.fill(SEED, 0, chunk, 0, chunk.length);
    resp.write(Buffer.buffer(chunk)).onComplete(v -> req.connection().close());
  }

  @Override
  public void close() throws Exception {
    vertx.close().await(10, TimeUnit.SECONDS);
  }
}
