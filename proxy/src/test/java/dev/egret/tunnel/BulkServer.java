package dev.egret.tunnel;

import dev.egret.testing.TestCert;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.PfxOptions;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A TLS upstream on 127.0.0.1 for bulk transfers, non-blocking on a Vert.x event loop so that
 * hundreds of connections cost no threads. Each connection is one {@link Exchange}: the client
 * sends an 16-byte header (bytes it will send, bytes it wants), then its bytes; the server
 * streams the wanted number of random bytes back at the same time, with back-pressure, and
 * ends with the SHA-256 of what it sent and of what it received, then closes at once.
 *
 * <pre>
 * try (BulkServer server = BulkServer.start(vertx, leaf, dir)) {
 *   Exchange.Result r = Exchange.run(tlsSocket, 1 << 20, 1 << 20);
 * }
 * </pre>
 *
 * <p>{@link #bytesAccepted()} counts the bytes its sockets have written to the kernel, across
 * all connections: with a client that reads nothing it stops growing once Egret pushes back.
 */
final class BulkServer implements AutoCloseable {
  static final int CHUNK = 64 * 1024;
  static final int IN_FLIGHT = 512 * 1024;
  private final NetServer server;
  private final AtomicLong bytesAccepted = new AtomicLong();
  private int finished;

  private BulkServer(NetServer server) {
    this.server = server;
  }

  static BulkServer start(Vertx vertx, TestCert leaf, Path dir) throws Exception {
    NetServerOptions options = new NetServerOptions()
        .setHost("127.0.0.1")
        .setPort(0)
        .setTcpNoDelay(true)
        .setSsl(true)
        .setKeyCertOptions(new PfxOptions().setPath(leaf.writePkcs12(dir).toString())
            .setPassword(TestCert.PASSWORD));
    BulkServer bulk = new BulkServer(vertx.createNetServer(options));
    bulk.server.connectHandler(socket -> bulk.new Connection(socket).start());
    bulk.server.listen().await(10, TimeUnit.SECONDS);
    return bulk;
  }

  int port() {
    return server.actualPort();
  }

  long bytesAccepted() {
    return bytesAccepted.get();
  }

  /** Exchanges that sent their digests and closed so far. */
  synchronized int finished() {
    return finished;
  }

  /** Waits until {@code count} exchanges have sent their digests and closed. */
  synchronized void awaitFinished(int count, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (finished < count) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError(finished + " of " + count + " exchanges finished in " + timeout);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  private synchronized void exchangeFinished() {
    finished++;
    notifyAll();
  }

  @Override
  public void close() throws Exception {
    server.close().await(10, TimeUnit.SECONDS);
  }

  /** One exchange; all its methods run on the socket's event loop. */
  private final class Connection {
    private final NetSocket socket;
    private final MessageDigest received = sha256();
    private final MessageDigest sent = sha256();
    private final SplittableRandom random = new SplittableRandom();
    private Buffer header = Buffer.buffer();
    private long toReceive = -1;
    private long toSend;
    private long inFlight;
    private boolean finished;

    Connection(NetSocket socket) {
      this.socket = socket;
    }

    void start() {
      socket.handler(this::onData);
      socket.exceptionHandler(e -> socket.close());
    }

    private void onData(Buffer chunk) {
      if (toReceive < 0) {
        header.appendBuffer(chunk);
        if (header.length() < Exchange.HEADER) {
          return;
        }
        toReceive = header.getLong(0);
        toSend = header.getLong(8);
        chunk = header.slice(Exchange.HEADER, header.length());
        header = null;
        pump();
      }
      if (chunk.length() > 0) {
        received.update(chunk.getBytes());
        toReceive -= chunk.length();
      }
      maybeFinish();
    }

    /**
     * Writes random bytes while less than {@link #IN_FLIGHT} is unwritten to the kernel, and
     * again as writes complete. Paced on write completion rather than writeQueueFull(), which
     * on a Vert.x 5.0.7 TLS server socket let a non-reading client queue a gigabyte.
     */
    private void pump() {
      while (toSend > 0 && inFlight < IN_FLIGHT) {
        byte[] bytes = new byte[(int) Math.min(CHUNK, toSend)];
        fill(random, bytes);
        sent.update(bytes);
        // State first: the completion below may run at once, re-entering pump().
        inFlight += bytes.length;
        toSend -= bytes.length;
        socket.write(Buffer.buffer(bytes)).onComplete(ar -> {
          inFlight -= bytes.length;
          if (ar.succeeded()) {
            bytesAccepted.addAndGet(bytes.length);
            pump();
          }
        });
      }
      maybeFinish();
    }

    private void maybeFinish() {
      if (finished || toReceive != 0 || toSend != 0 || inFlight != 0) {
        return;
      }
      finished = true;
      // Digests, then close right away: the tunnel must still deliver every byte before its FIN.
      socket.end(Buffer.buffer(sent.digest()).appendBytes(received.digest()))
          .onComplete(ar -> exchangeFinished());
    }
  }

  static void fill(SplittableRandom random, byte[] bytes) {
    int i = 0;
    for (; i + 8 <= bytes.length; i += 8) {
      long v = random.nextLong();
      for (int k = 0; k < 8; k++) {
        bytes[i + k] = (byte) (v >>> (8 * k));
      }
    }
    for (; i < bytes.length; i++) {
      bytes[i] = (byte) random.nextInt();
    }
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
