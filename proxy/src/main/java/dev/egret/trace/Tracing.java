package dev.egret.trace;

import dev.egret.config.EgretConfig;
import dev.egret.telemetry.Telemetry;
import java.time.Duration;
import java.util.function.Function;

/**
 * Makes the trace of each hop. {@link #start} gives {@link #OFF} for {@code exporter: none}:
 * then {@link #hop} is null, no OpenTelemetry class is loaded and no header is touched.
 *
 * <pre>{@code
 * Tracing tracing = Tracing.start(config.tracing(), telemetry);
 * HopTrace trace = tracing.hop("GET", head::header);   // null when off
 * ...
 * tracing.close();                                       // flushes what is queued
 * }</pre>
 */
public interface Tracing extends AutoCloseable {

  /**
   * Starts the SERVER span of a hop that arrived now, parented by the request's trace header
   * ({@code headers} looks one up by name, null if absent), or null when tracing is off.
   */
  HopTrace hop(String method, Function<String, String> headers);

  /**
   * Lambda: the current invocation's {@code X-Amzn-Trace-Id}, the parent of hops that bring none
   * of their own until the next invocation (null: none).
   */
  default void invocation(String xrayHeader) {}

  /** Exports what is queued, waiting at most {@code deadline}; true when it all went. */
  default boolean flush(Duration deadline) {
    return true;
  }

  /** Flushes and stops the exporter; later spans are dropped. */
  @Override
  default void close() {}

  /** False only for {@link #OFF}: callers skip even building the header lookup. */
  default boolean on() {
    return true;
  }

  Tracing OFF = new Tracing() {
    @Override
    public HopTrace hop(String method, Function<String, String> headers) {
      return null;
    }

    @Override
    public boolean on() {
      return false;
    }
  };

  /** The tracing {@code settings} ask for; {@link #OFF} unless the exporter is OTLP. */
  static Tracing start(EgretConfig.Tracing settings, Telemetry telemetry) {
    return settings.on() ? new OtlpTracing(settings, telemetry) : OFF;
  }
}
