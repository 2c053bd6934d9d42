package dev.egret.telemetry;

import dev.egret.EgretServer;
import dev.egret.ProxyFixture;
import dev.egret.admin.AdminServer;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.EgretConfig;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A whole Egret in the test JVM, wired as {@code egret run} wires it: one {@link Metrics}
 * registry, a Vertx reporting into it, {@link Observability} with the access log, the {@link
 * AdminServer} and the {@link EgretServer}, all on 127.0.0.1 port 0. Host names resolve through
 * an in-memory hosts file (see {@link ProxyFixture#resolver}); the access log goes to memory.
 *
 * <pre>
 * try (ObservedEgret egret = ObservedEgret.start(dir, yaml, Map.of("api.partner.test", "127.0.0.1"))) {
 *   ... traffic to 127.0.0.1:egret.proxyPort() ...
 *   List&lt;String&gt; log = egret.awaitLogLines(1);
 *   PrometheusText metrics = egret.metrics();     // a real GET /metrics on the admin port
 * }
 * </pre>
 */
public final class ObservedEgret implements AutoCloseable {
  private static final Duration LOG_DEADLINE = Duration.ofSeconds(15);

  private final Metrics metrics;
  private final Vertx vertx;
  private final Observability telemetry;
  private final LogLines log;
  private final AdminServer admin;
  private final EgretServer server;
  private final Path configFile;
  private int adminPort;
  private int proxyPort;
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private ObservedEgret(Path configFile, EgretConfig config, Map<String, String> hosts) {
    this.configFile = configFile;
    this.metrics = new Metrics();
    this.vertx = metrics.newVertx(
        new VertxOptions().setPreferNativeTransport(true)
            .setAddressResolverOptions(ProxyFixture.resolver(hosts)));
    this.log = new LogLines();
    this.telemetry = new Observability(metrics.registry(),
        new AccessLog(log, AccessLog.DEFAULT_CAPACITY));
    this.server = new EgretServer(vertx, config, telemetry);
    this.admin = new AdminServer(vertx, "127.0.0.1", 0, telemetry::scrape,
        () -> AdminServer.Limits.of(server.config()), telemetry);
  }

  /** Writes {@code yaml} to {@code dir/egret.yaml}, compiles it and starts everything. */
  public static ObservedEgret start(Path dir, String yaml, Map<String, String> hosts)
      throws Exception {
    Path file = dir.resolve("egret.yaml");
    Files.writeString(file, yaml);
    ObservedEgret egret = new ObservedEgret(file, ConfigCompiler.load(file), hosts);
    try {
      // The same order as Run: admin first (its address joins the loop check), then the proxy.
      egret.adminPort = egret.admin.start().await(20, TimeUnit.SECONDS);
      egret.server.alsoOwn(new InetSocketAddress("127.0.0.1", egret.adminPort));
      egret.proxyPort = egret.server.start().await(20, TimeUnit.SECONDS);
      egret.admin.markReady();
      return egret;
    } catch (Exception e) {
      egret.close();
      throw e;
    }
  }

  public int proxyPort() {
    return proxyPort;
  }

  public int adminPort() {
    return adminPort;
  }

  public EgretServer server() {
    return server;
  }

  /** The config file the server was started from; rewrite it and call {@code server().reload()}. */
  public Path configFile() {
    return configFile;
  }

  /** The body of {@code GET /metrics} on the admin port; fails unless it is a 200 in text 0.0.4. */
  public String scrape() throws Exception {
    HttpResponse<String> r = http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + adminPort + "/metrics"))
            .timeout(Duration.ofSeconds(10)).build(),
        HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200
        || !r.headers().firstValue("content-type").orElse("").equals(AdminServer.METRICS_CONTENT_TYPE)) {
      throw new AssertionError("GET /metrics answered " + r.statusCode() + " " + r.headers() + "\n"
          + r.body());
    }
    return r.body();
  }

  /** {@link #scrape()}, parsed. */
  PrometheusText metrics() throws Exception {
    return PrometheusText.parse(scrape());
  }

  /** Waits (up to 15 s) until the access log holds at least {@code count} lines; returns all. */
  public List<String> awaitLogLines(int count) throws InterruptedException {
    return log.await(count, LOG_DEADLINE);
  }

  /** The access-log lines written so far. */
  public List<String> logLines() {
    return log.lines();
  }

  @Override
  public void close() {
    admin.markDraining();
    try {
      server.close().await(10, TimeUnit.SECONDS);
      admin.close().await(10, TimeUnit.SECONDS);
    } catch (Exception e) {
      // closing anyway
    } finally {
      telemetry.close();
      try {
        vertx.close().await(10, TimeUnit.SECONDS);
      } catch (Exception e) {
        // the test is over
      }
      metrics.close();
    }
  }
}
