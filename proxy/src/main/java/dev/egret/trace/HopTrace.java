package dev.egret.trace;

import dev.egret.telemetry.Hop;
import java.util.function.BiConsumer;
import java.util.function.Consumer;

/**
 * The trace of one hop: its SERVER span, and on the upgrade path the CLIENT span of the upstream
 * call. Exists only while tracing is on ({@link Tracing#hop} gives null otherwise). Confined to
 * the event loop of the hop's client connection, like the exchange that holds it.
 */
public interface HopTrace {

  /** The upstream call starts (before connecting): opens the CLIENT span. */
  void upstreamStarted();

  /**
   * Rewrites the trace headers of the request Egret writes upstream, after the client's headers
   * were copied: {@code passthrough} leaves them; {@code propagate} sends the CLIENT span as the
   * parent; {@code restart} sends a new trace. {@code tracestate} survives only passthrough.
   */
  void upstreamHeaders(BiConsumer<String, String> set, Consumer<String> remove);

  /** The hop ended: its attributes from the finished {@code hop}, then both spans end. */
  void end(Hop hop, dev.egret.policy.Target target, java.net.InetSocketAddress upstream);
}
