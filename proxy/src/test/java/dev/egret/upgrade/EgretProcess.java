package dev.egret.upgrade;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code egret run} in a child JVM of its own, so a test can give it a small heap and see it
 * die of a body it buffered instead of streamed. Started with this JVM's class path and
 * security properties; its access log (stdout) and messages (stderr) are kept for assertions.
 *
 * <pre>
 * try (EgretProcess egret = EgretProcess.start(dir, yaml, "-Xmx64m")) {
 *   HttpClient client = egret.client();
 * }
 * </pre>
 */
public final class EgretProcess implements AutoCloseable {
  private static final Pattern READY =
      Pattern.compile("egret: proxy on [^:]+:(\\d+), admin on [^:]+:(\\d+)");

  private final Process process;
  private final List<String> stdout = new CopyOnWriteArrayList<>();
  private final List<String> stderr = new CopyOnWriteArrayList<>();
  private final CompletableFuture<int[]> ports = new CompletableFuture<>();

  private EgretProcess(Process process) {
    this.process = process;
    reader(process.getInputStream(), stdout, "egret-stdout");
    reader(process.getErrorStream(), stderr, "egret-stderr");
  }

  /**
   * Writes {@code yaml} to {@code dir/egret.yaml} and starts Egret on it with {@code jvmOptions};
   * returns once it printed its ports (or fails after 60 s, with what it printed).
   */
  public static EgretProcess start(Path dir, String yaml, String... jvmOptions) throws Exception {
    return start(dir, yaml, List.of(), jvmOptions);
  }

  /**
   * As {@link #start(Path, String, String...)}, with the descriptor table limited to {@code
   * maxOpenFiles} ({@code ulimit -n}, soft and hard, so the JVM cannot raise it).
   */
  public static EgretProcess startWithOpenFileLimit(Path dir, String yaml, int maxOpenFiles,
      String... jvmOptions) throws Exception {
    return start(dir, yaml, List.of("sh", "-c", "ulimit -n " + maxOpenFiles + " && exec \"$@\"",
        "sh"), jvmOptions);
  }

  private static EgretProcess start(Path dir, String yaml, List<String> launcher,
      String... jvmOptions) throws Exception {
    Path config = dir.resolve("egret.yaml");
    Files.writeString(config, yaml);
    List<String> command = new ArrayList<>(launcher);
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(List.of(jvmOptions));
    String security = System.getProperty("java.security.properties");
    if (security != null) {
      command.add("-Djava.security.properties=" + security);
    }
    command.addAll(List.of("-cp", classPath(), "dev.egret.cli.Egret", "run", "--config",
        config.toString()));
    EgretProcess egret = new EgretProcess(new ProcessBuilder(command).start());
    try {
      egret.ports.get(60, TimeUnit.SECONDS);
    } catch (Exception e) {
      egret.close();
      throw new AssertionError("egret did not start: " + egret.stderr, e);
    }
    return egret;
  }

  /** Surefire may hide the real class path behind a manifest-only jar; it names it here. */
  private static String classPath() {
    String surefire = System.getProperty("surefire.test.class.path");
    return surefire != null && !surefire.isBlank() ? surefire
        : System.getProperty("java.class.path");
  }

  private void reader(InputStream in, List<String> into, String name) {
    Thread t = new Thread(() -> {
      try (BufferedReader r =
          new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          synchronized (this) {
            into.add(line);
            notifyAll();
          }
          Matcher m = READY.matcher(line);
          if (m.find()) {
            ports.complete(new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))});
          }
        }
      } catch (IOException e) {
        // The process ended; what it printed is kept.
      } finally {
        ports.completeExceptionally(new IllegalStateException(name + " ended"));
      }
    }, name);
    t.setDaemon(true);
    t.start();
  }

  public int proxyPort() {
    return ports.join()[0];
  }

  public int adminPort() {
    return ports.join()[1];
  }

  public boolean alive() {
    return process.isAlive();
  }

  /** Access-log lines (stdout) so far. */
  public List<String> accessLog() {
    return List.copyOf(stdout);
  }

  /** Messages (stderr) so far. */
  public List<String> messages() {
    return List.copyOf(stderr);
  }

  /** Waits for an access-log line that matches; fails with the log so far at the deadline. */
  public synchronized String awaitLogLine(Predicate<String> match, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      for (String line : stdout) {
        if (match.test(line)) {
          return line;
        }
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("no matching access-log line within " + timeout + ": " + stdout);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  /** Sends SIGTERM, as an orchestrator stops a task. */
  public void terminate() {
    // SIGTERM through the handle: Process.destroy() would also close this side's ends of the
    // child's pipes, losing what it prints while it drains.
    process.toHandle().destroy();
  }

  /** The exit code, once the process has ended within {@code timeout}. */
  public int awaitExit(Duration timeout) throws InterruptedException {
    if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      throw new AssertionError("egret still runs after " + timeout + "; it said: " + stderr);
    }
    return process.exitValue();
  }

  /** Sends a signal ("HUP", "TERM") to the child, as an orchestrator or operator would. */
  public void signal(String name) throws Exception {
    Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).start();
    if (!kill.waitFor(10, TimeUnit.SECONDS) || kill.exitValue() != 0) {
      throw new AssertionError("kill -" + name + " " + process.pid() + " failed");
    }
  }

  /** Waits for a message (stderr) line that matches; fails with the messages at the deadline. */
  public synchronized String awaitMessage(Predicate<String> match, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      for (String line : stderr) {
        if (match.test(line)) {
          return line;
        }
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("no matching message within " + timeout + ": " + stderr);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  @Override
  public void close() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(15, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(5, TimeUnit.SECONDS);
    }
  }
}
