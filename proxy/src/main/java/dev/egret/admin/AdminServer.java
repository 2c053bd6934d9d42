package dev.egret.admin;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import java.util.concurrent.Callable;

/**
 * The admin listener ({@code listen.admin}), apart from the proxy port so that Prometheus and
 * health checks never compete with proxied traffic. Usage:
 *
 * <pre>{@code
 * AdminServer admin = new AdminServer(vertx, "127.0.0.1", 9901, telemetry::scrape);
 * int port = admin.start().await();   // bound port; 0 asks for any
 * admin.markReady();                  // once the proxy listener is bound
 * admin.markDraining();               // on shutdown, before closing the proxy listener
 * admin.close();
 * }</pre>
 *
 * <ul>
 *   <li>{@code GET /metrics}: Prometheus text format 0.0.4, scraped on a worker thread;
 *   <li>{@code GET /healthz}: 200 {@code ok} while the process serves HTTP at all;
 *   <li>{@code GET /readyz}: 200 {@code ready} after {@link #markReady()}, 503 before it and for
 *       good after {@link #markDraining()}, so a load balancer or the ECS/Kubernetes probe stops
 *       sending work before the proxy closes.
 * </ul>
 *
 * Other paths are 404; another method on a known path is 405 with {@code Allow: GET}.
 */
public final class AdminServer {
  /** The Prometheus text exposition format's content type. */
  public static final String METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
  private static final String TEXT = "text/plain; charset=utf-8";

  private enum Readiness { STARTING, READY, DRAINING }

  private final Vertx vertx;
  private final String host;
  private final int port;
  private final Callable<String> scrape;
  // Written by whoever drives the lifecycle, read by the event loop serving /readyz.
  private volatile Readiness readiness = Readiness.STARTING;
  private HttpServer server;

  /**
   * @param host the address to bind, from {@code listen.admin}
   * @param port the port to bind, 0 for any (tests)
   * @param scrape renders the metrics; may take milliseconds, so it runs on a worker thread
   */
  public AdminServer(Vertx vertx, String host, int port, Callable<String> scrape) {
    this.vertx = vertx;
    this.host = host;
    this.port = port;
    this.scrape = scrape;
  }

  /** Binds the listener; the future holds the bound port. */
  public Future<Integer> start() {
    HttpServerOptions options = new HttpServerOptions()
        .setHost(host)
        .setPort(port)
        // A scrape or probe is one small request; an idle keep-alive connection is not kept long.
        .setIdleTimeout(60)
        .setMaxInitialLineLength(1024)
        .setMaxHeaderSize(8192);
    server = vertx.createHttpServer(options).requestHandler(this::handle);
    return server.listen().map(HttpServer::actualPort);
  }

  /** The proxy is serving: /readyz answers 200. Ignored once draining. */
  public void markReady() {
    if (readiness == Readiness.STARTING) {
      readiness = Readiness.READY;
    }
  }

  /** Shutdown began: /readyz answers 503 from now on. */
  public void markDraining() {
    readiness = Readiness.DRAINING;
  }

  public Future<Void> close() {
    return server == null ? Future.succeededFuture() : server.close();
  }

  private void handle(HttpServerRequest request) {
    String path = request.path();
    if (!path.equals("/metrics") && !path.equals("/healthz") && !path.equals("/readyz")) {
      text(request, 404, "not found: the admin port serves /metrics, /healthz and /readyz\n");
      return;
    }
    if (request.method() != HttpMethod.GET) {
      request.response().putHeader(HttpHeaders.ALLOW, "GET");
      text(request, 405, "method not allowed: use GET\n");
      return;
    }
    switch (path) {
      case "/metrics" -> metrics(request);
      case "/healthz" -> text(request, 200, "ok");
      default -> {
        Readiness now = readiness;
        switch (now) {
          case READY -> text(request, 200, "ready");
          case STARTING -> text(request, 503, "starting");
          case DRAINING -> text(request, 503, "draining");
        }
      }
    }
  }

  private void metrics(HttpServerRequest request) {
    // Unordered: concurrent scrapes need not queue behind each other.
    vertx.executeBlocking(scrape, false).onComplete(ar -> {
      if (ar.succeeded()) {
        request.response()
            .setStatusCode(200)
            .putHeader(HttpHeaders.CONTENT_TYPE, METRICS_CONTENT_TYPE)
            .end(ar.result());
      } else {
        text(request, 500, "metrics unavailable: " + ar.cause().getClass().getSimpleName() + "\n");
      }
    });
  }

  private static void text(HttpServerRequest request, int status, String body) {
    request.response()
        .setStatusCode(status)
        .putHeader(HttpHeaders.CONTENT_TYPE, TEXT)
        .end(body);
  }
}
