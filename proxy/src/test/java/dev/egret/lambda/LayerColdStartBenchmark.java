package dev.egret.lambda;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Cold starts of the unpacked layer: the time from starting {@code extensions/egret} to its first
 * {@code event/next} (registered, config loaded, proxy and admin bound: what delays the
 * function's runtime), N times in a row, each a new JVM; then the layer's sizes. Prints numbers,
 * asserts nothing (the machine is shared). From the repository root, after {@code mvn package}:
 *
 * <pre>
 * mvn -B -q -pl proxy test-compile dependency:build-classpath -Dmdep.outputFile=/tmp/egret.cp
 * (cd proxy && java -cp target/test-classes:target/classes:$(cat /tmp/egret.cp) \
 *   dev.egret.lambda.LayerColdStartBenchmark 10)
 * </pre>
 */
public final class LayerColdStartBenchmark {
  private LayerColdStartBenchmark() {}

  public static void main(String[] args) throws Exception {
    int runs = args.length > 0 ? Integer.parseInt(args[0]) : 10;
    String javaOpts = args.length > 1 ? args[1] : "";
    Path dir = Files.createTempDirectory("egret-layer-bench");
    Path layer = Layer.unpack(dir.resolve("opt"));
    Path config = Files.writeString(dir.resolve("egret.yaml"), """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        allow:
          - host: api.stripe.com
          - host: "**.salesforce.com"
          - host: hooks.slack.com
            methods: [POST]
            paths: ["/services/**"]
        """);
    List<Long> millis = new ArrayList<>();
    List<Long> cpuMillis = new ArrayList<>();
    // Run 0 is a warm-up, printed but not counted: this JVM's fake Extensions API (Vert.x) is
    // cold then and answers the first register and event/next hundreds of ms late, while the
    // child's CPU time to ready is the same as in the other runs (measured: 710 against 650 ms
    // by ready, 928 against ~430 ms of wall time).
    for (int i = -1; i < runs; i++) {
      try (FakeExtensionsApi api = FakeExtensionsApi.start()) {
        ProcessBuilder pb = new ProcessBuilder(layer.resolve("extensions/egret").toString());
        pb.environment().put("AWS_LAMBDA_RUNTIME_API", api.address());
        pb.environment().put("EGRET_CONFIG", config.toString());
        pb.environment().put("EGRET_JAVA_OPTS", javaOpts);
        try (Layer.Child egret = new Layer.Child(pb)) {
          FakeExtensionsApi.Call next = api.firstNext.get(30, TimeUnit.SECONDS);
          long ms = TimeUnit.NANOSECONDS.toMillis(next.atNanos() - egret.startNanos);
          // CPU time says more than wall time on a machine others share.
          long cpu = egret.process.info().totalCpuDuration().map(Duration::toMillis).orElse(-1L);
          if (i >= 0) {
            millis.add(ms);
            cpuMillis.add(cpu);
          }
          api.answerNext(FakeExtensionsApi.shutdown(System.currentTimeMillis() + 2000), Duration.ofSeconds(10));
          if (!egret.process.waitFor(10, TimeUnit.SECONDS) || egret.process.exitValue() != 0) {
            throw new AssertionError("run " + i + " did not exit 0: " + egret.stderr);
          }
          long registeredMs = TimeUnit.NANOSECONDS.toMillis(
              api.registered.get(1, TimeUnit.SECONDS).atNanos() - egret.startNanos);
          System.out.printf(i < 0 ? "warm-up run, not counted: %2$d ms (registered at %4$d ms;"
              + " cpu %3$d ms by ready)%n"
              : "run %d: %d ms (registered at %4$d ms; cpu %3$d ms by ready)%n", i + 1, ms, cpu,
              registeredMs);
        }
      }
    }
    List<Long> sorted = new ArrayList<>(millis);
    Collections.sort(sorted);
    long median = runs % 2 == 1 ? sorted.get(runs / 2) : (sorted.get(runs / 2 - 1) + sorted.get(runs / 2)) / 2;
    System.out.printf("launcher start to registered-and-ready: median %d ms, min %d, max %d (%d runs)%n",
        median, sorted.get(0), sorted.get(runs - 1), runs);
    Collections.sort(cpuMillis);
    System.out.printf("cpu time by ready: median %d ms%n", cpuMillis.get(runs / 2));
    System.out.printf("layer: %.1f MiB zipped, %.1f MiB unzipped%n",
        Files.size(Layer.ZIP) / 1048576.0, size(layer) / 1048576.0);
  }

  private static long size(Path root) throws IOException {
    try (Stream<Path> files = Files.walk(root)) {
      return files.filter(Files::isRegularFile).mapToLong(p -> {
        try {
          return Files.size(p);
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      }).sum();
    }
  }
}
