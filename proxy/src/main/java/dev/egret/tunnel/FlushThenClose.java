package dev.egret.tunnel;

import io.netty.channel.Channel;
import io.netty.channel.ChannelOutboundBuffer;
import io.vertx.core.Vertx;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.impl.ConnectionBase;

/**
 * Closes a tunnel's socket only once every byte written to it has left for the kernel, so the
 * last bytes one side sent before its FIN reach the other side.
 *
 * <p>Why not just {@code NetSocket.close()}: in this stack (Vert.x 5.0.7 on Netty 4.2.9) a close
 * issued while the Netty outbound buffer still held bytes for a slow reader dropped them, and the
 * client of a server that sent its last flight and closed at once saw a truncated stream
 * ({@code TunnelTest.deliversTheServersLastBytesWhenItClosesRightAfterSending}). So this checks
 * the buffer and, while it is not empty, looks again every {@link #POLL_MS} ms, for at most
 * {@code graceMs}: a reader that takes nothing for that long is cut anyway.
 *
 * <p>Runs on the socket's event loop, like everything in a tunnel.
 */
final class FlushThenClose {
  static final long POLL_MS = 5;

  private FlushThenClose() {}

  static void close(Vertx vertx, NetSocket socket, long graceMs) {
    closeBy(vertx, socket, System.nanoTime() + graceMs * 1_000_000L);
  }

  private static void closeBy(Vertx vertx, NetSocket socket, long deadlineNanos) {
    if (pendingBytes(socket) == 0 || System.nanoTime() >= deadlineNanos) {
      socket.close();
      return;
    }
    vertx.setTimer(POLL_MS, id -> closeBy(vertx, socket, deadlineNanos));
  }

  /** Bytes written but not yet handed to the kernel; 0 once the channel is closed. */
  private static long pendingBytes(NetSocket socket) {
    Channel channel = ((ConnectionBase) socket).channel();
    ChannelOutboundBuffer out = channel.unsafe().outboundBuffer();
    return !channel.isActive() || out == null ? 0 : out.totalPendingWriteBytes();
  }
}
