package dev.egret.lambda;

import dev.egret.Run;
import dev.egret.Running;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigError;
import dev.egret.config.ConfigException;
import dev.egret.config.EgretConfig;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code egret lambda}: Egret as a Lambda external extension. The order is Lambda's contract:
 *
 * <ol>
 *   <li>register with the Extensions API for {@code SHUTDOWN} (sent first; it completes while
 *       the next step runs, and its identifier is what a bad config is reported with);
 *   <li>load the config and start serving through {@link Run#start}; a bad config goes to
 *       {@code init/error} as {@code Extension.ConfigInvalid} with the {@code FILE:LINE:COLUMN}
 *       lines, a failed start as {@code Extension.StartFailed}, then a non-zero exit;
 *   <li>only then ask for {@code event/next}: Lambda starts the function's runtime once every
 *       extension did, so the proxy is listening before the function's first call;
 *   <li>on {@code SHUTDOWN}, drain through {@link Running#drain} (the same drain as SIGTERM)
 *       within the event's {@code deadlineMs}, write the last EMF lines, exit 0.
 * </ol>
 *
 * <p>Nothing blocks an event loop: the API calls are Vert.x futures on a Vert.x of one event
 * loop kept apart from the proxy's, so the proxy's drain cannot cut the API connection, and the
 * blocking steps (start, close) run on the calling thread or a thread of their own.
 */
public final class Extension {
  /** Time kept back from {@code deadlineMs} for the last metrics and the access log's flush. */
  static final Duration CLOSE_RESERVE = Duration.ofMillis(300);
  /** How long an INVOKE may wait for the spans of earlier invocations to be exported. */
  static final Duration INVOKE_FLUSH_WITHIN = Duration.ofMillis(500);
  /** CloudWatch's standard resolution: one EMF line per series per minute at most. */
  static final Duration DEFAULT_METRICS_INTERVAL = Duration.ofSeconds(60);

  private final Vertx vertx;
  private final ExtensionsApi api;
  private final PrintStream out;
  private final PrintStream err;
  private final Duration metricsInterval;
  private Running running;
  /** The config traces: registered for INVOKE events too. */
  private boolean tracing;
  private EmfMetrics emf;
  private long emfTimer = -1;

  private Extension(Vertx vertx, ExtensionsApi api, PrintStream out, PrintStream err,
      Duration metricsInterval) {
    this.vertx = vertx;
    this.api = api;
    this.out = out;
    this.err = err;
    this.metricsInterval = metricsInterval;
  }

  /**
   * The command: {@code egret lambda [--config FILE] [--name NAME]}, with {@code $EGRET_CONFIG}
   * and {@code AWS_LAMBDA_RUNTIME_API} from the environment. Returns -1 while it serves (it exits
   * the JVM itself after {@code SHUTDOWN}), or the exit code of a failed start.
   */
  public static int main(Deque<String> args, PrintStream out, PrintStream err) {
    return main(args, System.getenv(), out, err);
  }

  static int main(Deque<String> args, Map<String, String> env, PrintStream out, PrintStream err) {
    String config = env.get("EGRET_CONFIG");
    String name = env.getOrDefault("EGRET_EXTENSION_NAME", "egret");
    Deque<String> a = new ArrayDeque<>(args);
    while (!a.isEmpty()) {
      String arg = a.pop();
      if ((arg.equals("--config") || arg.equals("--name")) && !a.isEmpty()) {
        if (arg.equals("--config")) {
          config = a.pop();
        } else {
          name = a.pop();
        }
      } else {
        err.println("egret: lambda: unexpected argument '" + arg + "'"
            + " (usage: egret lambda [--config FILE] [--name NAME])");
        return 2;
      }
    }
    String runtimeApi = env.get("AWS_LAMBDA_RUNTIME_API");
    if (runtimeApi == null || runtimeApi.isBlank()) {
      err.println("egret: lambda: AWS_LAMBDA_RUNTIME_API is not set; "
          + "egret lambda runs inside a Lambda execution environment");
      return 2;
    }
    Duration interval;
    try {
      interval = interval(env.get("EGRET_METRICS_INTERVAL"));
    } catch (IllegalArgumentException e) {
      err.println("egret: lambda: " + e.getMessage());
      return 2;
    }
    // One event loop is plenty for a client that makes one call at a time.
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1).setWorkerPoolSize(1)
        .setInternalBlockingPoolSize(1));
    ExtensionsApi api;
    try {
      api = new ExtensionsApi(vertx, runtimeApi);
    } catch (IllegalArgumentException e) {
      err.println("egret: lambda: " + e.getMessage());
      vertx.close();
      return 2;
    }
    return new Extension(vertx, api, out, err, interval).start(name, config);
  }

  private int start(String name, String config) {
    // The config is compiled first: whether Egret registers for INVOKE events (tracing needs
    // each invocation's trace header) depends on it. Registration then goes out and completes
    // while the ports bind on this thread, so the cold start is the longer of the two, not their
    // sum. The first event/next still waits for both.
    ConfigException badConfig = null;
    EgretConfig compiled = null;
    if (config != null && !config.isBlank()) {
      try {
        compiled = ConfigCompiler.load(Path.of(config));
      } catch (ConfigException e) {
        badConfig = e;
      }
    }
    tracing = compiled != null && compiled.tracing().on();
    Future<String> registration = api.register(name, tracing);
    Run.StartFailure failedStart = null;
    if (compiled != null) {
      try {
        running = Run.start(compiled, err);
      } catch (Run.StartFailure e) {
        failedStart = e;
      }
    }
    String id;
    try {
      // The call fails by itself after REGISTER_WITHIN; the second of slack only covers a clock.
      id = registration.await(ExtensionsApi.REGISTER_WITHIN.toMillis() + 1000, TimeUnit.MILLISECONDS);
    } catch (Exception e) {
      err.println("egret: lambda: cannot register with the Extensions API at " + api.host()
          + ": " + e.getMessage() + "; exiting 1");
      if (running != null) {
        try {
          running.drain(Duration.ZERO).toCompletableFuture().get(2, TimeUnit.SECONDS);
        } catch (Exception drain) {
          err.println("egret: lambda: the drain did not finish in time: " + drain);
        }
        running.close();
      }
      vertx.close();
      return 1;
    }
    if (config == null || config.isBlank()) {
      err.println("egret: lambda: EGRET_CONFIG is not set");
      return failInit(id, "Extension.ConfigInvalid", 2, List.of(
          "EGRET_CONFIG is not set: point it at the allowlist file, e.g. /var/task/egret.yaml"));
    }
    if (badConfig != null) {
      List<String> lines = new ArrayList<>();
      for (ConfigError error : badConfig.errors()) {
        lines.add(error.toString());
        err.println(error);
      }
      return failInit(id, "Extension.ConfigInvalid", 2, lines);
    }
    if (failedStart != null) {
      err.println("egret: cannot start: " + failedStart.getMessage());
      return failInit(id, "Extension.StartFailed", 1,
          List.of("egret cannot start: " + failedStart.getMessage()));
    }
    emf = new EmfMetrics(running.registry());
    emfTimer = vertx.setPeriodic(metricsInterval.toMillis(),
        t -> vertx.executeBlocking(() -> writeMetrics(false), false));
    err.println("egret: lambda extension '" + name + "' registered, ready for events");
    next(id);
    return -1;
  }

  private int failInit(String id, String type, int code, List<String> lines) {
    try {
      api.initError(id, type, lines).await(ExtensionsApi.REPORT_WITHIN.toMillis() + 1000,
          TimeUnit.MILLISECONDS);
    } catch (Exception e) {
      err.println("egret: lambda: init/error was not accepted: " + e.getMessage());
    }
    vertx.close();
    return code;
  }

  private void next(String id) {
    api.next(id).onComplete(ar -> {
      if (ar.failed()) {
        // Lambda's own agent went away or broke the protocol: stop, say why, and let Lambda
        // restart the environment.
        err.println("egret: lambda: event/next failed: " + ar.cause().getMessage());
        // exit/error has a deadline of its own: whatever it does, the exit follows.
        api.exitError(id, "Extension.EventLoopFailed", List.of(String.valueOf(ar.cause().getMessage())))
            .onComplete(x -> {
              if (x.failed()) {
                err.println("egret: lambda: exit/error was not accepted: " + x.cause().getMessage());
              }
              err.println("egret: lambda: draining and exiting 1, for Lambda to start a new "
                  + "environment");
              stop(System.currentTimeMillis() + 1000, 1);
            });
      } else if (ar.result().isShutdown()) {
        err.println("egret: lambda: SHUTDOWN (" + ar.result().shutdownReason() + "), draining");
        stop(ar.result().deadlineMs(), 0);
      } else if (tracing) {
        invoked(id, ar.result());
      } else {
        next(id);
      }
    });
  }

  /**
   * An INVOKE (registered for only while tracing is on): its trace header parents the hops that
   * bring none, and the spans of the invocations before it are exported now, while the
   * environment is thawed, bounded so that the extension never holds the invocation up for long.
   */
  private void invoked(String id, Event event) {
    running.invocation(event.traceHeader());
    vertx.executeBlocking(() -> running.flushTraces(INVOKE_FLUSH_WITHIN), false)
        .onComplete(ar -> next(id));
  }

  /** Drains, writes the last metrics, exits with {@code code}; all before {@code deadlineMs}. */
  private void stop(long deadlineMs, int code) {
    if (emfTimer >= 0) {
      vertx.cancelTimer(emfTimer);
    }
    Duration budget = Duration.ofMillis(Math.max(0,
        deadlineMs - System.currentTimeMillis() - CLOSE_RESERVE.toMillis()));
    // A thread of its own: the drain completes on the proxy's event loop, which close() stops.
    Thread stopper = new Thread(() -> {
      try {
        running.drain(budget).toCompletableFuture()
            .get(budget.toMillis() + CLOSE_RESERVE.toMillis() / 2, TimeUnit.MILLISECONDS);
      } catch (Exception e) {
        err.println("egret: lambda: the drain did not finish in time: " + e);
      }
      Thread closer = new Thread(() -> {
        writeMetrics(true);
        running.close();
      }, "egret-lambda-close");
      closer.start();
      try {
        closer.join(Math.max(1, deadlineMs - System.currentTimeMillis() - 50));
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
      }
      out.flush();
      err.flush();
      // halt, as SIGTERM does: the work is done and no shutdown hook may hold the exit past the
      // deadline (Lambda would SIGKILL us and log a failed shutdown).
      Runtime.getRuntime().halt(code);
    }, "egret-lambda-stop");
    stopper.start();
  }

  /** Writes the EMF lines; one write per line, so they never interleave with the access log. */
  private Void writeMetrics(boolean all) {
    for (String line : emf.lines(all)) {
      byte[] bytes = (line + "\n").getBytes(StandardCharsets.UTF_8);
      out.write(bytes, 0, bytes.length);
    }
    out.flush();
    return null;
  }

  static Duration interval(String value) {
    if (value == null || value.isBlank()) {
      return DEFAULT_METRICS_INTERVAL;
    }
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d{1,6})(ms|s|m)").matcher(value.trim());
    if (!m.matches()) {
      throw new IllegalArgumentException("EGRET_METRICS_INTERVAL must be a duration such as 60s, 500ms or 1m, got '" + value + "'");
    }
    long n = Long.parseLong(m.group(1));
    Duration d = switch (m.group(2)) {
      case "ms" -> Duration.ofMillis(n);
      case "s" -> Duration.ofSeconds(n);
      default -> Duration.ofMinutes(n);
    };
    if (d.toMillis() < 100) {
      throw new IllegalArgumentException("EGRET_METRICS_INTERVAL must be at least 100ms, got '" + value + "'");
    }
    return d;
  }
}
