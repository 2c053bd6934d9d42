package dev.egret.config;

import dev.egret.exchange.Serving;
import dev.egret.listener.RequestTargets;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.policy.Verdict;
import dev.egret.telemetry.AccessLog;
import dev.egret.telemetry.Observability;
import dev.egret.telemetry.Telemetry;
import dev.egret.testing.EgretFixture;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reload that happens once per change (docs/config.md, "How a reload applies"): the file and every file it
 * names are watched; a refused version is counted once while it stays; a ConfigMap's symlink
 * swap and a changed trust PEM are picked up; reloads under load lose no request. The watch
 * period is short (50 ms) so that the old behaviour (re-read and refuse every period) would
 * count dozens of failures where the contract allows one.
 */
class ConfigReloadTest {
  private static final String HEAD = "version: 1\nlisten: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}\n";
  private static final Duration AWAIT = Duration.ofSeconds(10);

  @TempDir Path dir;

  /** The production telemetry on a real registry, with each config event also queued. */
  static final class Events implements Telemetry {
    final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    final Observability observability = new Observability(registry,
        new AccessLog(OutputStream.nullOutputStream(), AccessLog.DEFAULT_CAPACITY));
    final LinkedBlockingQueue<String> loaded = new LinkedBlockingQueue<>();
    final LinkedBlockingQueue<String> failed = new LinkedBlockingQueue<>();

    @Override public void configLoaded(String sha256) {
      observability.configLoaded(sha256);
      loaded.add(sha256);
    }

    @Override public void configReloadFailed(String reason) {
      observability.configReloadFailed(reason);
      failed.add(reason);
    }

