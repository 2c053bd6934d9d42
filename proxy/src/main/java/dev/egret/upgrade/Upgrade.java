package dev.egret.upgrade;

import dev.egret.runtime.VertxRuntime;
import dev.egret.upstream.UpstreamClient;
import dev.egret.exchange.Downstream;
import dev.egret.exchange.Exchange;
import dev.egret.telemetry.Telemetry;
import io.netty.channel.EventLoop;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;

/**
 * Re-originates an admitted {@code http://} request (absolute-form, inside a tunnel, or from a
 * transparent listener) or absolute-form {@code https://} request over verified TLS to the
 * checked address, on a pooled keep-alive connection of the downstream connection's own event loop
 * ({@link UpstreamClient}), and streams the answer back ({@link UpstreamCall}). Bodies flow both
 * ways with back-pressure; nothing is buffered whole.
 *
 * <p>The returned future fails with a {@link dev.egret.failure.ProxyFailure} when the hop fails;
 * the downstream connection turns it into the client's answer (or a close, once the response has
 * started).
 */
public final class Upgrade {
  private final Telemetry telemetry;
  private final String via;
  /** {@link #via} as the bytes a response head gets, made once. */
  private final byte[] viaBytes;
  /** Go's net/http stops at 5; a long WebDAV call may send a 102 every few seconds. */
  static final int MAX_INTERIM = 32;

  /** @param via Egret's own {@code Via} entry, e.g. {@code 1.1 egret-3f9a} */
  public Upgrade(Vertx vertx, Telemetry telemetry, String via) {
    this.telemetry = telemetry;
    this.via = via;
    this.viaBytes = ResponseWriter.bytes(via);
  }

  /**
   * Forwards the exchange's request and relays the response to {@code down}. Called on the
   * downstream connection's event loop (its Vert.x context), where the whole hop then runs.
   */
  public Future<Void> forward(Exchange ex, Downstream down) {
    EventLoop loop = VertxRuntime.currentEventLoop();
    if (loop == null || !loop.inEventLoop()) {
      return Future.failedFuture(new IllegalStateException(
          "upstream requests are made on the client connection's event loop"));
    }
    return new UpstreamCall(this, ex, down, loop).start();
  }

  Telemetry telemetry() {
    return telemetry;
  }

  String via() {
    return via;
  }

  byte[] viaBytes() {
    return viaBytes;
  }
}
