package dev.egret;

import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.concurrent.CompletionStage;

/**
 * A started Egret, as {@link Run#start} returns it: the one seam through which both SIGTERM
 * ({@code egret run}) and Lambda's {@code SHUTDOWN} event ({@code egret lambda}) stop it.
 *
 * <pre>{@code
 * Running egret = Run.start(configPath, System.err);      // serving when this returns
 * egret.drain(Duration.ofSeconds(25)).toCompletableFuture().join();
 * egret.close();                                          // then exit 0
 * }</pre>
 */
public interface Running {
  /** The bound proxy port. */
  int proxyPort();

  /** The bound admin port. */
  int adminPort();

  /** The registry the admin port's {@code /metrics} shows; still readable after {@link #drain}. */
  MeterRegistry registry();

  /**
   * Stops serving as docs/operations.md, "Drain and shutdown", says, finishing within {@code deadline}: readiness
   * goes to 503 at once, then the listeners stop and what is in flight ends. Completes when done;
   * never completes exceptionally. Call it once, from any thread.
   */
  CompletionStage<Void> drain(Duration deadline);

  /**
   * Lambda: the current invocation's {@code X-Amzn-Trace-Id}, the parent of hops that bring no
   * trace header of their own (null: none). Does nothing while tracing is off.
   */
  default void invocation(String xrayTraceHeader) {}

  /** Exports the spans queued so far within {@code deadline}; true when all went. Blocks. */
  default boolean flushTraces(Duration deadline) {
    return true;
  }

  /** Releases what is left (admin port, access log, Vert.x, meters); blocks, bounded; after drain. */
  void close();
}
