package dev.egret;

import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigException;
import dev.egret.config.EgretConfig;
import dev.egret.admin.AdminServer;
import dev.egret.telemetry.AccessLog;
import dev.egret.telemetry.Metrics;
import dev.egret.telemetry.Observability;
import io.vertx.core.VertxOptions;
import java.net.InetSocketAddress;
import io.vertx.core.Vertx;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** {@code egret run}: load the config (refusing to start on any error), then serve until stopped. */
final class Run {
  /** Set by the first SIGTERM or SIGINT: one drain per process. */
  private static final java.util.concurrent.atomic.AtomicBoolean STOPPING =
      new java.util.concurrent.atomic.AtomicBoolean();

  private Run() {}

  static int serve(Path configPath, PrintStream err) throws ConfigException {
    if (!Footprint.fits(err)) {
      return 1; // heap + direct memory + the JVM's own needs exceed the memory limit
    }
    EgretConfig config = ConfigCompiler.load(configPath);
    Metrics metrics = new Metrics();
    // Netty's native epoll transport where it loads (Linux x86_64 and aarch64), else NIO.
    Vertx vertx = metrics.newVertx(new VertxOptions().setPreferNativeTransport(true));
    if (!vertx.isNativeTransportEnabled()) {
      err.println("egret: native epoll transport unavailable, using Java NIO: "
          + vertx.unavailableNativeTransportCause());
    }
    Observability telemetry = new Observability(metrics.registry(), AccessLog.toStdout());
    EgretServer server = new EgretServer(vertx, config, telemetry);
    AdminServer admin = new AdminServer(vertx, config.listen().admin().host(),
        config.listen().admin().port(), telemetry::scrape);
    Runnable drain = () -> {
      // Readiness goes first so the orchestrator stops sending work; the admin port stays up.
      admin.markDraining();
      EgretConfig.Shutdown shutdown = server.config().shutdown();
      try {
        EgretServer.DrainReport report = server.drain(shutdown.grace(), shutdown.deadline())
            .await(shutdown.deadline().toMillis() + 10_000, TimeUnit.MILLISECONDS);
        err.println("egret: drained in " + report.drainedMillis() + " ms (accepted for "
            + report.graceMillis() + " ms; " + (report.cutCount() == 0
                ? "nothing cut" : report.cutCount() + " cut at the deadline " + report.cut())
            + ")");
        admin.close().await(5, TimeUnit.SECONDS);
        telemetry.close();
        vertx.close().await(10, TimeUnit.SECONDS);
        metrics.close();
      } catch (Exception e) {
        err.println("egret: shutdown was not clean: " + e.getMessage());
      }
    };
    // SIGTERM is the orchestrator's normal stop: drain and exit 0, because ECS and Step
    // Functions read a non-zero exit of any container as a failed task.
    stopOn("TERM", drain, err);
    stopOn("INT", drain, err);
    // Handlers go in before Egret says it is ready, so no SIGTERM finds the JVM's default.
    try {
      int adminPort = admin.start().await(30, TimeUnit.SECONDS);
      server.alsoOwn(new InetSocketAddress(config.listen().admin().host(), adminPort));
      int port = server.start().await(30, TimeUnit.SECONDS);
      admin.markReady();
      err.println("egret: proxy on " + config.listen().proxy().host() + ":" + port
          + ", admin on " + config.listen().admin().host() + ":" + adminPort
          + ", config " + config.file() + " (sha256 " + config.sha256() + ")");
    } catch (Exception e) {
      err.println("egret: cannot start: " + e.getMessage());
      vertx.close();
      return 1;
    }
    server.watch(2000);
    reloadOnHangup(server, err);
    return -1;
  }

  private static void stopOn(String signal, Runnable drain, PrintStream err) {
    try {
      sun.misc.Signal.handle(new sun.misc.Signal(signal), s -> {
        if (!STOPPING.compareAndSet(false, true)) {
          err.println("egret: SIG" + signal + " while draining; the drain goes on");
          return;
        }
        err.println("egret: SIG" + signal + ", draining");
        Thread stopper = new Thread(() -> {
          drain.run();
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
