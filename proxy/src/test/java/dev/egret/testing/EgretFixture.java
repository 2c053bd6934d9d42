package dev.egret.testing;

import dev.egret.EgretServer;
import dev.egret.admin.AdminServer;
import dev.egret.config.ConfigCompiler;
import dev.egret.telemetry.AccessLog;
import dev.egret.telemetry.Metrics;
import dev.egret.telemetry.Observability;
import dev.egret.telemetry.Telemetry;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.dns.AddressResolverOptions;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The tests' one way to start an Egret: write the config to {@code dir/egret.yaml}, start Egret
 * on it on 127.0.0.1 port 0, and close it when the test is done. The builder picks how it runs:
 *
 * <pre>
 * // In this JVM, with test host names mapped to loopback and, optionally, a recording telemetry:
 * try (EgretFixture egret = EgretFixture.builder()
 *     .hosts(Map.of("api.partner.test", "127.0.0.1"))
 *     .telemetry(seen)                       // a RecordingTelemetry; Telemetry.NONE by default
 *     .start(dir, yaml)) {
 *   HttpResponse&lt;String&gt; r = egret.client().send(...);
 * }
 *
 * // In this JVM, wired as `egret run` wires it: metrics, the access log, the admin server:
 * try (EgretFixture egret = EgretFixture.builder().observed().hosts(hosts).start(dir, yaml)) {
 *   List&lt;String&gt; log = egret.awaitLogLines(1);
 *   PrometheusText metrics = egret.metrics();     // a real GET /metrics on the admin port
 * }
 *
 * // `egret run` in a child JVM, for a small heap, a descriptor limit or a real signal:
 * try (EgretFixture egret = EgretFixture.builder().childJvm("-Xmx64m").openFileLimit(256)
 *     .start(dir, yaml)) {
 *   egret.signal("HUP");
 *   egret.awaitMessage(m -&gt; m.contains("reloaded"), Duration.ofSeconds(10));
 * }
 * </pre>
 *
 * <p>In this JVM, Egret gets a Vertx of its own (the native transport where it loads, as {@code
 * egret run} has) whose resolver reads an in-memory hosts file ({@link #resolver}), so tests use
 * real names (for SNI and certificate checks) without touching real DNS. A child JVM resolves
 * names as {@code egret run} does, so it takes no hosts. A method that needs what a mode does not
 * have (the {@link #server()} of a child JVM, the admin port of a plain in-process Egret) fails
 * with an {@link IllegalStateException} naming the builder option that provides it.
 */
public final class EgretFixture implements AutoCloseable {
  private static final Duration LOG_DEADLINE = Duration.ofSeconds(15);
  private static final Pattern READY =
      Pattern.compile("egret: proxy on [^:]+:(\\d+), admin on [^:]+:(\\d+)");

  /** How the Egret runs; chosen by the {@link Builder}. */
  public enum Mode {
    /** In this JVM with the given {@link Telemetry}; no admin server. */
    IN_PROCESS,
    /** In this JVM with metrics, an in-memory access log and the admin server. */
    OBSERVED,
    /** {@code egret run} in a child JVM, from this JVM's class path. */
    CHILD_JVM
  }

  private final Mode mode;
  private final Path configFile;
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  // The access log: written in memory (OBSERVED) or the child's stdout (CHILD_JVM).
  private final LogLines log = new LogLines();
  // The child's stderr (CHILD_JVM).
  private final LogLines messages = new LogLines();

  // In this JVM (IN_PROCESS, OBSERVED); the last three only when OBSERVED.
  private Vertx vertx;
  private EgretServer server;
  private Metrics metrics;
  private Observability observability;
  private AdminServer admin;

  // In a child JVM.
  private Process process;
  private final CompletableFuture<int[]> childPorts = new CompletableFuture<>();

  private int proxyPort;
  private int adminPort;

  private EgretFixture(Mode mode, Path configFile) {
    this.mode = mode;
    this.configFile = configFile;
  }

  /** Options for one Egret; {@link Builder#start} starts it. */
  public static Builder builder() {
    return new Builder();
  }

  /** How the Egret runs; every option has a default: {@code builder().start(dir, yaml)}. */
  public static final class Builder {
    private Map<String, String> hosts = Map.of();
    private Telemetry telemetry;
    private boolean observed;
    private List<String> jvmOptions;
    private Integer maxOpenFiles;

    private Builder() {}

    /** Host names the in-process resolver maps to these addresses; others fail to resolve. */
    public Builder hosts(Map<String, String> hosts) {
      this.hosts = Map.copyOf(hosts);
      return this;
    }

    /** The telemetry an in-process Egret reports to, e.g. a {@link RecordingTelemetry}. */
    public Builder telemetry(Telemetry telemetry) {
      this.telemetry = telemetry;
      return this;
    }

    /**
     * Wires Egret as {@code egret run} does: one metrics registry, a Vertx reporting into it, the
     * production {@link Observability} with the access log kept in memory, and the admin server
     * (so {@link #scrape()}, {@link #metrics()} and {@link #awaitLogLines} work).
     */
    public Builder observed() {
      this.observed = true;
      return this;
    }

    /**
     * Runs {@code egret run} in a child JVM with these options (say {@code -Xmx64m}), this JVM's
     * class path and security properties; its stdout is the access log, its stderr the messages.
     */
    public Builder childJvm(String... jvmOptions) {
      this.jvmOptions = List.of(jvmOptions);
      return this;
    }

    /** Limits the child's descriptor table ({@code ulimit -n}, soft and hard) to this size. */
    public Builder openFileLimit(int maxOpenFiles) {
      this.maxOpenFiles = maxOpenFiles;
      return this;
    }

    /**
     * Writes {@code yaml} to {@code dir/egret.yaml} and starts Egret on it; returns once it
     * listens (a child JVM: once it printed its ports, or fails after 60 s with what it said).
     */
    public EgretFixture start(Path dir, String yaml) throws Exception {
      Path file = dir.resolve("egret.yaml");
      if (jvmOptions != null) {
        if (!hosts.isEmpty() || telemetry != null || observed) {
          throw new IllegalStateException("a child JVM resolves names itself and reports as "
              + "egret run does: hosts(), telemetry() and observed() are for an in-process Egret");
        }
        Files.writeString(file, yaml);
        return startChild(file, jvmOptions, maxOpenFiles);
      }
      if (maxOpenFiles != null) {
        throw new IllegalStateException("openFileLimit() limits a child JVM: add childJvm()");
      }
      if (observed && telemetry != null) {
        throw new IllegalStateException("observed() reports to the production Observability; "
            + "telemetry() is for a plain in-process Egret");
      }
      Files.writeString(file, yaml);
      return observed ? startObserved(file, hosts)
          : startInProcess(file, hosts, telemetry == null ? Telemetry.NONE : telemetry);
    }
  }

  private static EgretFixture startInProcess(Path file, Map<String, String> hosts,
      Telemetry telemetry) throws Exception {
    EgretFixture egret = new EgretFixture(Mode.IN_PROCESS, file);
    // The transport `egret run` uses (Run.start): epoll where it loads.
    egret.vertx = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true)
        .setAddressResolverOptions(resolver(hosts)));
    try {
      egret.server = new EgretServer(egret.vertx, ConfigCompiler.load(file), telemetry);
      egret.proxyPort = egret.server.start().await(20, TimeUnit.SECONDS);
      return egret;
    } catch (Exception e) {
      egret.close();
      throw e;
    }
  }

  private static EgretFixture startObserved(Path file, Map<String, String> hosts)
      throws Exception {
    EgretFixture egret = new EgretFixture(Mode.OBSERVED, file);
    egret.metrics = new Metrics();
    egret.vertx = egret.metrics.newVertx(new VertxOptions().setPreferNativeTransport(true)
        .setAddressResolverOptions(resolver(hosts)));
    egret.observability = new Observability(egret.metrics.registry(),
        new AccessLog(egret.log, AccessLog.DEFAULT_CAPACITY));
    try {
      EgretServer server =
          new EgretServer(egret.vertx, ConfigCompiler.load(file), egret.observability);
      egret.server = server;
      egret.admin = new AdminServer(egret.vertx, "127.0.0.1", 0, egret.observability::scrape,
          () -> AdminServer.Limits.of(server.config()), egret.observability);
      // The same order as Run: admin first (its address joins the loop check), then the proxy.
      egret.adminPort = egret.admin.start().await(20, TimeUnit.SECONDS);
      server.alsoOwn(new InetSocketAddress("127.0.0.1", egret.adminPort));
      egret.proxyPort = server.start().await(20, TimeUnit.SECONDS);
      egret.admin.markReady();
      return egret;
    } catch (Exception e) {
      egret.close();
      throw e;
    }
  }

  private static EgretFixture startChild(Path file, List<String> jvmOptions,
      Integer maxOpenFiles) throws Exception {
    List<String> command = new ArrayList<>();
    if (maxOpenFiles != null) {
      // Soft and hard, so the JVM cannot raise it.
      command.addAll(List.of("sh", "-c", "ulimit -n " + maxOpenFiles + " && exec \"$@\"", "sh"));
    }
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(jvmOptions);
    String security = System.getProperty("java.security.properties");
    if (security != null) {
      command.add("-Djava.security.properties=" + security);
    }
    command.addAll(List.of("-cp", classPath(), "dev.egret.cli.Egret", "run", "--config",
        file.toString()));
    EgretFixture egret = new EgretFixture(Mode.CHILD_JVM, file);
    egret.process = new ProcessBuilder(command).start();
    egret.copyLines(egret.process.getInputStream(), egret.log, "egret-stdout");
    egret.copyLines(egret.process.getErrorStream(), egret.messages, "egret-stderr");
    try {
      int[] ports = egret.childPorts.get(60, TimeUnit.SECONDS);
      egret.proxyPort = ports[0];
      egret.adminPort = ports[1];
    } catch (Exception e) {
      egret.close();
      throw new AssertionError("egret did not start: " + egret.messages.lines(), e);
    }
    return egret;
  }

  /** Surefire may hide the real class path behind a manifest-only jar; it names it here. */
  private static String classPath() {
    String surefire = System.getProperty("surefire.test.class.path");
    return surefire != null && !surefire.isBlank() ? surefire
        : System.getProperty("java.class.path");
  }

  /** Copies a child's stream into {@code into} line by line, watching for its ports. */
  private void copyLines(InputStream in, LogLines into, String name) {
    Thread t = new Thread(() -> {
      try (BufferedReader r =
          new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          into.write((line + "\n").getBytes(StandardCharsets.UTF_8));
          Matcher m = READY.matcher(line);
          if (m.find()) {
            childPorts.complete(
                new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))});
          }
        }
      } catch (IOException e) {
        // The process ended; what it printed is kept.
      } finally {
        childPorts.completeExceptionally(new IllegalStateException(name + " ended"));
      }
    }, name);
    t.setDaemon(true);
    t.start();
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

  public Mode mode() {
    return mode;
  }

  public int proxyPort() {
    return proxyPort;
  }

  /** The admin listener's port (observed or child JVM). */
  public int adminPort() {
    require("the admin port", "observed() or childJvm()", Mode.OBSERVED, Mode.CHILD_JVM);
    return adminPort;
  }

  /** The config file Egret was started from; rewrite it and reload (server().reload(), HUP). */
  public Path configFile() {
    return configFile;
  }

  /** The server in this JVM, to reload it, watch its files or read its config. */
  public EgretServer server() {
    require("server()", "an in-process Egret (no childJvm())", Mode.IN_PROCESS, Mode.OBSERVED);
    return server;
  }

  /** A JDK HttpClient that sends everything through this Egret (HTTP/1.1). */
  public HttpClient client() {
    return HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", proxyPort)))
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build();
  }

  /** The body of {@code GET /metrics} on the admin port; fails unless it is a 200 in text 0.0.4. */
  public String scrape() throws Exception {
    HttpResponse<String> r = http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + adminPort() + "/metrics"))
            .timeout(Duration.ofSeconds(10)).build(),
        HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200 || !r.headers().firstValue("content-type").orElse("")
        .equals(AdminServer.METRICS_CONTENT_TYPE)) {
      throw new AssertionError("GET /metrics answered " + r.statusCode() + " " + r.headers() + "\n"
          + r.body());
    }
    return r.body();
  }

  /** {@link #scrape()}, parsed. */
  public PrometheusText metrics() throws Exception {
    return PrometheusText.parse(scrape());
  }

  /** Waits (up to 15 s) until the access log holds at least {@code count} lines; returns all. */
  public List<String> awaitLogLines(int count) throws InterruptedException {
    requireLog();
    return log.await(count, LOG_DEADLINE);
  }

  /** Waits for an access-log line that matches; fails with the log so far at the deadline. */
  public String awaitLogLine(Predicate<String> match, Duration timeout)
      throws InterruptedException {
    requireLog();
    return log.awaitLine(match, timeout);
  }

  /** The access-log lines written so far. */
  public List<String> logLines() {
    requireLog();
    return log.lines();
  }

  /** The child's messages (stderr) so far. */
  public List<String> messages() {
    require("messages()", "childJvm()", Mode.CHILD_JVM);
    return messages.lines();
  }

  /** Waits for a message (stderr) line that matches; fails with the messages at the deadline. */
  public String awaitMessage(Predicate<String> match, Duration timeout)
      throws InterruptedException {
    require("awaitMessage()", "childJvm()", Mode.CHILD_JVM);
    return messages.awaitLine(match, timeout);
  }

  public boolean alive() {
    require("alive()", "childJvm()", Mode.CHILD_JVM);
    return process.isAlive();
  }

  /** Sends SIGTERM, as an orchestrator stops a task. */
  public void terminate() {
    require("terminate()", "childJvm()", Mode.CHILD_JVM);
    // SIGTERM through the handle: Process.destroy() would also close this side's ends of the
    // child's pipes, losing what it prints while it drains.
    process.toHandle().destroy();
  }

  /** Sends a signal ("HUP", "TERM") to the child, as an orchestrator or operator would. */
  public void signal(String name) throws Exception {
    require("signal()", "childJvm()", Mode.CHILD_JVM);
    Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).start();
    if (!kill.waitFor(10, TimeUnit.SECONDS) || kill.exitValue() != 0) {
      throw new AssertionError("kill -" + name + " " + process.pid() + " failed");
    }
  }

  /** The exit code, once the child has ended within {@code timeout}. */
  public int awaitExit(Duration timeout) throws InterruptedException {
    require("awaitExit()", "childJvm()", Mode.CHILD_JVM);
    if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      throw new AssertionError("egret still runs after " + timeout + "; it said: "
          + messages.lines());
    }
    return process.exitValue();
  }

  private void requireLog() {
    require("the access log", "observed() or childJvm()", Mode.OBSERVED, Mode.CHILD_JVM);
  }

  /** Fails unless this Egret runs in one of {@code modes}, naming the option that provides it. */
  private void require(String what, String option, Mode... modes) {
    for (Mode m : modes) {
      if (m == mode) {
        return;
      }
    }
    throw new IllegalStateException(what + " needs " + option + " in the builder; this Egret runs "
        + mode);
  }

  @Override
  public void close() {
    if (mode == Mode.CHILD_JVM) {
      closeChild();
      return;
    }
    if (admin != null) {
      admin.markDraining();
    }
    try {
      if (server != null) {
        server.close().await(10, TimeUnit.SECONDS);
      }
      if (admin != null) {
        admin.close().await(10, TimeUnit.SECONDS);
      }
    } catch (Exception e) {
      // closing anyway
    } finally {
      if (observability != null) {
        observability.close();
      }
      try {
        vertx.close().await(10, TimeUnit.SECONDS);
      } catch (Exception e) {
        // the test is over
      }
      if (metrics != null) {
        metrics.close();
      }
    }
  }

  private void closeChild() {
    process.destroy();
    try {
      if (!process.waitFor(15, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
