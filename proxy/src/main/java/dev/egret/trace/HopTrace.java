package dev.egret.trace;

import dev.egret.telemetry.Hop;
import java.util.function.BiConsumer;

/**
 * The trace of one hop: its SERVER span, and on the upgrade path the CLIENT span of the upstream
 * call. Exists only while tracing is on ({@link Tracing#hop} gives null otherwise). Confined to
 * the event loop of the hop's downstream connection, like the exchange that holds it.
 */
public interface HopTrace {

  /** The upstream call starts (before connecting): opens the CLIENT span. */
  void upstreamStarted();

  /**
   * True when the request Egret writes upstream must not carry the client's header {@code name}
   * as it came, because the trace replaces or removes it: never under {@code passthrough};
   * {@code traceparent}, {@code tracestate} (and with {@code xray}, {@code X-Amzn-Trace-Id})
   * under {@code propagate}; those three under {@code restart}. Case-insensitive.
   */
  boolean rewrites(String name);

  /**
   * Writes the trace headers of the upstream request: under {@code propagate} the CLIENT span
   * as the parent, under {@code restart} a new trace; nothing under {@code passthrough}.
   */
  void addHeaders(BiConsumer<String, String> add);

  /** The hop ended: its attributes from the finished {@code hop}, then both spans end. */
  void end(Hop hop, dev.egret.policy.Target target, java.net.InetSocketAddress upstream);
}
