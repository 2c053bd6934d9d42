package dev.egret.tunnel;

import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * The client side of a {@link BulkServer} exchange over any connected socket (direct TLS, or TLS
 * inside an Egret tunnel): sends {@code up} random bytes while reading {@code down} bytes back,
 * never holding more than one chunk, and compares SHA-256 digests both ways.
 *
 * <pre>
 * Exchange.Result r = Exchange.run(ssl, 200L << 20, 200L << 20);
 * assertThat(r.intact()).isTrue();
 * </pre>
 */
final class Exchange {
  static final int HEADER = 16;

  /** What crossed, and whether each direction's digest matched the other end's. */
  record Result(long sentUp, long receivedDown, boolean upIntact, boolean downIntact,
      long nanos) {
    boolean intact() {
      return upIntact && downIntact;
    }
  }

  private Exchange() {}

  /**
   * Runs one exchange. Above 1 MiB up, a second thread writes while this one reads, as a real
   * client would; smaller uploads are written first (the socket buffers hold them).
   */
  static Result run(Socket socket, long up, long down) throws Exception {
    return run(socket, up, down, () -> {});
  }

  /** Something to wait for after sending and before reading anything back. */
  interface BeforeReading {
    void await() throws Exception;
  }

  /** As {@link #run(Socket, long, long)}, waiting for {@code beforeReading} first. */
  static Result run(Socket socket, long up, long down, BeforeReading beforeReading)
      throws Exception {
    long start = System.nanoTime();
    OutputStream out = socket.getOutputStream();
    InputStream in = socket.getInputStream();
    CompletableFuture<byte[]> upDigest;
    if (up > (1 << 20)) {
      upDigest = CompletableFuture.supplyAsync(() -> {
        try {
          return send(out, up, down);
        } catch (IOException e) {
          throw new RuntimeException(e);
        }
      }, r -> {
        Thread t = new Thread(r, "exchange-writer");
        t.setDaemon(true);
        t.start();
      });
    } else {
      upDigest = CompletableFuture.completedFuture(send(out, up, down));
    }
    beforeReading.await();
    MessageDigest received = BulkServer.sha256();
    byte[] buf = new byte[BulkServer.CHUNK];
    long left = down;
    while (left > 0) {
      int r = in.read(buf, 0, (int) Math.min(buf.length, left));
      if (r < 0) {
        throw new EOFException((down - left) + " of " + down + " bytes, then EOF");
      }
      received.update(buf, 0, r);
      left -= r;
    }
    byte[] digests = in.readNBytes(64);
    if (digests.length < 64) {
      throw new EOFException("the server's digests were cut short (" + digests.length + " bytes)");
    }
    byte[] sentUp;
    try {
      sentUp = upDigest.get();
    } catch (ExecutionException e) {
      throw (Exception) e.getCause().getCause();
    }
    boolean downIntact = Arrays.equals(received.digest(), Arrays.copyOfRange(digests, 0, 32));
    boolean upIntact = Arrays.equals(sentUp, Arrays.copyOfRange(digests, 32, 64));
    return new Result(up, down, upIntact, downIntact, System.nanoTime() - start);
  }

  private static byte[] send(OutputStream out, long up, long down) throws IOException {
    DataOutputStream data = new DataOutputStream(out);
    data.writeLong(up);
    data.writeLong(down);
    MessageDigest sent = BulkServer.sha256();
    SplittableRandom random = new SplittableRandom();
    byte[] buf = new byte[BulkServer.CHUNK];
    long left = up;
    while (left > 0) {
      int n = (int) Math.min(buf.length, left);
      BulkServer.fill(random, buf);
      sent.update(buf, 0, n);
      out.write(buf, 0, n);
      left -= n;
    }
    out.flush();
    return sent.digest();
  }
}
