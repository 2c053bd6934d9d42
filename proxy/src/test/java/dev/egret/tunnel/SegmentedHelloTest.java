package dev.egret.tunnel;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.RecordingTelemetry;
import static dev.egret.tunnel.HelloBytes.bytes;
import static dev.egret.tunnel.HelloBytes.clientHelloRecord;
import static dev.egret.tunnel.HelloBytes.extension;
import static dev.egret.tunnel.HelloBytes.serverName;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TCP may deliver a ClientHello in as many segments as the client likes: a client that writes
 * one byte per write is legal, and Egret must judge its hello exactly as one sent in one piece,
 * through a CONNECT and through the transparent TLS listener. Whatever happens inside such a
 * tunnel is counted and logged with its real outcome, never as a success it was not.
 */
class SegmentedHelloTest {
  private static final String HOST = "api.partner.test";
  private static final Duration WAIT = Duration.ofSeconds(20);
  /** Bytes sent one per read at the start of each connection. */
  private static final int PACED = 64;

  @TempDir static Path dir;
  static TestCert root;
  static TlsTestServer upstream;
  static RecordingTelemetry telemetry;
  static EgretFixture egret;
  static int tlsPort;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Segmented Root").issue();
    upstream = TlsTestServer.https(root.leaf(HOST).issue()).name("partner").start();
    try (ServerSocket s = new ServerSocket(0)) {
      tlsPort = s.getLocalPort();
    }
    telemetry = new RecordingTelemetry();
    egret = EgretFixture.builder()
        .hosts(Map.of(HOST, "127.0.0.1", "other.partner.test", "127.0.0.1")).telemetry(telemetry)
        .start(dir, """
        version: 1
        listen:
          proxy: 127.0.0.1:0
          admin: 127.0.0.1:0
          transparent:
            - {address: 127.0.0.1:%d, port: %d, protocol: tls}
        addresses: {allow: [127.0.0.1/32]}
        timeouts: {handshake: 15s}
        allow:
          - host: %s
            ports: [%d]
        """.formatted(tlsPort, upstream.port(), HOST, upstream.port()));
  }

  @AfterAll
  static void stop() throws Exception {
    egret.close();
    upstream.close();
  }

  private static String authority() {
    return HOST + ":" + upstream.port();
  }

  @Test
  void carriesATlsSessionWhoseClientWritesOneByteAtATimeThroughConnect() throws Exception {
    try (PacedSocket raw = oneByteWrites(egret.proxyPort())) {
      connect(raw);
      raw.pace();
      assertThat(getOverTls(raw)).startsWith("HTTP/1.1 200").endsWith("hello from partner");
    }
    Hop hop = telemetry.awaitHop(h -> authority().equals(h.url)
        && "connect".equalsIgnoreCase(h.method) && h.bytesUpstream > 0, WAIT);
    assertThat(hop.outcome()).isEqualTo("allowed");
    assertThat(hop.errorLabel()).isEqualTo("none");
    assertThat(hop.tlsVersion).startsWith("TLSv1.");
  }

  @Test
  void carriesATlsSessionWhoseClientWritesOneByteAtATimeThroughTheTransparentListener()
      throws Exception {
    try (PacedSocket raw = oneByteWrites(tlsPort)) {
      raw.pace();
      assertThat(getOverTls(raw)).startsWith("HTTP/1.1 200").endsWith("hello from partner");
    }
    Hop hop = telemetry.awaitHop(h -> authority().equals(h.url)
        && "transparent".equals(h.origin) && h.bytesUpstream > 0, WAIT);
    assertThat(hop.outcome()).isEqualTo("allowed");
    assertThat(hop.errorLabel()).isEqualTo("none");
  }

  @Test
  void countsARefusedHelloSentOneByteAtATimeThroughConnectAsDenied() throws Exception {
    byte[] hello = HelloBytes.jdkClientHelloWithSni("other.partner.test");
    try (PacedSocket raw = oneByteWrites(egret.proxyPort())) {
      connect(raw);
      raw.pace();
      writeUntilClosed(raw, hello);
      assertThat(ProxyConnect.readUntilClosed(raw.getInputStream())).isZero();
    }
    Hop hop = telemetry.awaitHop(h -> authority().equals(h.url) && h.error != null
        && h.errorDetails != null && h.errorDetails.contains("other.partner.test"), WAIT);
    assertThat(hop.error).isEqualTo(ErrorKind.REQUEST_DENIED);
    assertThat(hop.outcome()).isEqualTo("denied");
    assertThat(hop.errorLabel()).isEqualTo("http_request_denied");
    assertThat(upstream.handshakes()).noneMatch(h -> h.sni().orElse("").equals("other.partner.test"));
  }

  @Test
  void countsARefusedHelloSentOneByteAtATimeThroughTheTransparentListenerAsDenied()
      throws Exception {
    byte[] ech = clientHelloRecord(serverName(HOST), extension(0xfe0d, bytes(0, 0, 1, 0, 1)));
    try (PacedSocket raw = oneByteWrites(tlsPort)) {
      raw.pace();
      writeUntilClosed(raw, ech);
      assertThat(ProxyConnect.readUntilClosed(raw.getInputStream())).isZero();
    }
    Hop hop = telemetry.awaitHop(h -> authority().equals(h.url) && "transparent".equals(h.origin)
        && h.error != null && h.errorDetails != null && h.errorDetails.contains("ech: allow"),
        WAIT);
    assertThat(hop.outcome()).isEqualTo("denied");
    assertThat(hop.errorLabel()).isEqualTo("http_request_denied");
  }

  /**
   * A client socket to 127.0.0.1:port that, from {@link PacedSocket#pace()} on, sends each of
   * the next {@link #PACED} bytes in its own segment and, before the next, waits until Egret has
   * read it, so each is one read for Egret (far more than the 16 parts a composite buffer holds
   * before it merges them); the rest goes as the TLS client writes it.
   */
  private static PacedSocket oneByteWrites(int port) throws IOException {
    PacedSocket s = new PacedSocket(port);
    s.setTcpNoDelay(true);
    s.connect(new java.net.InetSocketAddress("127.0.0.1", port), 10_000);
    s.setSoTimeout(20_000);
    return s;
  }

  private static final class PacedSocket extends Socket {
    private final int egretPort;
    private OutputStream out;
    private int left;

    PacedSocket(int egretPort) {
      this.egretPort = egretPort;
    }

    /** Paces the next {@link #PACED} bytes written. */
    void pace() {
      left = PACED;
    }

    @Override
    public synchronized OutputStream getOutputStream() throws IOException {
      if (out == null) {
        OutputStream real = super.getOutputStream();
        int local = getLocalPort();
        out = new OutputStream() {
          @Override
          public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
          }

          @Override
          public void write(byte[] b, int off, int len) throws IOException {
            int i = 0;
            for (; i < len && left > 0; i++, left--) {
              real.write(b[off + i]);
              real.flush();
              awaitRead(egretPort, local);
            }
            real.write(b, off + i, len - i);
            real.flush();
          }
        };
      }
      return out;
    }
  }

  /**
   * Waits until the socket Egret accepted from {@code clientPort} has nothing left to read: its
   * receive queue in /proc/net/tcp (the kernel's own count, "rx_queue") is empty.
   */
  private static void awaitRead(int egretPort, int clientPort) throws IOException {
    String local = String.format(":%04X ", egretPort);
    String remote = String.format(":%04X ", clientPort);
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (System.nanoTime() < deadline) {
      boolean pending = false;
      try (java.io.BufferedReader r = java.nio.file.Files.newBufferedReader(
          Path.of("/proc/net/tcp"))) {
        for (String line; (line = r.readLine()) != null; ) {
          String[] f = line.trim().split("\\s+");
          if (f.length > 4 && (f[1] + " ").endsWith(local) && (f[2] + " ").endsWith(remote)) {
            pending = Long.parseLong(f[4].substring(f[4].indexOf(':') + 1), 16) > 0;
            break;
          }
        }
      }
      if (!pending) {
        return;
      }
      java.util.concurrent.locks.LockSupport.parkNanos(20_000); // polls the kernel, bounded
    }
    throw new AssertionError("Egret did not read a byte within " + WAIT);
  }

  /** Writes bytes until Egret closes the connection (a cut may come before the last byte). */
  private static void writeUntilClosed(Socket raw, byte[] bytes) {
    try {
      raw.getOutputStream().write(bytes);
    } catch (IOException closed) {
      // the hop's record says why
    }
  }

  private static void connect(Socket raw) throws IOException {
    raw.getOutputStream().write(("CONNECT " + authority() + " HTTP/1.1\r\nHost: " + authority()
        + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    InputStream in = raw.getInputStream();
    while (!head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
      int c = in.read();
      if (c < 0) {
        throw new EOFException("proxy closed after " + head);
      }
      head.write(c);
    }
    assertThat(head.toString(StandardCharsets.ISO_8859_1)).startsWith("HTTP/1.1 200");
  }

  /** A TLS client over raw (SNI HOST, a fresh context so nothing is resumed) doing one GET. */
  private static String getOverTls(Socket raw) throws Exception {
    SSLSocket tls = (SSLSocket) root.clientContext().getSocketFactory()
        .createSocket(raw, HOST, upstream.port(), true);
    SSLParameters p = tls.getSSLParameters();
    p.setServerNames(List.of(new SNIHostName(HOST)));
    tls.setSSLParameters(p);
    tls.startHandshake();
    tls.getOutputStream().write(("GET /segmented HTTP/1.1\r\nHost: " + HOST
        + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
    tls.getOutputStream().flush();
    return new String(tls.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
  }
}
