package dev.egret.tunnel;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.KeyKind;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import io.vertx.core.Vertx;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;

/**
 * Tunnel throughput against a direct TLS connection, on this machine, in one run. Not a unit
 * test (surefire's default includes skip it): run it by hand after {@code mvn test-compile}.
 *
 * <pre>
 * mvn -B -o -q -pl proxy test-compile dependency:build-classpath -Dmdep.outputFile=/tmp/egret.cp
 * java -cp proxy/target/test-classes:proxy/target/classes:$(cat /tmp/egret.cp) \
 *     dev.egret.tunnel.TunnelBenchmark [MiB per transfer, default 1024] [rounds, default 3]
 * </pre>
 *
 * <p>Each round moves the given size down (server to client) and then up, once directly to a
 * local Vert.x TLS server and once through an in-process Egret's CONNECT tunnel, alternating
 * which goes first. Client (JDK TLS), server (Vert.x TLS) and Egret share the machine's cores,
 * so the ratio is what the relay costs when it competes with both ends for CPU.
 */
public final class TunnelBenchmark {
  private static final String HOST = "api.partner.test";

  public static void main(String[] args) throws Exception {
    long mib = args.length > 0 ? Long.parseLong(args[0]) : 1024;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    long size = mib << 20;
    Path dir = Files.createTempDirectory("egret-bench");
    TestCert root = TestPki.rootCa("Benchmark Root").issue();
    TestCert leaf = root.leaf(HOST).key(KeyKind.EC_P256).issue();
    SSLContext trust = root.clientContext();
    Vertx serverVertx = Vertx.vertx();
    BulkServer bulk = BulkServer.start(serverVertx, leaf, dir);
    EgretFixture egret = EgretFixture.builder().hosts(Map.of(HOST, "127.0.0.1")).start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d]
        """.formatted(HOST, bulk.port()));
    try {
      System.out.printf("%d MiB per transfer, %d rounds, %d cores, %s%n", mib, rounds,
          Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"));
      // One small warm-up each way so the JIT has compiled the hot paths before timing.
      transfer(trust, bulk, egret, false, 64L << 20, true);
      transfer(trust, bulk, egret, true, 64L << 20, true);
      List<double[]> down = new ArrayList<>();
      List<double[]> up = new ArrayList<>();
      for (int r = 0; r < rounds; r++) {
        boolean tunnelFirst = r % 2 == 1;
        for (boolean downward : new boolean[] {true, false}) {
          double first = transfer(trust, bulk, egret, tunnelFirst, size, downward);
          double second = transfer(trust, bulk, egret, !tunnelFirst, size, downward);
          double direct = tunnelFirst ? second : first;
          double tunnel = tunnelFirst ? first : second;
          (downward ? down : up).add(new double[] {direct, tunnel});
          System.out.printf("round %d %-4s direct %7.1f MiB/s  tunnel %7.1f MiB/s  ratio %.2f%n",
              r + 1, downward ? "down" : "up", direct, tunnel, tunnel / direct);
        }
      }
      summary("down", down);
      summary("up", up);
    } finally {
      egret.close();
      bulk.close();
      serverVertx.close().await(10, TimeUnit.SECONDS);
    }
  }

  private static void summary(String what, List<double[]> runs) {
    double direct = runs.stream().mapToDouble(r -> r[0]).average().orElse(0);
    double tunnel = runs.stream().mapToDouble(r -> r[1]).average().orElse(0);
    System.out.printf("mean %-4s direct %7.1f MiB/s  tunnel %7.1f MiB/s  ratio %.2f%n", what,
        direct, tunnel, tunnel / direct);
  }

  /** One transfer; returns MiB/s, failing if either digest is wrong. */
  private static double transfer(SSLContext trust, BulkServer bulk, EgretFixture egret,
      boolean viaTunnel, long size, boolean downward) throws Exception {
    long up = downward ? 0 : size;
    long down = downward ? size : 0;
    Exchange.Result r;
    if (viaTunnel) {
      try (ProxyConnect c = ProxyConnect.open(egret.proxyPort(), HOST + ":" + bulk.port())) {
        r = Exchange.run(c.tls(trust, HOST, bulk.port()), up, down);
      }
    } else {
      try (Socket s = new Socket("127.0.0.1", bulk.port());
           SSLSocket ssl = (SSLSocket) trust.getSocketFactory()
               .createSocket(s, HOST, bulk.port(), true)) {
        ssl.startHandshake();
        r = Exchange.run(ssl, up, down);
      }
    }
    if (!r.intact()) {
      throw new AssertionError("digest mismatch, " + (viaTunnel ? "tunnel" : "direct"));
    }
    return (size / (double) (1 << 20)) / (r.nanos() / 1e9);
  }
}
