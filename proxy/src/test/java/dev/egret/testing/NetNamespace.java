package dev.egret.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * Two network namespaces joined by a veth pair: {@code task}, where the app and Egret run and
 * the rules go, and {@code upstream}, where the test's servers play the outside world. Traffic
 * from the task to the upstream leaves through a real interface, so the task's OUTPUT rules see
 * it as they would in a pod. Only the addresses given here exist, and only inside these two
 * namespaces: {@link #TASK_IP} / {@link #UPSTREAM_IP} (198.18.0.0/15, the benchmark range) and
 * {@link #TASK_IP6} / {@link #UPSTREAM_IP6}.
 *
 * <pre>
 * try (NetNamespace net = NetNamespace.create()) {          // skips the test when it cannot
 *   net.hosts("198.18.0.2 api.test.example");              // /etc/netns/NAME/hosts in both
 *   Spawned server = net.upstream().start(List.of("python3", ...));
 *   Output o = net.task().runAs(1000, Duration.ofSeconds(10), List.of(...));
 * }
 * </pre>
 *
 * <p>Needs root, {@code ip} (iproute2) and {@code setpriv}; where the namespaces cannot be
 * made the calling test is skipped with the reason ({@link Assumptions#abort}), never silently
 * passed. Everything is torn down by {@link #close}: processes, namespaces, /etc/netns files.
 */
public final class NetNamespace implements AutoCloseable {
  public static final String TASK_IP = "198.18.0.1";
  public static final String UPSTREAM_IP = "198.18.0.2";
  public static final String TASK_IP6 = "fd00:198:18::1";
  public static final String UPSTREAM_IP6 = "fd00:198:18::2";

  private static final AtomicInteger COUNTER = new AtomicInteger();

  private final Side task;
  private final Side upstream;

  private NetNamespace(String id) {
    this.task = new Side("egret-t" + id);
    this.upstream = new Side("egret-u" + id);
  }

  /** Creates the pair, or aborts the calling test with why it cannot. */
  public static NetNamespace create() {
    String why = cannotCreate();
    if (why != null) {
      System.err.println("NetNamespace: skipping: " + why);
      Assumptions.abort("network namespaces cannot be made here (" + why
          + "); .ci/run runs as root with iproute2 installed");
    }
    String id = ProcessHandle.current().pid() % 100000 + "x" + COUNTER.incrementAndGet();
    NetNamespace n = new NetNamespace(id);
    try {
      n.setUp(id);
    } catch (Exception | AssertionError e) {
      n.close();
      throw new AssertionError("cannot set up network namespaces " + n.task.name + "/"
          + n.upstream.name + ": " + e.getMessage(), e);
    }
    return n;
  }

  private static String cannotCreate() {
    if (!"root".equals(System.getProperty("user.name"))) {
      return "not root";
    }
    for (String tool : List.of("/usr/sbin/ip", "/usr/bin/setpriv")) {
      if (!Files.isExecutable(Path.of(tool)) && !Files.isExecutable(Path.of("/sbin", Path.of(tool).getFileName().toString()))) {
        return tool + " is not installed";
      }
    }
    // A throwaway namespace proves the kernel and the container let us make them.
    String probe = "egret-probe" + ProcessHandle.current().pid() % 100000;
    try {
      Output add = host(Duration.ofSeconds(10), "ip", "netns", "add", probe);
      if (add.code() != 0) {
        return "'ip netns add' failed: " + add.text().strip();
      }
      host(Duration.ofSeconds(10), "ip", "netns", "del", probe);
      return null;
    } catch (Exception e) {
      return "'ip netns add' failed: " + e.getMessage();
    }
  }

  private void setUp(String id) throws Exception {
    String vt = "egv" + id;       // in task; at most 15 characters
    String vu = "egw" + id;       // in upstream
    must("ip", "netns", "add", task.name);
    must("ip", "netns", "add", upstream.name);
    for (Side s : List.of(task, upstream)) {
      must("ip", "-n", s.name, "link", "set", "lo", "up");
    }
    must("ip", "link", "add", vt, "netns", task.name, "type", "veth", "peer", "name", vu,
        "netns", upstream.name);
    must("ip", "-n", task.name, "addr", "add", TASK_IP + "/30", "dev", vt);
    must("ip", "-n", upstream.name, "addr", "add", UPSTREAM_IP + "/30", "dev", vu);
    // nodad: the addresses are usable at once, instead of after duplicate address detection.
    must("ip", "-n", task.name, "addr", "add", TASK_IP6 + "/64", "dev", vt, "nodad");
    must("ip", "-n", upstream.name, "addr", "add", UPSTREAM_IP6 + "/64", "dev", vu, "nodad");
    must("ip", "-n", task.name, "link", "set", vt, "up");
    must("ip", "-n", upstream.name, "link", "set", vu, "up");
  }

  /** The namespace the app, Egret and the rules live in. */
  public Side task() {
    return task;
  }

  /** The namespace that stands for the internet. */
  public Side upstream() {
    return upstream;
  }

  /**
   * Writes the hosts file and a resolv.conf naming {@code resolver} for both namespaces;
   * {@code ip netns exec} mounts them over /etc/hosts and /etc/resolv.conf for what it runs.
   */
  public void names(String hostsLines, String resolver) throws IOException {
    for (Side s : List.of(task, upstream)) {
      Path dir = Path.of("/etc/netns", s.name);
      Files.createDirectories(dir);
      Files.writeString(dir.resolve("hosts"), "127.0.0.1 localhost\n::1 localhost\n" + hostsLines + "\n");
      Files.writeString(dir.resolve("resolv.conf"), "nameserver " + resolver + "\n");
    }
  }

  @Override
  public void close() {
    for (Side s : List.of(task, upstream)) {
      s.stopAll();
    }
    for (Side s : List.of(task, upstream)) {
      try {
        host(Duration.ofSeconds(10), "ip", "netns", "del", s.name);
      } catch (Exception e) {
        System.err.println("NetNamespace: cannot delete " + s.name + ": " + e.getMessage());
      }
      Path dir = Path.of("/etc/netns", s.name);
      if (Files.exists(dir)) {
        try (Stream<Path> files = Files.walk(dir)) {
          files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
          System.err.println("NetNamespace: cannot remove " + dir + ": " + e.getMessage());
        }
      }
    }
  }

  private static void must(String... command) throws Exception {
    Output o = host(Duration.ofSeconds(10), command);
    if (o.code() != 0) {
      throw new AssertionError(String.join(" ", command) + " failed (" + o.code() + "): " + o.text());
    }
  }

  /** Runs a command in the test's own namespace. */
  static Output host(Duration timeout, String... command) throws Exception {
    return Output.of(new ProcessBuilder(command).redirectErrorStream(true).start(), timeout,
        String.join(" ", command));
  }

  /** What a finished command printed (stdout and stderr together) and its exit code. */
  public record Output(int code, String text) {
    static Output of(Process p, Duration timeout, String what) throws Exception {
      CompletableFuture<String> text = CompletableFuture.supplyAsync(() -> {
        try {
          return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
          return "(output lost: " + e.getMessage() + ")";
        }
      });
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        p.destroyForcibly();
        throw new AssertionError(what + " did not finish within " + timeout);
      }
      return new Output(p.exitValue(), text.get(5, TimeUnit.SECONDS));
    }
  }

  /** One namespace: runs commands inside it, as root or as another uid. */
  public static final class Side {
    private final String name;
    private final List<Spawned> spawned = new CopyOnWriteArrayList<>();

    Side(String name) {
      this.name = name;
    }

    public String name() {
      return name;
    }

    private List<String> inside(Integer uid, List<String> command) {
      List<String> c = new ArrayList<>(List.of("ip", "netns", "exec", name));
      if (uid != null) {
        c.addAll(List.of("setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups"));
      }
      c.addAll(command);
      return c;
    }

    /** Runs a command as root inside; waits for it. */
    public Output run(Duration timeout, List<String> command) throws Exception {
      return Output.of(new ProcessBuilder(inside(null, command)).redirectErrorStream(true).start(),
          timeout, String.join(" ", command));
    }

    /** Runs a command as {@code uid} (and gid) inside; waits for it. */
    public Output runAs(int uid, Duration timeout, List<String> command) throws Exception {
      return Output.of(new ProcessBuilder(inside(uid, command)).redirectErrorStream(true).start(),
          timeout, "uid " + uid + ": " + String.join(" ", command));
    }

    /** Runs a command as root inside, feeding it {@code stdin}; waits for it. */
    public Output run(Duration timeout, String stdin, List<String> command) throws Exception {
      Process p = new ProcessBuilder(inside(null, command)).redirectErrorStream(true).start();
      p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
      p.getOutputStream().close();
      return Output.of(p, timeout, String.join(" ", command));
    }

    /** Starts a long-running process as root inside; {@link NetNamespace#close} stops it. */
    public Spawned start(List<String> command) throws IOException {
      return track(new Spawned(new ProcessBuilder(inside(null, command)).redirectErrorStream(true).start()));
    }

    /** Starts a long-running process as {@code uid} inside. */
    public Spawned startAs(int uid, List<String> command) throws IOException {
      return track(new Spawned(new ProcessBuilder(inside(uid, command)).redirectErrorStream(true).start()));
    }

    private Spawned track(Spawned s) {
      spawned.add(s);
      return s;
    }

    void stopAll() {
      for (Spawned s : spawned) {
        s.stop();
      }
    }
  }

  /** A process running inside a namespace, with its output kept for awaiting and asserting. */
  public static final class Spawned {
    private final Process process;
    private final List<String> lines = new CopyOnWriteArrayList<>();
    /** Set by the reader thread when the output ends; read under this object's lock. */
    private boolean ended;

    Spawned(Process process) {
      this.process = process;
      Thread t = new Thread(() -> {
        try (BufferedReader r = new BufferedReader(
            new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
          String line;
          while ((line = r.readLine()) != null) {
            synchronized (this) {
              lines.add(line);
              notifyAll();
            }
          }
        } catch (IOException e) {
          // ended; what it printed is kept
        } finally {
          synchronized (this) {
            ended = true;
            notifyAll();
          }
        }
      }, "netns-output");
      t.setDaemon(true);
      t.start();
    }

    /** Waits for a line of output that matches; fails with the output so far at the deadline. */
    public synchronized String await(Predicate<String> match, Duration timeout)
        throws InterruptedException {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (true) {
        for (String l : lines) {
          if (match.test(l)) {
            return l;
          }
        }
        long left = deadline - System.nanoTime();
        if (left <= 0 || ended) {
          throw new AssertionError("no matching line within " + timeout
              + (ended ? " (the process ended its output)" : "") + ": " + lines);
        }
        TimeUnit.NANOSECONDS.timedWait(this, left);
      }
    }

    public List<String> lines() {
      return List.copyOf(lines);
    }

    public boolean alive() {
      return process.isAlive();
    }

    void stop() {
      // ip netns exec hands the signal on: it execs the command, so this is the process itself.
      process.descendants().forEach(ProcessHandle::destroy);
      process.destroy();
      try {
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
          process.descendants().forEach(ProcessHandle::destroyForcibly);
          process.destroyForcibly();
          process.waitFor(5, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
