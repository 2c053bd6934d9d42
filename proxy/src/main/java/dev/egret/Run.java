package dev.egret;

import dev.egret.admin.AdminServer;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigException;
import dev.egret.config.EgretConfig;
import dev.egret.listener.ProxyListener;
import dev.egret.telemetry.AccessLog;
import dev.egret.telemetry.Fatal;
import dev.egret.telemetry.Metrics;
import dev.egret.telemetry.Observability;
import dev.egret.tls.TlsEngine;
import dev.egret.tls.TlsProfile;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.file.FileSystemOptions;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/** {@code egret run}: load the config (refusing to start on any error), then serve until stopped. */
public final class Run {
  /** Set by the first SIGTERM or SIGINT: one drain per process. */
  private static final AtomicBoolean STOPPING = new AtomicBoolean();

  private Run() {}

  public static int serve(Path configPath, PrintStream err) throws ConfigException {
    Early early = Early.begin();
    if (!Footprint.fits(err)) {
      early.abandon();
      return 1; // heap + direct memory + the JVM's own needs exceed the memory limit
    }
    Fatal.arm();
    // The handlers go in before Egret says it is ready, so no SIGTERM finds the JVM's default;
    // one that comes during start-up drains as soon as the start has finished.
    CompletableFuture<Running> started = new CompletableFuture<>();
    stopOn("TERM", started, err);
    stopOn("INT", started, err);
    try {
      started.complete(start(configPath, early, err));
    } catch (StartFailure e) {
      err.println("egret: cannot start: " + e.getMessage());
      return 1;
    }
    return -1;
  }

