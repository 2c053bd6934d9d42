package dev.egret.upgrade;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.core.net.PfxOptions;
import io.vertx.core.net.ProxyOptions;
import io.vertx.core.net.ProxyType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The upgrade path (plain {@code http://} in, pooled TLS out) against the same HTTPS requests
 * sent directly, on this machine, in one run. Not a unit test (surefire's default includes skip
 * it): run it by hand after {@code mvn test-compile}.
 *
 * <pre>
 * mvn -B -o -q -pl proxy test-compile dependency:build-classpath -Dmdep.outputFile=/tmp/egret.cp
 * java -cp proxy/target/test-classes:proxy/target/classes:$(cat /tmp/egret.cp) \
 *     dev.egret.upgrade.UpgradeBenchmark [small requests, default 20000] \
 *     [large requests, default 500] [rounds, default 3]
 * </pre>
 *
 * <p>One keep-alive Vert.x client keeps {@value #IN_FLIGHT} requests in flight, each waiting for
 * its whole body before the next starts, against a local Vert.x HTTPS server answering a fixed
 * 1 KiB or 1 MiB body. "direct" sends {@code https://api.partner.test:P/...} to the server;
 * "egret" sends {@code http://api.partner.test:P/...} through an in-process Egret, which upgrades
 * each request to TLS on its upstream pool. Each round runs both, alternating which goes first.
 * Client, server and Egret share the JVM and the machine's cores, so the ratios are what the
 * extra hop costs when it competes with both ends for CPU, not what it costs on its own host.
 */
public final class UpgradeBenchmark {
  private static final String HOST = "api.partner.test";
  private static final int IN_FLIGHT = 16;
  private static final int SMALL = 1024;
  private static final int LARGE = 1 << 20;
  private static final Duration ROUND_LIMIT = Duration.ofSeconds(120);

  public static void main(String[] args) throws Exception {
    int smallCount = args.length > 0 ? Integer.parseInt(args[0]) : 20_000;
    int largeCount = args.length > 1 ? Integer.parseInt(args[1]) : 500;
    int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 3;
    Path dir = Files.createTempDirectory("egret-bench");
    TestCert root = TestPki.rootCa("Upgrade Benchmark Root").issue();
    Path rootPem = root.writePem(dir).cert();
    Vertx serverVertx = Vertx.vertx();
    HttpServer upstream = startUpstream(serverVertx, root.leaf(HOST).issue(), dir);
    int port = upstream.actualPort();
    EgretFixture egret = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1")).start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d]
        """.formatted(rootPem.getFileName(), HOST, port));
    // The client resolves api.partner.test to loopback the same way Egret does, so the direct
    // requests carry the same name for SNI and the certificate check.
    Vertx clientVertx = Vertx.vertx(new VertxOptions()
        .setAddressResolverOptions(EgretFixture.resolver(Map.of(HOST, "127.0.0.1"))));
    HttpClient direct = client(clientVertx, rootPem, null);
    HttpClient viaEgret = client(clientVertx, rootPem, egret.proxyPort());
    try {
      System.out.printf("%d small (%d B) and %d large (%d B) requests per round, %d in flight,"
          + " %d rounds, %d cores, %s%n", smallCount, SMALL, largeCount, LARGE, IN_FLIGHT, rounds,
          Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"));
      Case[] cases = {
        new Case("small", SMALL, smallCount, port), new Case("large", LARGE, largeCount, port)};
      System.out.printf("heap after GC, before warm-up: %s%n", heapAfterGc());
      // A full untimed round on both paths, so the JIT has compiled them and both pools are
      // full before timing. With a quarter round the first timed direct round ran at a fifth
      // of the later ones' speed; with a full one it still runs at about 0.6, so the mean
      // understates the direct path a little and the later rounds are the fairer ratio.
      for (Case c : cases) {
        c.run(direct, false, c.count);
        c.run(viaEgret, true, c.count);
      }
      for (int r = 0; r < rounds; r++) {
        boolean egretFirst = r % 2 == 1;
        for (Case c : cases) {
          Result first = c.run(egretFirst ? viaEgret : direct, egretFirst, c.count);
          Result second = c.run(egretFirst ? direct : viaEgret, !egretFirst, c.count);
          Result d = egretFirst ? second : first;
          Result e = egretFirst ? first : second;
          c.rounds.add(new Result[] {d, e});
          print("round " + (r + 1), c, d, e);
        }
      }
      for (Case c : cases) {
        print("mean", c, mean(c.rounds, 0), mean(c.rounds, 1));
      }
      System.out.printf("heap after GC, after the run:  %s%n", heapAfterGc());
    } finally {
      egret.close();
      clientVertx.close().await(10, TimeUnit.SECONDS);
      serverVertx.close().await(10, TimeUnit.SECONDS);
    }
  }

  private static HttpServer startUpstream(Vertx vertx, TestCert leaf, Path dir) throws Exception {
    Buffer small = randomBody(SMALL);
    Buffer large = randomBody(LARGE);
    HttpServer server = vertx.createHttpServer(new HttpServerOptions()
        .setHost("127.0.0.1").setPort(0).setSsl(true).setTcpNoDelay(true)
        .setKeyCertOptions(new PfxOptions().setPath(leaf.writePkcs12(dir).toString())
            .setPassword(TestCert.PASSWORD)));
    server.requestHandler(req -> {
      switch (req.path()) {
        case "/small" -> req.response().end(small);
        case "/large" -> req.response().end(large);
        default -> req.response().setStatusCode(404).end();
      }
    });
    return server.listen().await(10, TimeUnit.SECONDS);
  }

  private static Buffer randomBody(int size) {
    byte[] bytes = new byte[size];
    new SplittableRandom(1).nextBytes(bytes);
    return Buffer.buffer(bytes);
  }

  /** A keep-alive HTTP/1.1 client with one connection per request in flight. */
  private static HttpClient client(Vertx vertx, Path trust, Integer proxyPort) {
    HttpClientOptions options = new HttpClientOptions()
        .setProtocolVersion(HttpVersion.HTTP_1_1)
        .setKeepAlive(true)
        .setTcpNoDelay(true)
        .setVerifyHost(true)
        .setTrustOptions(new PemTrustOptions().addCertPath(trust.toString()));
    if (proxyPort != null) {
      // An HTTP proxy for a plain http:// URL: Vert.x sends the absolute form to Egret.
      options.setProxyOptions(new ProxyOptions().setType(ProxyType.HTTP)
          .setHost("127.0.0.1").setPort(proxyPort));
    }
    return vertx.httpClientBuilder()
        .with(options)
        .with(new PoolOptions().setHttp1MaxSize(IN_FLIGHT))
        .build();
  }

  private static String heapAfterGc() {
    Runtime rt = Runtime.getRuntime();
    for (int i = 0; i < 3; i++) {
      System.gc();
    }
    return String.format("%.1f MiB used of %.1f MiB committed (whole JVM: client, upstream and"
        + " Egret)", (rt.totalMemory() - rt.freeMemory()) / 1048576.0, rt.totalMemory() / 1048576.0);
  }

  private static void print(String label, Case c, Result d, Result e) {
    String throughput = c.bodyBytes >= LARGE
        ? String.format("  %7.1f MiB/s", d.mibPerSecond(c.bodyBytes)) : "";
    String egretThroughput = c.bodyBytes >= LARGE
        ? String.format("  %7.1f MiB/s", e.mibPerSecond(c.bodyBytes)) : "";
    System.out.printf("%-7s %-5s direct %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms%s%n",
        label, c.name, d.perSecond, d.p50Millis, d.p99Millis, throughput);
    System.out.printf("%-7s %-5s egret  %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms%s"
            + "   egret/direct: req/s %.2f  p50 %.2f  p99 %.2f%n",
        label, c.name, e.perSecond, e.p50Millis, e.p99Millis, egretThroughput,
        e.perSecond / d.perSecond, e.p50Millis / d.p50Millis, e.p99Millis / d.p99Millis);
  }

  private static Result mean(List<Result[]> rounds, int which) {
    return new Result(
        rounds.stream().mapToDouble(r -> r[which].perSecond).average().orElse(0),
        rounds.stream().mapToDouble(r -> r[which].p50Millis).average().orElse(0),
        rounds.stream().mapToDouble(r -> r[which].p99Millis).average().orElse(0));
  }

  /** One timed batch: requests per second and latency percentiles. */
  private record Result(double perSecond, double p50Millis, double p99Millis) {
    double mibPerSecond(int bodyBytes) {
      return perSecond * bodyBytes / 1048576.0;
    }
  }

  /** One body size and how many requests a round sends; keeps the rounds for the mean. */
  private static final class Case {
    final String name;
    final int bodyBytes;
    final int count;
    final int port;
    final List<Result[]> rounds = new ArrayList<>();

    Case(String name, int bodyBytes, int count, int port) {
      this.name = name;
      this.bodyBytes = bodyBytes;
      this.count = count;
      this.port = port;
    }

    Result run(HttpClient client, boolean viaEgret, int requests) throws InterruptedException {
      String url = (viaEgret ? "http://" : "https://") + HOST + ":" + port + "/" + name;
      return new Batch(client, new RequestOptions().setAbsoluteURI(url), requests, bodyBytes)
          .run();
    }
  }

  /**
   * Keeps {@value #IN_FLIGHT} requests in flight until {@code count} have completed; each
   * completion (on a client event loop) starts the next. The main thread only waits, bounded
   * by {@link #ROUND_LIMIT}.
   */
  private static final class Batch {
    private static final byte WAITING = 0;
    private static final byte SENT = 1;
    private static final byte ANSWERED = 2;
    private final HttpClient client;
    private final RequestOptions options;
    private final int count;
    private final int bodyBytes;
    /** Nanoseconds per request, each slot written once by the request of that index. */
    private final long[] latencies;
    /** How far each request got: {@link #WAITING}, {@link #SENT} or {@link #ANSWERED}. */
    private final byte[] stage;
    private final AtomicInteger issued = new AtomicInteger();
    private final AtomicInteger completed = new AtomicInteger();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final CountDownLatch finished = new CountDownLatch(1);

    Batch(HttpClient client, RequestOptions options, int count, int bodyBytes) {
      this.client = client;
      this.options = options;
      this.count = count;
      this.bodyBytes = bodyBytes;
      this.latencies = new long[count];
      this.stage = new byte[count];
    }

    Result run() throws InterruptedException {
      long start = System.nanoTime();
      for (int i = 0; i < Math.min(IN_FLIGHT, count); i++) {
        next();
      }
      boolean done = finished.await(ROUND_LIMIT.toMillis(), TimeUnit.MILLISECONDS);
      long nanos = System.nanoTime() - start;
      if (failure.get() != null) {
        throw new IllegalStateException(options.getURI() + " failed after " + completed.get()
            + " of " + count + " requests", failure.get());
      }
      if (!done) {
        // Stops issuing; requests still in flight finish or fail on their own.
        failure.set(new IllegalStateException("aborted"));
        throw new IllegalStateException(options.getURI() + ": only " + completed.get() + " of "
            + count + " requests in " + ROUND_LIMIT.toSeconds() + " s, round aborted; unfinished "
            + unfinished());
      }
      long[] sorted = latencies.clone();
      Arrays.sort(sorted);
      return new Result(count / (nanos / 1e9), percentile(sorted, 0.50) / 1e6,
          percentile(sorted, 0.99) / 1e6);
    }

    /**
     * Where the unfinished requests stopped, so a stall can be told apart: waiting for a pooled
     * connection, waiting for response headers, or reading the body. Read without locking after
     * an abort: a rough picture, which is all it is for.
     */
    private String unfinished() {
      int[] at = new int[3];
      int started = Math.min(issued.get(), count);
      for (int k = 0; k < started; k++) {
        if (latencies[k] == 0) {
          at[stage[k]]++;
        }
      }
      return String.format("%d waiting for a connection, %d for headers, %d reading the body",
          at[WAITING], at[SENT], at[ANSWERED]);
    }

    /** Nearest-rank percentile of sorted values. */
    private static long percentile(long[] sorted, double p) {
      int rank = (int) Math.ceil(p * sorted.length);
      return sorted[Math.max(0, rank - 1)];
    }

    private void next() {
      int i = issued.getAndIncrement();
      if (i >= count || failure.get() != null) {
        return;
      }
      long start = System.nanoTime();
      client.request(options)
          .compose(req -> {
            stage[i] = SENT;
            return req.send();
          })
          .compose(resp -> {
            stage[i] = ANSWERED;
            return resp.statusCode() == 200
                ? resp.body()
                : Future.failedFuture("status " + resp.statusCode() + " "
                    + resp.getHeader("Proxy-Status"));
          })
          .onComplete(ar -> {
            if (ar.failed() || ar.result().length() != bodyBytes) {
              failure.compareAndSet(null, ar.failed() ? ar.cause()
                  : new IllegalStateException(ar.result().length() + " bytes, not " + bodyBytes));
              finished.countDown();
              return;
            }
            latencies[i] = System.nanoTime() - start;
            if (completed.incrementAndGet() == count) {
              finished.countDown();
            } else {
              next();
            }
          });
    }
  }
}
