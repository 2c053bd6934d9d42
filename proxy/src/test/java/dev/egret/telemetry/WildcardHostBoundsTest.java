package dev.egret.telemetry;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.PfxOptions;
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Under an allowed wildcard rule, every distinct host name a client sends
 * must not add series to /metrics or memory that stays. Thousands of distinct hosts, all
 * resolving to 127.0.0.1 through the in-memory hosts file, are upgraded through a real Egret to
 * one TLS server whose certificate covers {@code *.wide.partner.test}; then /metrics is compared
 * with what it was after the first hundred hosts, and the upstream pools must close once idle.
 */
@Timeout(value = 4, unit = TimeUnit.MINUTES)
class WildcardHostBoundsTest {
  private static final String DOMAIN = "wide.partner.test";
  private static final int HOSTS = 2_000;
  private static final int WARM_UP_HOSTS = 100;
  private static final int IN_FLIGHT = 16;

  @TempDir static Path dir;
  static Vertx serverVertx;
  static HttpServer upstream;
  static final AtomicInteger upstreamOpen = new AtomicInteger();
  static EgretFixture egret;
  static HttpClient client;

  @BeforeAll
  static void start() throws Exception {
    TestCert root = TestPki.rootCa("Wildcard Bounds Root").issue();
    TestCert leaf = root.leaf(DOMAIN).dns("*." + DOMAIN).issue();
    Path rootPem = root.writePem(dir).cert();
    serverVertx = Vertx.vertx();
    upstream = serverVertx.createHttpServer(new HttpServerOptions()
            .setHost("127.0.0.1").setPort(0).setSsl(true)
            .setKeyCertOptions(new PfxOptions().setPath(leaf.writePkcs12(dir).toString())
                .setPassword(TestCert.PASSWORD)))
        .connectionHandler(conn -> {
          upstreamOpen.incrementAndGet();
          conn.closeHandler(v -> upstreamOpen.decrementAndGet());
        })
        .requestHandler(req -> req.response().setStatusCode(204).end());
    upstream = upstream.listen().await(10, TimeUnit.SECONDS);
    Map<String, String> hosts = new HashMap<>();
    for (int i = 0; i < HOSTS; i++) {
      hosts.put(host(i), "127.0.0.1");
    }
    // idle: 5s, so the test can see pooled upstream connections retire, and yet a connection in
    // use is not taken for inactive while a cold, loaded test JVM (upstream server included)
    // takes seconds to answer the first requests (at 2s, 10 of the first 100 got 502 at load 14).
    egret = EgretFixture.builder().observed().hosts(hosts).start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        timeouts: {idle: 5s}
        allow:
          - host: "**.%s"
            ports: [%d]
        """.formatted(rootPem.getFileName(), DOMAIN, upstream.actualPort()));
    client = HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", egret.proxyPort())))
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build();
  }

  @AfterAll
  static void stop() throws Exception {
    if (egret != null) {
      egret.close();
    }
    if (serverVertx != null) {
      serverVertx.close().await(10, TimeUnit.SECONDS);
    }
  }

  private static String host(int i) {
    return "h" + i + "." + DOMAIN;
  }

  @Test
  void thousandsOfHostsUnderAWildcardKeepMetricsAndPoolsBounded() throws Exception {
    drive(0, WARM_UP_HOSTS);
    String warm = egret.scrape();
    drive(WARM_UP_HOSTS, HOSTS);
    String after = egret.scrape();

    List<String> warmSeries = series(warm);
    List<String> afterSeries = series(after);
    // The same families and label sets after 20x the hosts, give or take a few JVM series
    // (a GC or buffer-pool name seen for the first time); before the fix every host added
    // about ten vertx_pool_* series and one expiry series.
    assertThat(afterSeries.size()).as("series after %d hosts vs after %d", HOSTS, WARM_UP_HOSTS)
        .isLessThanOrEqualTo(warmSeries.size() + 20);
    assertThat(after.length()).as("/metrics bytes").isLessThan(warm.length() * 3 / 2);

    // Raw host names only on the expiry gauge, capped per rule.
    String rawHost = ".*\"h\\d+\\." + DOMAIN.replace(".", "\\.") + "\".*";
    List<String> withHost = afterSeries.stream().filter(s -> s.matches(rawHost)).toList();
    assertThat(withHost).allMatch(s ->
        s.startsWith("egret_upstream_certificate_expiry_timestamp_seconds{"));
    assertThat(withHost).hasSizeBetween(1, CertificateExpiry.MAX_HOSTS_PER_DESTINATION);
    assertThat(afterSeries).noneMatch(s -> s.startsWith("vertx_") && s.contains(DOMAIN));

    // Every request succeeded, each through its own upstream pool.
    assertThat(egret.metrics().value("egret_requests_total", Map.of("destination", "**." + DOMAIN,
        "kind", "upgrade", "outcome", "allowed", "error", "none"))).hasValue(HOSTS);

    // Pools are retired when idle: every upstream connection closes after timeouts.idle.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (upstreamOpen.get() > 0 && System.nanoTime() < deadline) {
      Thread.onSpinWait();
    }
    assertThat(upstreamOpen.get()).as("upstream connections still open").isZero();
  }

  /** Sends one upgraded GET to each host in [from, to), {@value #IN_FLIGHT} at a time. */
  private static void drive(int from, int to) throws Exception {
    Semaphore slots = new Semaphore(IN_FLIGHT);
    List<CompletableFuture<Integer>> all = new ArrayList<>();
    for (int i = from; i < to; i++) {
      if (!slots.tryAcquire(30, TimeUnit.SECONDS)) {
        throw new AssertionError("no request finished within 30 s");
      }
      HttpRequest request = HttpRequest.newBuilder(
              URI.create("http://" + host(i) + ":" + upstream.actualPort() + "/"))
          .timeout(Duration.ofSeconds(20)).build();
      all.add(client.sendAsync(request, HttpResponse.BodyHandlers.discarding())
          // timeouts.idle is short here and applies to downstream connections too: on a loaded
          // machine the client may reuse a kept-alive connection just as Egret closes it
          // ("header parser received no bytes"), a race every HTTP client retries once.
          .exceptionallyCompose(e -> client.sendAsync(request,
              HttpResponse.BodyHandlers.discarding()))
          .thenApply(HttpResponse::statusCode)
          .whenComplete((s, e) -> slots.release()));
    }
    Map<Integer, Long> statuses = new HashMap<>();
    for (CompletableFuture<Integer> f : all) {
      statuses.merge(f.get(30, TimeUnit.SECONDS), 1L, Long::sum);
    }
    assertThat(statuses).as("statuses").isEqualTo(Map.of(204, (long) (to - from)));
  }

  /** Every sample line (name and labels, no value) of a scrape. */
  private static List<String> series(String scrape) {
    return scrape.lines().filter(l -> !l.isEmpty() && !l.startsWith("#"))
        .map(l -> l.substring(0, l.lastIndexOf(' ')))
        .collect(Collectors.toList());
  }
}
