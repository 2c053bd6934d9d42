package dev.egret.admin;

import dev.egret.config.EgretConfig;
import dev.egret.telemetry.Telemetry;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * The admin listener ({@code listen.admin}), apart from the proxy port so that Prometheus and
 * health checks never compete with proxied traffic. Usage:
 *
 * <pre>{@code
 * AdminServer admin = new AdminServer(vertx, "127.0.0.1", 9901, telemetry::scrape,
 *     () -> AdminServer.Limits.of(server.config()), telemetry);
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
 *
 * <p>Its connections are capped apart from the proxy's ({@code limits.maxAdminConnections}): one
 * over the cap is closed as soon as it is accepted, so a local client opening thousands holds
 * no descriptor beyond the cap and cannot exhaust the table the proxy needs. A connection must
 * send each request head within {@code timeouts.requestHead} of its accept or of its previous
 * response, else it is closed, so idle or trickling connections cannot squat the slots that
 * probes and scrapes need. Both are read at each accept, so a reload applies them.
 */
public final class AdminServer {
  /** The Prometheus text exposition format's content type. */
  public static final String METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
  private static final String TEXT = "text/plain; charset=utf-8";

  private enum Readiness { STARTING, READY, DRAINING }

  /**
   * The admin listener's limits, read at each accept.
   *
   * @param maxConnections {@code limits.maxAdminConnections}
   * @param requestDeadline {@code timeouts.requestHead}: how long a connection may go without a
   *     complete request head, from its accept or its previous response's end
   */
  public record Limits(int maxConnections, Duration requestDeadline) {
    /** The defaults of a config that sets neither. */
    public static final Limits DEFAULT = new Limits(64, Duration.ofSeconds(10));

    public static Limits of(EgretConfig config) {
      return new Limits(config.limits().maxAdminConnections(), config.timeouts().requestHead());
    }
  }

  private final Vertx vertx;
  private final String host;
  private final int port;
  private final Callable<String> scrape;
  private final Supplier<Limits> limits;
  private final Telemetry telemetry;
  private final AtomicInteger open = new AtomicInteger();
  /** Each admitted connection's request-deadline timer, or {@link #SERVING}; at most the cap. */
  private final Map<HttpConnection, Long> deadlines = new ConcurrentHashMap<>();
  private static final long SERVING = -1;
  // Written by whoever drives the lifecycle, read by the event loop serving /readyz.
  private volatile Readiness readiness = Readiness.STARTING;
  private HttpServer server;

  /**
   * @param host the address to bind, from {@code listen.admin}
   * @param port the port to bind, 0 for any (tests)
   * @param scrape renders the metrics; may take milliseconds, so it runs on a worker thread
   */
  public AdminServer(Vertx vertx, String host, int port, Callable<String> scrape) {
    this(vertx, host, port, scrape, () -> Limits.DEFAULT, Telemetry.NONE);
  }

  /**
   * @param limits the cap and request deadline in force, read at each accept
   * @param telemetry where the open admin connections are counted ({@code egret_admin_connections})
   */
  public AdminServer(Vertx vertx, String host, int port, Callable<String> scrape,
      Supplier<Limits> limits, Telemetry telemetry) {
    this.vertx = vertx;
    this.host = host;
    this.port = port;
    this.scrape = scrape;
    this.limits = limits;
    this.telemetry = telemetry;
  }

  /** Binds the listener; the future holds the bound port. */
  public Future<Integer> start() {
    HttpServerOptions options = new HttpServerOptions()
        .setHost(host)
        .setPort(port)
        // A scrape or probe is one small request; an idle keep-alive connection is not kept long.
        .setIdleTimeout(60)
        .setMaxInitialLineLength(1024)
        .setMaxHeaderSize(8192)
        // HTTP/1.1 only: with h2c on, Vert.x sets a connection up only at its first bytes, and
        // the cap and the request deadline must hold from the accept.
        .setHttp2ClearTextEnabled(false);
    server = vertx.createHttpServer(options)
        .connectionHandler(this::accepted)
        .requestHandler(this::handle);
    return server.listen().map(HttpServer::actualPort);
  }

  /** Admits a connection under the cap and starts its request deadline; closes one over it. */
  private void accepted(HttpConnection connection) {
    Limits now = limits.get();
    if (open.incrementAndGet() > now.maxConnections()) {
      open.decrementAndGet();
      connection.close();
      return;
    }
    telemetry.adminConnectionOpened();
    connection.closeHandler(v -> {
      Long timer = deadlines.remove(connection);
      if (timer != null && timer != SERVING) {
        vertx.cancelTimer(timer);
      }
      open.decrementAndGet();
      telemetry.adminConnectionClosed();
    });
    awaitRequest(connection, now.requestDeadline());
  }

  /**
   * Closes the connection unless a request head arrives within {@code deadline}. Runs on the
   * connection's event loop, as do the timer, the request and close handlers: no races.
   */
  private void awaitRequest(HttpConnection connection, Duration deadline) {
    long timer = vertx.setTimer(Math.max(1, deadline.toMillis()), id -> {
      if (deadlines.remove(connection, id)) {
        connection.close();
      }
    });
    deadlines.put(connection, timer);
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
    HttpConnection connection = request.connection();
    Long timer = deadlines.replace(connection, SERVING);
    if (timer != null && timer != SERVING) {
      vertx.cancelTimer(timer);
    }
    // The next request is due within the deadline from this response's end.
    request.response().endHandler(v -> {
      if (deadlines.containsKey(connection)) {
        awaitRequest(connection, limits.get().requestDeadline());
      }
    });
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
