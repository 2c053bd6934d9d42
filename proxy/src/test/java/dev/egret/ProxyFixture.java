package dev.egret;

import dev.egret.config.ConfigCompiler;
import dev.egret.config.EgretConfig;
import dev.egret.telemetry.Telemetry;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.dns.AddressResolverOptions;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * An Egret running in the test JVM on 127.0.0.1 port 0, with its own Vertx whose resolver maps
 * test host names (e.g. {@code api.partner.test}) to loopback through an in-memory hosts file,
 * so tests use real names (for SNI and certificate checks) without touching real DNS.
 *
 * <pre>
 * try (ProxyFixture egret = ProxyFixture.start(dir, yaml, Map.of("api.partner.test", "127.0.0.1"))) {
 *   HttpResponse&lt;String&gt; r = egret.client().send(...);
 * }
 * </pre>
 */
public final class ProxyFixture implements AutoCloseable {
  private final Vertx vertx;
  private final EgretServer server;
  private final int proxyPort;
  private final EgretConfig config;

  private ProxyFixture(Vertx vertx, EgretServer server, int proxyPort, EgretConfig config) {
    this.vertx = vertx;
    this.server = server;
    this.proxyPort = proxyPort;
    this.config = config;
  }

  /** Writes {@code yaml} to {@code dir/egret.yaml}, compiles it and starts Egret. */
  public static ProxyFixture start(Path dir, String yaml, Map<String, String> hosts)
      throws Exception {
    return start(dir, yaml, hosts, Telemetry.NONE);
  }

  public static ProxyFixture start(Path dir, String yaml, Map<String, String> hosts,
      Telemetry telemetry) throws Exception {
    Path file = dir.resolve("egret.yaml");
    Files.writeString(file, yaml);
    EgretConfig config = ConfigCompiler.load(file);
    // The transport `egret run` uses (Run.start): epoll where it loads.
    Vertx vertx = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true)
        .setAddressResolverOptions(resolver(hosts)));
    EgretServer server = new EgretServer(vertx, config, telemetry);
    int port = server.start().await(20, TimeUnit.SECONDS);
    return new ProxyFixture(vertx, server, port, config);
  }

  /** Resolver options with an in-memory hosts file; unknown names fail fast (no DNS servers). */
  public static AddressResolverOptions resolver(Map<String, String> hosts) {
    StringBuilder b = new StringBuilder();
    hosts.forEach((name, ip) -> b.append(ip).append(' ').append(name).append('\n'));
    return new AddressResolverOptions()
        .setHostsValue(Buffer.buffer(b.toString()))
        .addServer("127.0.0.1:1")
        .setQueryTimeout(1000)
        .setMaxQueries(1);
  }

  public int proxyPort() {
    return proxyPort;
  }

  public EgretServer server() {
    return server;
  }

  public EgretConfig config() {
    return config;
  }

  public Vertx vertx() {
    return vertx;
  }

  /** A JDK HttpClient that sends everything through this Egret (HTTP/1.1). */
  public HttpClient client() {
    return HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", proxyPort)))
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build();
  }

  @Override
  public void close() throws IOException {
    try {
      server.close().await(10, TimeUnit.SECONDS);
    } catch (Exception e) {
      // closing anyway
    } finally {
      try {
        vertx.close().await(10, TimeUnit.SECONDS);
      } catch (Exception e) {
        // the test is over
      }
    }
  }
}
