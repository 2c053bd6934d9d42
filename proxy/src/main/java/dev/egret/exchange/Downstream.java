package dev.egret.exchange;

import io.netty.buffer.ByteBuf;
import java.util.function.Consumer;

/**
 * The downstream side of one request, as the downstream connection offers it to the upgrade stage:
 * the request body to read with back-pressure, and the response to write. Every method runs on
 * the downstream connection's event loop.
 *
 * <pre>{@code
 * down.body(data -> upstream.write(data), () -> upstream.end());   // buffered bytes come first
 * if (!upstreamWritable) down.pauseBody();                          // later: down.resumeBody()
 * down.head(relayedHead); down.data(bytes); down.end();             // the answer
 * }</pre>
 */
public interface Downstream {

  /**
   * Starts delivering the request body: each data buffer (the consumer owns it and must release
   * it), then {@code end} once the body is complete. Data that arrived before this call comes
   * first. A request without a body calls {@code end} at once.
   */
  void body(Consumer<ByteBuf> data, Runnable end);

  /** Stops reading the request body until {@link #resumeBody()}: the upstream is full. */
  void pauseBody();

  void resumeBody();

  /**
   * Writes an interim response (100 Continue, 103 Early Hints), whole: its bytes, ending in the
   * empty line; the final one follows. The connection releases {@code head}.
   */
  void interim(ByteBuf head);

  /**
   * Writes the response head. The downstream connection adds {@code Connection: close} when it will
   * close after this response (the client asked, Egret is draining, or the body ends by closing),
   * and the empty line that ends the head; read it back with {@link #closesAfter()}. Later
   * {@link #data} is framed as {@code head.framing()} says.
   */
  void head(RelayedHead head);

  boolean headWritten();

  /** True when the connection closes once this response ends. */
  boolean closesAfter();

  /** Writes response body data; the connection releases it. */
  void data(ByteBuf data);

  /** Ends the response; the hop is then complete. */
  void end();

  /**
   * The whole response at once, as {@link #head}, {@link #data} and {@link #end} would write it,
   * in one write and one flush: for an answer whose head and body arrived together (a small
   * body, the common case). The connection releases {@code data}, which may be empty.
   */
  default void whole(RelayedHead head, ByteBuf data) {
    head(head);
    if (data.isReadable()) {
      data(data);
    } else {
      data.release();
    }
    end();
  }

  /**
   * False while the downstream socket's buffer is full: stop writing until {@code whenWritable}.
   */
  boolean writable();

  /** Runs {@code r} once the downstream can take more (at once if it already can). */
  void whenWritable(Runnable r);

  /** Runs {@code r} if the downstream connection closes before the response has ended. */
  void onDownstreamGone(Runnable r);

  /** The downstream's HTTP version is 1.0: a body of unknown length ends by closing. */
  boolean http10();
}
