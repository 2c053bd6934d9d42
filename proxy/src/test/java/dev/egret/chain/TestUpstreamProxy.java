package dev.egret.chain;

import dev.egret.testing.TestCert;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;

/**
 * A corporate proxy for tests, on 127.0.0.1 port 0: it accepts {@code CONNECT}, records exactly
 * what it received (the head, and the first bytes sent after its answer), and either relays to
 * 127.0.0.1 at the CONNECT's port (its own "DNS" sends every name to loopback) or answers what
 * the test tells it to, byte for byte:
 *
 * <pre>
 * try (TestUpstreamProxy corp = TestUpstreamProxy.relaying().start()) { ... }
 * TestUpstreamProxy.answering("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").start();
 * </pre>
 *
 * A thread per connection, as {@code TlsTestServer}; with {@link #tls} it listens with TLS, as an
 * {@code https://} proxy does.
 */
final class TestUpstreamProxy implements AutoCloseable {
  private static final byte[] ESTABLISHED =
      "HTTP/1.1 200 Connection established\r\n\r\n".getBytes(StandardCharsets.US_ASCII);

  private final byte[] answer;
  private final boolean relay;
  private TestCert cert;
  private ServerSocket socket;
  private Thread acceptor;
  private final Set<Socket> open = ConcurrentHashMap.newKeySet();
  private int accepts;
  private final List<String> heads = new ArrayList<>();
  private final List<byte[]> afterAnswer = new ArrayList<>();

  private TestUpstreamProxy(byte[] answer, boolean relay) {
    this.answer = answer;
    this.relay = relay;
  }

  /** Answers 200 and relays both ways to 127.0.0.1 at the CONNECT's port. */
  static TestUpstreamProxy relaying() {
    return new TestUpstreamProxy(ESTABLISHED, true);
  }

  /** Writes exactly {@code raw} (one write) after the head, then only reads until Egret closes. */
  static TestUpstreamProxy answering(String raw) {
    return answering(raw.getBytes(StandardCharsets.ISO_8859_1));
  }

  static TestUpstreamProxy answering(byte[] raw) {
    return new TestUpstreamProxy(raw, false);
  }

  /** Listens with TLS, presenting {@code cert}: an https:// proxy. */
  TestUpstreamProxy tls(TestCert cert) {
    this.cert = cert;
    return this;
  }

  TestUpstreamProxy start() throws Exception {
    InetAddress loopback = InetAddress.getByName("127.0.0.1");
    if (cert == null) {
      socket = new ServerSocket(0, 50, loopback);
    } else {
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(cert.keyManagerFactory().getKeyManagers(), null, null);
      socket = (SSLServerSocket) context.getServerSocketFactory().createServerSocket(0, 50,
          loopback);
    }
    acceptor = new Thread(this::acceptLoop, "test-upstream-proxy-accept");
    acceptor.setDaemon(true);
    acceptor.start();
    return this;
  }

  int port() {
    return socket.getLocalPort();
  }

  /** TCP connections accepted. */
  synchronized int accepts() {
    return accepts;
  }

  /** Every request head received, exactly as sent, in order. */
  synchronized List<String> heads() {
    return List.copyOf(heads);
  }

  /** Per relayed connection, the first bytes Egret sent after the 200 (at most 16). */
  synchronized List<byte[]> afterAnswer() {
    return List.copyOf(afterAnswer);
  }

  /** Waits until {@code count} heads arrived. */
  synchronized List<String> awaitHeads(int count, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (heads.size() < count) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("the test proxy saw " + heads.size() + " CONNECTs within "
            + timeout + ", expected " + count + ": " + heads);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    return List.copyOf(heads);
  }

  /** Waits until {@code count} relayed connections recorded what came after the 200. */
  synchronized List<byte[]> awaitAfterAnswer(int count, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (afterAnswer.size() < count) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("the test proxy relayed " + afterAnswer.size()
            + " connections within " + timeout + ", expected " + count);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    return List.copyOf(afterAnswer);
  }

  private void acceptLoop() {
    while (!socket.isClosed()) {
      try {
        Socket s = socket.accept();
        open.add(s);
        synchronized (this) {
          accepts++;
          notifyAll();
        }
        Thread t = new Thread(() -> serve(s), "test-upstream-proxy-conn");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        return; // closed
      }
    }
  }

  private void serve(Socket s) {
    try (s) {
      s.setSoTimeout(30_000);
      InputStream in = s.getInputStream();
      OutputStream out = s.getOutputStream();
      String head = readHead(in);
      synchronized (this) {
        heads.add(head);
        notifyAll();
      }
      out.write(answer);
      out.flush();
      if (!relay) {
        while (in.read() >= 0) {
          // hold the connection until Egret closes it
        }
        return;
      }
      String authority = head.substring("CONNECT ".length(), head.indexOf(' ', 8));
      int port = Integer.parseInt(authority.substring(authority.lastIndexOf(':') + 1));
      try (Socket target = new Socket("127.0.0.1", port)) {
        open.add(target);
        byte[] first = new byte[16];
        int n = in.read(first);
        if (n < 0) {
          return;
        }
        synchronized (this) {
          afterAnswer.add(Arrays.copyOf(first, n));
          notifyAll();
        }
        target.getOutputStream().write(first, 0, n);
        Thread back = new Thread(() -> pump(target, s), "test-upstream-proxy-back");
        back.setDaemon(true);
        back.start();
        pump(s, target);
        back.join(10_000);
      }
    } catch (IOException | InterruptedException | RuntimeException e) {
      // a connection Egret or the target cut; the recorded bytes are what counts
    } finally {
      open.remove(s);
    }
  }

  private static void pump(Socket from, Socket to) {
    byte[] buf = new byte[16384];
    try {
      InputStream in = from.getInputStream();
      OutputStream out = to.getOutputStream();
      int n;
      while ((n = in.read(buf)) >= 0) {
        out.write(buf, 0, n);
        out.flush();
      }
      to.shutdownOutput();
    } catch (IOException e) {
      closeQuietly(to);
    }
  }

  private static String readHead(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    int matched = 0;
    while (matched < 4 && head.size() < 65536) {
      int b = in.read();
      if (b < 0) {
        break;
      }
      head.write(b);
      matched = (b == '\r' && (matched == 0 || matched == 2)) || (b == '\n' && (matched == 1
          || matched == 3)) ? matched + 1 : (b == '\r' ? 1 : 0);
    }
    return head.toString(StandardCharsets.ISO_8859_1);
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // closing anyway
    }
  }

  @Override
  public void close() {
    try {
      socket.close();
    } catch (IOException ignored) {
      // closing anyway
    }
    for (Socket s : open) {
      closeQuietly(s);
    }
  }
}