  /** Why {@link #start} could not bind or start (the config itself was fine). */
  public static final class StartFailure extends Exception {
    StartFailure(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /**
   * Loads the config (refusing to start on any error) and starts serving; returns once the proxy
   * and admin ports are bound and ready. Blocks: call it from a plain thread, never an event loop.
   */
  public static Running start(Path configPath, PrintStream err)
      throws ConfigException, StartFailure {
    return start(configPath, Early.begin(), err);
  }

  private static Running start(Path configPath, Early early, PrintStream err)
      throws ConfigException, StartFailure {
    EgretConfig config;
    try {
      config = ConfigCompiler.load(configPath);
    } catch (ConfigException | RuntimeException e) {
      early.abandon();
      throw e;
    }
    return start(config, early, err);
  }

  /** Starts serving a config already compiled (the Lambda extension reads it before it registers). */
  public static Running start(EgretConfig config, PrintStream err) throws StartFailure {
    return start(config, Early.begin(), err);
  }

  /**
   * The part of start-up that needs no config, begun on a thread of its own so that it runs on a
   * second CPU while the caller checks the memory limit and compiles the config: arming {@link
   * Fatal}, the metrics registry and Vert.x (together 40% of the main thread's CPU to ready when
   * they ran one after the other). Usage: {@code Early early = Early.begin();} first, then {@link
   * Run#start(EgretConfig, Early, PrintStream)}; or {@link #abandon} when start-up stops before it.
   */
  public static final class Early {
    private record Ground(Metrics metrics, Vertx vertx) {}

    private final CompletableFuture<Ground> ground = new CompletableFuture<>();

    private Early() {}

    public static Early begin() {
      Early early = new Early();
      Thread t = new Thread(() -> {
        Metrics metrics = null;
        try {
          metrics = Metrics.withJvmGaugesLater();
          // Before Vert.x, as before: its and Netty's log records pass Fatal's handler too.
          // Usually done by then on the calling thread (Run.serve), next to the memory check,
          // which reads the same management beans.
          Fatal.arm();
          early.ground.complete(new Ground(metrics, metrics.newVertx(vertxOptions())));
        } catch (Throwable e) {
          if (metrics != null) {
            metrics.close();
          }
          early.ground.completeExceptionally(e);
        }
      }, "egret-start");
      t.setDaemon(true);
      t.start();
      return early;
    }

    /** Waits for the work; rethrows what it threw. */
    private Ground await() {
      try {
        return ground.join();
      } catch (java.util.concurrent.CompletionException e) {
        if (e.getCause() instanceof RuntimeException r) {
          throw r;
        }
        if (e.getCause() instanceof Error r) {
          throw r;
        }
        throw e;
      }
    }

    /** Closes what the work built, once it is built; for a start-up that stopped before it. */
    public void abandon() {
      ground.thenAccept(g -> g.vertx().close().onComplete(ar -> g.metrics().close()));
    }
  }

  /**
   * Netty's native epoll transport where it loads (Linux x86_64 and aarch64), else NIO.
   * One event loop per CPU, as nginx's worker_processes auto (Vert.x's default is two), and
   * small blocking pools: they serve only /metrics scrapes, operator notices and Vert.x's own
   * file work, and each idle thread there is resident memory in a 128 MiB sidecar (the soak
   * saw both pools grow to their default 20). No class-path file resolving: Egret never reads a
   * file through Vert.x, and with it Vert.x makes a cache folder under /tmp at every start.
   */
  private static VertxOptions vertxOptions() {
    return new VertxOptions().setPreferNativeTransport(true)
        .setEventLoopPoolSize(Math.max(1, Runtime.getRuntime().availableProcessors()))
        .setWorkerPoolSize(4)
        .setInternalBlockingPoolSize(4)
        .setFileSystemOptions(new FileSystemOptions().setClassPathResolvingEnabled(false));
  }

  /** Starts serving a compiled config with the Vert.x and registry {@code early} builds. */
  public static Running start(EgretConfig config, Early early, PrintStream err)
      throws StartFailure {
    Fatal.arm();
    descriptorHeadroom(config, err);
    Early.Ground ground = early.await();
    Metrics metrics = ground.metrics();
    Vertx vertx = ground.vertx();
    if (!vertx.isNativeTransportEnabled()) {
      err.println("egret: native epoll transport unavailable, using Java NIO: "
          + vertx.unavailableNativeTransportCause());
    }
    if (TlsEngine.asked()) {
      err.println("egret: upstream TLS by " + TlsEngine.describe()); // refuses a wrong one now
    }
    Observability telemetry = new Observability(metrics.registry(), AccessLog.toStdout());
    EgretServer server = new EgretServer(vertx, config, telemetry);
    AdminServer admin = new AdminServer(vertx, config.listen().admin().host(),
        config.listen().admin().port(), () -> {
          // The JVM's and the process's gauges are bound by the first scrape, on its worker
          // thread: nothing before it reads them, and after ready that CPU would compete with
          // the first probe's answer and the first request (Metrics.withJvmGaugesLater).
          metrics.bindJvmGauges();
          return telemetry.scrape();
        },
        () -> AdminServer.Limits.of(server.config()), telemetry);
    int adminPort;
    int port;
    try {
      adminPort = admin.start().await(30, TimeUnit.SECONDS);
      server.alsoOwn(new InetSocketAddress(config.listen().admin().host(), adminPort));
      port = server.start().await(30, TimeUnit.SECONDS);
      // Before the ready line and /readyz: a SIGHUP sent as soon as Egret says it serves must
      // find the handler, not the JVM's default, which ends the process.
      server.watch(2000);
      reloadOnHangup(server, err);
      admin.markReady();
      // The TLS engine and the upstream TLS contexts, after the ready line rather than before
      // it: no refused request, tunnel or scrape needs them, and a first upgrade waits for its
      // own (TlsProfile). Half of the main thread's CPU to ready went there.
      Thread tls = new Thread(() -> {
        if (!TlsEngine.asked()) {
          err.println("egret: upstream TLS by " + TlsEngine.describe());
        }
        TlsProfile.prepareAll(config.tlsProfiles());
      }, "egret-tls-prepare");
      tls.setDaemon(true);
      tls.start();
      err.println("egret: proxy on " + config.listen().proxy().host() + ":" + port
          + ", admin on " + config.listen().admin().host() + ":" + adminPort
          + ", config " + config.file() + " (sha256 " + config.sha256() + ")");
    } catch (Exception e) {
      vertx.close();
      throw new StartFailure(String.valueOf(e.getMessage()), e);
    }
    return new Running() {
      @Override
      public int proxyPort() {
        return port;
      }

      @Override
      public int adminPort() {
        return adminPort;
      }

      @Override
      public MeterRegistry registry() {
        return metrics.registry();
      }

      @Override
      public void invocation(String xrayTraceHeader) {
        server.invocation(xrayTraceHeader);
      }

      @Override
      public boolean flushTraces(Duration deadline) {
        return server.flushTraces(deadline);
      }

      @Override
      public CompletionStage<Void> drain(Duration deadline) {
        // Readiness goes first so the orchestrator stops sending work; the admin port stays up.
        admin.markDraining();
        EgretConfig.Shutdown shutdown = server.config().shutdown();
        Duration until = min(shutdown.deadline(), deadline);
        CompletableFuture<Void> done = new CompletableFuture<>();
        server.drain(min(shutdown.grace(), until), until).onComplete(ar -> {
          if (ar.succeeded()) {
            EgretServer.DrainReport r = ar.result();
            err.println("egret: drained in " + r.drainedMillis() + " ms (accepted for "
                + r.graceMillis() + " ms; " + (r.cutCount() == 0
                    ? "nothing cut" : r.cutCount() + " cut at the deadline " + r.cut()) + ")");
          } else {
            err.println("egret: shutdown was not clean: " + ar.cause().getMessage());
          }
          done.complete(null);
        });
        return done;
      }

      @Override
      public void close() {
        try {
          admin.close().await(5, TimeUnit.SECONDS);
          telemetry.close();
          vertx.close().await(10, TimeUnit.SECONDS);
          metrics.close();
        } catch (Exception e) {
          err.println("egret: shutdown was not clean: " + e.getMessage());
        }
      }
    };
  }

  /**
   * Warns when {@code ulimit -n} is below what the caps allow Egret to open: each downstream
   * connection may hold an upstream one, up to {@link ProxyListener#MAX_REFUSING} refused ones may
   * be open while their 503 is written, and the JVM keeps its own files (about 120 at rest). A
   * warning, not a refusal: Lambda's limit is a fixed 1,024, below the default caps, and the caps
   * change on reload. A full table pauses accepting until connections close ({@code AcceptPause}).
   */
  private static void descriptorHeadroom(EgretConfig config, PrintStream err) {
    long limit = Fatal.descriptorLimit();
    long need = 2L * config.limits().maxConnections() + config.limits().maxAdminConnections()
        + ProxyListener.MAX_REFUSING + 256;
    if (limit > 0 && limit < need) {
      err.println("egret: the descriptor limit (ulimit -n) is " + limit + ", below the " + need
          + " that limits.maxConnections (" + config.limits().maxConnections() + ", with an"
          + " upstream connection each), limits.maxAdminConnections ("
          + config.limits().maxAdminConnections() + "), " + ProxyListener.MAX_REFUSING
          + " refused connections and the JVM's own files can take; when the table fills, Egret"
          + " stops accepting new connections until some close. Raise the limit or lower"
          + " limits.maxConnections");
    }
  }

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }

