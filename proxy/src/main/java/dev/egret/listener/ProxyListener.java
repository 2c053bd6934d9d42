package dev.egret.listener;

import dev.egret.config.EgretConfig;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureResponse;
import dev.egret.failure.ProxyFailure;
import dev.egret.telemetry.Hop;
import dev.egret.telemetry.Telemetry;
import io.netty.channel.ChannelPipeline;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.impl.ConnectionBase;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The proxy port: a Vert.x HTTP/1.1 server with Egret's strict request guard in front of Netty's
 * decoder on every connection, a cap on concurrent client connections, and {@link Front} as the
 * request handler.
 */
public final class ProxyListener {
  private final Vertx vertx;
  private final EgretConfig config;
  private final Front front;
  private final Telemetry telemetry;
  private final AtomicInteger connections = new AtomicInteger();
  private HttpServer server;

  public ProxyListener(Vertx vertx, EgretConfig config, Front front, Telemetry telemetry) {
    this.vertx = vertx;
    this.config = config;
    this.front = front;
    this.telemetry = telemetry;
  }

  /** Binds the proxy port; completes with the bound port. */
  public Future<Integer> start() {
    EgretConfig.Limits limits = config.limits();
    HttpServerOptions options = new HttpServerOptions()
        .setHost(config.listen().proxy().host())
        .setPort(config.listen().proxy().port())
        .setIdleTimeout((int) config.timeouts().idle().toMillis())
        .setIdleTimeoutUnit(TimeUnit.MILLISECONDS)
        .setMaxHeaderSize(limits.maxHeaderBytes() + 1024)
        .setMaxInitialLineLength(StrictHeadParser.DEFAULT_MAX_REQUEST_LINE_BYTES + 1024)
        .setDecompressionSupported(false)
        .setCompressionSupported(false)
        .setHandle100ContinueAutomatically(false)
        // h2c would turn "Upgrade: h2c" into a protocol switch the guard cannot follow; Egret
        // speaks HTTP/1.1 to clients and strips Upgrade as a hop-by-hop header.
        .setHttp2ClearTextEnabled(false)
        .setTcpNoDelay(true);
    StrictHeadParser parser = new StrictHeadParser(StrictHeadParser.DEFAULT_MAX_REQUEST_LINE_BYTES,
        limits.maxHeaderBytes(), StrictHeadParser.DEFAULT_MAX_HEADER_COUNT);
    server = vertx.createHttpServer(options);
    telemetry.clientConnectionsLimit(limits.maxConnections());
    server.connectionHandler(conn -> {
      int open = connections.incrementAndGet();
      telemetry.clientConnectionOpened();
      conn.closeHandler(v -> {
        connections.decrementAndGet();
        telemetry.clientConnectionClosed();
      });
      ChannelPipeline pipeline = ((ConnectionBase) conn).channel().pipeline();
      if (open > limits.maxConnections()) {
        // Over the cap: answer the first request with 503 and close, without reading further.
        telemetry.clientConnectionRefusedAtCap();
        ProxyFailure f = new ProxyFailure(ErrorKind.CONNECTION_LIMIT_REACHED,
            "Egret already serves " + limits.maxConnections() + " client connections (limits.maxConnections)");
        pipeline.addBefore("httpDecoder", "egret-limit", new Refuser(f, r -> refused(r, conn)));
        return;
      }
      StrictRequestGuard guard = new StrictRequestGuard(parser,
          f -> FailureResponse.raw(f, null, null), r -> refused(r, conn));
      pipeline.addBefore("httpDecoder", "egret-strict", guard);
      // Lets a refusal in a pipelined request wait until the earlier requests are answered.
      pipeline.addAfter("httpEncoder", "egret-responses", guard.responseWatcher());
    });
    server.requestHandler(front);
    return server.listen().map(HttpServer::actualPort);
  }

  /** Counts and logs a request refused before Vert.x parsed it. */
  private void refused(ProxyFailure f, HttpConnection conn) {
    Hop hop = new Hop();
    hop.client = conn.remoteAddress() == null ? null : conn.remoteAddress().toString();
    hop.url = "-";
    hop.error = f.kind();
    hop.errorDetails = f.details();
    hop.status = f.status();
    if (hop.finish()) {
      telemetry.hopFinished(hop);
    }
  }

  public Future<Void> close() {
    return server == null ? Future.succeededFuture() : server.close();
  }
}
