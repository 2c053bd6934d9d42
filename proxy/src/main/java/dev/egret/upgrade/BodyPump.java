package dev.egret.upgrade;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.streams.ReadStream;
import io.vertx.core.streams.WriteStream;

/**
 * Moves one message body from a read stream to a write stream with back-pressure, and when it
 * fails says which side broke, so the hop can tell "the client went away" from "the upstream
 * broke off":
 *
 * <pre>
 * BodyPump.pump(upstreamResponse, clientResponse).onFailure(e -> {
 *   BodyPump.Broken broken = (BodyPump.Broken) e;   // broken.side(): SOURCE or DESTINATION
 * });
 * </pre>
 *
 * <p>Unlike Vert.x's {@code pipe()}, a failure never ends the destination (a chunked body would
 * look whole) and is noticed even while the pump is paused waiting for a drain, because both
 * streams' exception handlers report it. After a failure the caller resets what is left. Both
 * streams must belong to the caller's event loop; nothing here blocks.
 */
final class BodyPump {
  enum Side { SOURCE, DESTINATION }

  /** How a pump failed: which side, and why. */
  static final class Broken extends RuntimeException {
    private final Side side;

    Broken(Side side, Throwable cause) {
      super(side + " broke: " + cause.getMessage(), cause, false, false);
      this.side = side;
    }

    Side side() {
      return side;
    }
  }

  private final ReadStream<Buffer> from;
  private final WriteStream<Buffer> to;
  private final Promise<Void> result = Promise.promise();

  private BodyPump(ReadStream<Buffer> from, WriteStream<Buffer> to) {
    this.from = from;
    this.to = to;
  }

  /**
   * Starts pumping (resuming {@code from}); completes once {@code to} has ended, or fails with
   * a {@link Broken}.
   */
  static Future<Void> pump(ReadStream<Buffer> from, WriteStream<Buffer> to) {
    BodyPump pump = new BodyPump(from, to);
    pump.start();
    return pump.result.future();
  }

  private void start() {
    from.exceptionHandler(e -> fail(Side.SOURCE, e));
    to.exceptionHandler(e -> fail(Side.DESTINATION, e));
    from.endHandler(v -> to.end().onComplete(ar -> {
      if (ar.succeeded()) {
        finish();
        result.tryComplete();
      } else {
        fail(Side.DESTINATION, ar.cause());
      }
    }));
    from.handler(chunk -> {
      try {
        to.write(chunk).onFailure(e -> fail(Side.DESTINATION, e));
      } catch (IllegalStateException e) {
        fail(Side.DESTINATION, e); // written to after it closed
        return;
      }
      if (to.writeQueueFull()) {
        from.pause();
        to.drainHandler(v -> from.resume());
      }
    });
    from.resume();
  }

  private void fail(Side side, Throwable cause) {
    if (result.future().isComplete()) {
      return;
    }
    finish();
    if (side == Side.DESTINATION) {
      // Read the rest of the source into nothing, as a proxy must when its receiver is gone
      // but the sender (say, a client still uploading) should get its answer; the caller
      // resets the source instead where that is wrong.
      quietly(() -> from.handler(null));
      quietly(from::resume);
    }
    result.tryFail(new Broken(side, cause));
  }

  private void finish() {
    quietly(() -> to.drainHandler(null));
    quietly(() -> to.exceptionHandler(null));
    quietly(() -> from.exceptionHandler(null));
    quietly(() -> from.endHandler(null));
  }

  /** Clearing handlers on a stream that already ended may throw; it no longer matters then. */
  private static void quietly(Runnable r) {
    try {
      r.run();
    } catch (RuntimeException ignored) {
      // The stream is done.
    }
  }
}
