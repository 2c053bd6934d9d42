package dev.egret.upgrade;

import dev.egret.config.EgretConfig;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLSession;

/**
 * The pooled keep-alive HTTP/1.1 client Egret originates upstream TLS with. One per loaded
 * config (timeouts and limits come from it); TLS settings travel on each request from the
 * rule's {@link dev.egret.tls.TlsProfile}, so Vert.x keeps a pool per (address, host, profile).
 *
 * <p>It also notes when each new connection became usable, so the first request on it can report
 * how long TCP connect and the TLS handshake took; requests on a reused connection report none.
 */
public final class UpstreamClient {
  private final HttpClient client;
  private final Map<HttpConnection, Long> freshConnections = new ConcurrentHashMap<>();

  public UpstreamClient(Vertx vertx, EgretConfig config) {
    EgretConfig.Timeouts t = config.timeouts();
    HttpClientOptions options = new HttpClientOptions()
        .setProtocolVersion(HttpVersion.HTTP_1_1)
        .setKeepAlive(true)
        .setKeepAliveTimeout((int) Math.max(1, t.idle().toSeconds()))
        .setIdleTimeout((int) Math.max(1, t.idle().toMillis()))
        .setIdleTimeoutUnit(TimeUnit.MILLISECONDS)
        .setConnectTimeout((int) t.connect().toMillis())
        .setDecompressionSupported(false)
        .setMaxHeaderSize(Math.max(8192, config.limits().maxHeaderBytes() * 4))
        .setMaxInitialLineLength(8192)
        .setTcpNoDelay(true);
    PoolOptions pool = new PoolOptions()
        .setHttp1MaxSize(config.limits().maxConnectionsPerDestination())
        .setMaxWaitQueueSize(config.limits().maxConnectionsPerDestination() * 4);
    this.client = vertx.httpClientBuilder()
        .with(options)
        .with(pool)
        .withConnectHandler(conn -> {
          freshConnections.put(conn, System.currentTimeMillis());
          conn.closeHandler(v -> freshConnections.remove(conn));
          // Failures reach the request that is using the connection (and its hop); without a
          // handler Vert.x would also log each one as SEVERE, e.g. a TLS 1.3 client-certificate
          // refusal that arrives after the handshake.
          conn.exceptionHandler(e -> { });
        })
        .build();
  }

  HttpClient client() {
    return client;
  }

  /** Timings of a connection's setup, claimed once by the first request that uses it. */
  record Setup(long connectMillis, long handshakeMillis, SSLSession session) {}

  /**
   * If {@code conn} is new since {@code startEpochMillis}, returns its setup timings (and forgets
   * it); null for a reused connection. The TLS session's creation time marks the end of the TCP
   * connect; a resumed session predates the request, and then only the total is known, reported
   * as handshake time.
   */
  Setup claim(HttpConnection conn, long startEpochMillis) {
    Long established = freshConnections.remove(conn);
    if (established == null) {
      return null;
    }
    SSLSession session = conn.sslSession();
    long created = session == null ? -1 : session.getCreationTime();
    if (created >= startEpochMillis && created <= established) {
      return new Setup(created - startEpochMillis, established - created, session);
    }
    return new Setup(-1, Math.max(0, established - startEpochMillis), session);
  }

  public Future<Void> close() {
    return client.close();
  }
}