    String nextLoaded() throws InterruptedException {
      String sha = loaded.poll(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
      assertThat(sha).as("a config was loaded within " + AWAIT).isNotNull();
      return sha;
    }

    String nextFailure() throws InterruptedException {
      String why = failed.poll(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
      assertThat(why).as("a reload was refused within " + AWAIT).isNotNull();
      return why;
    }

    double sample(String series) {
      Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$")
          .matcher(observability.scrape());
      assertThat(m.find()).as(series + " in the scrape").isTrue();
      return Double.parseDouble(m.group(1));
    }
  }

  private static String sha(String text) {
    return ConfigCompiler.sha256(text.getBytes(StandardCharsets.UTF_8));
  }

  private static Verdict verdict(EgretFixture egret, String url) {
    return egret.server().config().allowlist().decide(RequestTargets.target("GET", url).target())
        .verdict();
  }

  /** Replaces a file the way editors and config tools do: write beside it, then rename. */
  private static void replace(Path file, String text) throws Exception {
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.writeString(tmp, text);
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  @Test
  void countsABadVersionOnceWhileItStaysAndServesTheLastGoodOne() throws Exception {
    Events events = new Events();
    String good = HEAD + "allow:\n  - host: a.example\n";
    try (EgretFixture egret = EgretFixture.builder().telemetry(events).start(dir, good)) {
      events.nextLoaded();
      double loadedAt = events.sample("egret_config_last_reload_success_timestamp_seconds");
      assertThat(loadedAt).isGreaterThan(0);
      egret.server().watch(50);

      Path file = dir.resolve("egret.yaml");
      replace(file, HEAD + "allow:\n  - host: \"**.*\"\n");
      assertThat(events.nextFailure()).contains("egret.yaml:4:").contains("ends in a wildcard");
      // 10 s of the watcher looking every 50 ms at a file that stays bad: no second count.
      assertThat(events.failed.poll(10, TimeUnit.SECONDS)).as("a second count").isNull();
      assertThat(events.sample("egret_config_reloads_total{result=\"failure\"}")).isEqualTo(1.0);
      assertThat(events.sample("egret_config_info{sha256=\"" + sha(good) + "\"}")).isEqualTo(1.0);
      assertThat(verdict(egret, "https://a.example/")).isEqualTo(Verdict.ALLOW);

      // SIGHUP tries the same bad version again (the operator asked), and still counts it once.
      var again = egret.server().reload().toCompletionStage().toCompletableFuture();
      assertThat(again).failsWithin(AWAIT);
      assertThat(events.failed).as("a count for the same version on SIGHUP").isEmpty();
      assertThat(events.sample("egret_config_reloads_total{result=\"failure\"}")).isEqualTo(1.0);

      // Touching it (new mtime, same bytes) is no new version either.
      Files.setLastModifiedTime(file, FileTime.fromMillis(System.currentTimeMillis() + 5000));
      assertThat(events.failed.poll(1, TimeUnit.SECONDS)).as("a count after a touch").isNull();

      // A second, different bad version is a new refusal, counted once more.
      replace(file, HEAD + "allow:\n  - host: \"*.*\"\n");
      assertThat(events.nextFailure()).contains("ends in a wildcard");

      String fixed = HEAD + "allow:\n  - host: b.example\n";
      replace(file, fixed);
      assertThat(events.nextLoaded()).isEqualTo(sha(fixed));
      assertThat(verdict(egret, "https://b.example/")).isEqualTo(Verdict.ALLOW);
      assertThat(events.sample("egret_config_reloads_total{result=\"failure\"}")).isEqualTo(2.0);
      assertThat(events.sample("egret_config_reloads_total{result=\"success\"}")).isEqualTo(1.0);
      assertThat(events.sample("egret_config_info{sha256=\"" + sha(fixed) + "\"}")).isEqualTo(1.0);
      assertThat(events.observability.scrape()).doesNotContain(sha(good));
      assertThat(events.sample("egret_config_last_reload_success_timestamp_seconds"))
          .isGreaterThanOrEqualTo(loadedAt);
    }
  }

  @Test
  void picksUpAConfigMapSymlinkSwap() throws Exception {
    // Kubernetes mounts a ConfigMap as egret.yaml -> ..data/egret.yaml, ..data -> ..<timestamp>,
    // and updates it by pointing ..data at a new folder with one rename.
    String first = HEAD + "allow:\n  - host: a.example\n";
    String second = HEAD + "allow:\n  - host: b.example\n";
    Path v1 = Files.createDirectory(dir.resolve("..2026_12_01_v1"));
    Path v2 = Files.createDirectory(dir.resolve("..2026_12_02_v2"));
    Files.writeString(v1.resolve("egret.yaml"), first);
    Files.writeString(v2.resolve("egret.yaml"), second);
    // Same size and modification time: only the symlink's target tells them apart cheaply.
    FileTime t = FileTime.fromMillis(1_700_000_000_000L);
    Files.setLastModifiedTime(v1.resolve("egret.yaml"), t);
    Files.setLastModifiedTime(v2.resolve("egret.yaml"), t);
    Files.createSymbolicLink(dir.resolve("..data"), v1.getFileName());
    Files.createSymbolicLink(dir.resolve("egret.yaml"), Path.of("..data", "egret.yaml"));

    Events events = new Events();
    try (EgretFixture egret = EgretFixture.builder().telemetry(events).start(dir, first)) {
      assertThat(events.nextLoaded()).isEqualTo(sha(first));
      Files.setLastModifiedTime(v1.resolve("egret.yaml"), t);
      egret.server().watch(50);

      Path tmp = Files.createSymbolicLink(dir.resolve("..data_tmp"), v2.getFileName());
      Files.move(tmp, dir.resolve("..data"), StandardCopyOption.ATOMIC_MOVE);
      assertThat(events.nextLoaded()).isEqualTo(sha(second));
      assertThat(verdict(egret, "https://b.example/")).isEqualTo(Verdict.ALLOW);
      assertThat(verdict(egret, "https://a.example/")).isEqualTo(Verdict.DENY);
      assertThat(events.failed).isEmpty();
    }
  }

  @Test
  void picksUpAChangedTrustPemThatTheConfigNames() throws Exception {
    TestCert servingRoot = TestPki.rootCa("Reload Serving Root").issue();
    TestCert otherRoot = TestPki.rootCa("Reload Other Root").issue();
    Path certs = Files.createDirectory(dir.resolve("certs"));
    Path trusted = otherRoot.writePem(dir.resolve("other")).cert();
    Path right = servingRoot.writePem(dir.resolve("right")).cert();
    Files.copy(trusted, certs.resolve("ca.pem"));
    String host = "api.partner.test";
    try (TlsTestServer upstream = TlsTestServer.https(servingRoot.leaf(host).issue()).start()) {
      String yaml = HEAD + """
          addresses: {allow: [127.0.0.1/32]}
          allow:
            - host: %s
              ports: [%d]
              trust: [certs/ca.pem]
          """.formatted(host, upstream.port());
      Events events = new Events();
      try (EgretFixture egret = EgretFixture.builder().hosts(Map.of(host, "127.0.0.1"))
          .telemetry(events).start(dir, yaml)) {
        events.nextLoaded();
        HttpClient client = egret.client();
        HttpRequest get = HttpRequest.newBuilder(URI.create("http://" + host + ":"
            + upstream.port() + "/x")).timeout(AWAIT).build();
        assertThat(client.send(get, HttpResponse.BodyHandlers.ofString()).statusCode())
            .as("the upstream's root is not trusted yet").isEqualTo(502);
        egret.server().watch(50);

        replace(certs.resolve("ca.pem"), Files.readString(right));
        assertThat(events.nextLoaded()).as("the config file itself did not change")
            .isEqualTo(sha(yaml));
        assertThat(egret.server().config().referencedFiles())
            .containsExactly(dir.resolve("certs/ca.pem").toAbsolutePath());
        assertThat(client.send(get, HttpResponse.BodyHandlers.ofString()).statusCode())
            .isEqualTo(200);
      }
    }
  }

  @Test
  void aFifoNamedByTheConfigIsRefusedWithoutWedgingLaterReloads() throws Exception {
    Path fifo = dir.resolve("trust.fifo");
    Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).start();
    assertThat(mkfifo.waitFor(10, TimeUnit.SECONDS) && mkfifo.exitValue() == 0).isTrue();
    Events events = new Events();
    try (EgretFixture egret = EgretFixture.builder().telemetry(events)
        .start(dir, HEAD + "allow:\n  - host: a.example\n")) {
      events.nextLoaded();
      egret.server().watch(50);
      Path file = dir.resolve("egret.yaml");
      replace(file, HEAD + "tls: {trust: [system, trust.fifo]}\nallow:\n  - host: a.example\n");
      assertThat(events.nextFailure()).contains("egret.yaml:3:23:").contains("trust.fifo")
          .contains("not a regular file");
      // SIGHUP's path is not held up behind anything either.
      String fixed = HEAD + "allow:\n  - host: c.example\n";
      replace(file, fixed);
      egret.server().reload().toCompletionStage().toCompletableFuture()
          .get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
      assertThat(egret.server().config().sha256()).isEqualTo(sha(fixed));
    }
  }

  @Test
  void reloadsEverySecondUnderLoadWithoutFailingARequest() throws Exception {
    TestCert root = TestPki.rootCa("Reload Load Root").issue();
    String host = "api.partner.test";
    Path rootPem = root.writePem(dir).cert();
    try (TlsTestServer upstream = TlsTestServer.https(root.leaf(host).issue()).start()) {
      Events events = new Events();
      String base = HEAD + """
          tls: {trust: [%s]}
          addresses: {allow: [127.0.0.1/32]}
          allow:
            - host: %s
              ports: [%d]
          """.formatted(rootPem.getFileName(), host, upstream.port());
      try (EgretFixture egret = EgretFixture.builder().hosts(Map.of(host, "127.0.0.1"))
          .telemetry(events).start(dir, base)) {
        events.nextLoaded();
        egret.server().watch(50);
        HttpClient client = egret.client();
        URI uri = URI.create("http://" + host + ":" + upstream.port() + "/load");
        AtomicInteger ok = new AtomicInteger();
        List<String> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        ExecutorService clients = Executors.newFixedThreadPool(4);
        List<Future<?>> running = new ArrayList<>();
        for (int c = 0; c < 4; c++) {
          running.add(clients.submit(() -> {
            // Bounded in time (20 s) and in count (5,000 per client).
            for (int i = 0; i < 5_000 && System.nanoTime() < end; i++) {
              try {
                HttpResponse<String> r = client.send(HttpRequest.newBuilder(uri)
                    .timeout(AWAIT).build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) {
                  ok.incrementAndGet();
                } else {
                  failures.add(r.statusCode() + " " + r.body());
                }
              } catch (Exception e) {
                failures.add(e.toString());
              }
            }
            return null;
          }));
        }
        int reloads = 0;
        Path file = dir.resolve("egret.yaml");
        long start = System.nanoTime();
        while (System.nanoTime() < end) {
          String next = base + "# reload " + reloads + "\n";
          replace(file, next);
          assertThat(events.nextLoaded()).isEqualTo(sha(next));
          reloads++;
          // One good reload a second, on a fixed schedule: await the clients until the next one.
          long due = start + TimeUnit.SECONDS.toNanos(reloads);
          for (Future<?> f : running) {
            long left = due - System.nanoTime();
            if (left > 0) {
              try {
                f.get(left, TimeUnit.NANOSECONDS);
              } catch (java.util.concurrent.TimeoutException stillRunning) {
                // the clients are still sending: the point of this loop
              }
            }
          }
        }
        for (Future<?> f : running) {
          f.get(60, TimeUnit.SECONDS);
        }
        clients.shutdown();
        assertThat(failures).as("failed requests").isEmpty();
        assertThat(reloads).isGreaterThanOrEqualTo(16);
        assertThat(ok.get()).as("requests served across the reloads").isGreaterThanOrEqualTo(reloads);
        assertThat(events.failed).isEmpty();
        System.out.printf("reload under load: %d requests, %d reloads, 0 failures%n", ok.get(),
            reloads);
      }
    }
  }
}
