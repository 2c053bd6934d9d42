package dev.egret.tunnel;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A TCP upstream on 127.0.0.1 that says nothing and records how many bytes each connection
 * delivered before it closed: the witness that Egret forwarded nothing from a refused tunnel.
 *
 * <pre>
 * try (RawUpstream upstream = RawUpstream.start()) {
 *   // ... open a tunnel to upstream.port() and misbehave ...
 *   assertThat(upstream.awaitClosedConnections(1, Duration.ofSeconds(5))).containsExactly(0L);
 * }
 * </pre>
 */
final class RawUpstream implements AutoCloseable {
  private final ServerSocket socket;
  private final Thread acceptor;
  // Written by connection threads, read by the test; every access holds `this`.
  private final List<Long> closedWithBytes = new ArrayList<>();
  private final List<Socket> open = new ArrayList<>();

  private RawUpstream() throws IOException {
    socket = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
    acceptor = new Thread(this::accept, "raw-upstream-accept");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  static RawUpstream start() throws IOException {
    return new RawUpstream();
  }

  int port() {
    return socket.getLocalPort();
  }

  /** Connections closed so far; the next one to close has this index. */
  synchronized int closedCount() {
    return closedWithBytes.size();
  }

  /** Bytes the connection with this index (in closing order) delivered, waiting for it. */
  long awaitClosed(int index, Duration timeout) throws InterruptedException {
    return awaitClosedConnections(index + 1, timeout).get(index);
  }

  /** Byte counts of the first {@code count} connections to close, waiting for them. */
  synchronized List<Long> awaitClosedConnections(int count, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (closedWithBytes.size() < count) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError(closedWithBytes.size() + " of " + count
            + " upstream connections closed within " + timeout);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    return List.copyOf(closedWithBytes.subList(0, count));
  }

  /** Waits until every connection accepted so far has closed, so counts start from a rest. */
  synchronized void awaitNoneOpen(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!open.isEmpty()) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError(open.size() + " upstream connections still open after " + timeout);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  private void accept() {
    while (!socket.isClosed()) {
      Socket c;
      try {
        c = socket.accept();
      } catch (IOException e) {
        return;
      }
      synchronized (this) {
        open.add(c);
      }
      Thread t = new Thread(() -> drain(c), "raw-upstream-conn");
      t.setDaemon(true);
      t.start();
    }
  }

  private void drain(Socket c) {
    long n = 0;
    try (c; InputStream in = c.getInputStream()) {
      c.setSoTimeout(30_000);
      byte[] buf = new byte[8192];
      for (int r; (r = in.read(buf)) >= 0; ) {
        n += r;
      }
    } catch (IOException e) {
      // reset or timeout: what arrived before is the record
    }
    synchronized (this) {
      open.remove(c);
      closedWithBytes.add(n);
      notifyAll();
    }
  }

  @Override
  public void close() throws IOException {
    socket.close();
    synchronized (this) {
      for (Socket c : open) {
        c.close();
      }
    }
  }
}