  /**
   * SIGTERM is the orchestrator's normal stop: drain and exit 0, because ECS and Step Functions
   * read a non-zero exit of any container as a failed task. A second signal changes nothing.
   */
  private static void stopOn(String signal, CompletableFuture<Running> started, PrintStream err) {
    try {
      sun.misc.Signal.handle(new sun.misc.Signal(signal), s -> {
        if (!STOPPING.compareAndSet(false, true)) {
          err.println("egret: SIG" + signal + " while draining; the drain goes on");
          return;
        }
        err.println("egret: SIG" + signal + ", draining");
        Thread stopper = new Thread(() -> {
          Running running = started.join();
          // The config's shutdown.deadline bounds it; the argument only ever shortens that.
          running.drain(Duration.ofDays(1)).toCompletableFuture().join();
          running.close();
          Runtime.getRuntime().halt(0);
        }, "egret-stop");
        stopper.start();
      });
    } catch (IllegalArgumentException e) {
      err.println("egret: SIG" + signal + " cannot be handled here");
    }
  }

  /** SIGHUP re-reads the config, as for Squid and nginx. */
  private static void reloadOnHangup(EgretServer server, PrintStream err) {
    try {
      sun.misc.Signal.handle(new sun.misc.Signal("HUP"), signal -> server.reload());
    } catch (IllegalArgumentException e) {
      err.println("egret: SIGHUP is not available here; the config file is still watched");
    }
  }
}
