package dev.egret.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.Security;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import javax.net.ssl.ExtendedSSLSession;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SNIServerName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;

/**
 * A real upstream on {@code 127.0.0.1}, port 0, that speaks exactly the TLS a test asks for and
 * records everything it received:
 *
 * <pre>
 * try (TlsTestServer server = TlsTestServer.https(leaf).protocols("TLSv1").start()) {
 *   // ... send a request through Egret to 127.0.0.1:server.port() ...
 *   assertThat(server.handshakes()).isEmpty();     // Egret refused before finishing one
 *   assertThat(server.requests()).isEmpty();       // and nothing reached the upstream
 * }
 * </pre>
 *
 * <p>It answers every request with {@code 200 hello from <name>} and echo headers
 * ({@code X-Echo-Method}, {@code X-Echo-Target}, {@code X-Echo-Host}, {@code X-Echo-Tls},
 * {@code X-Echo-Header-Names}); {@link #requests()} holds the full requests. {@link #plain()}
 * answers HTTP in cleartext and says {@code 400} to a TLS ClientHello, as a real plain server
 * would: the "not TLS at all" upstream.
 *
 * <p>Built on the JDK's {@link SSLServerSocket} with a thread per connection, because only the
 * JDK provider honours test-java.security for TLS 1.0/1.1, NULL and anonymous suites. Protocols
 * and suites the test JVM still forbids are refused at {@link Builder#start()} with a message
 * naming the surefire flag, so a run outside Maven fails loudly instead of testing nothing.
 *
 * <p>JVM-wide caveat, DHE: the JDK reads {@code jdk.tls.ephemeralDHKeySize} once per JVM, so a
 * DHE server cannot choose its group size. The surefire argLine sets it to 1024: a client that
 * offers no FFDHE named group (openssl with {@code -groups X25519}) gets a 1024-bit group. A
 * client that offers FFDHE groups (every JDK client by default) gets ffdhe2048 under RFC 7919,
 * whatever the property says. Egret offers no DHE suite at all, so against Egret a
 * {@link #DHE_ONLY} server fails on the suite, before any group is chosen.
 */
public final class TlsTestServer implements AutoCloseable {

  /** CBC suites with forward secrecy (RSA and ECDSA certificates), usable from TLS 1.0 to 1.2. */
  public static final List<String> CBC_ONLY = List.of(
      "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
      "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA");

  /** Suites that authenticate but do not encrypt. Needs an RSA (or ECDSA) certificate. */
  public static final List<String> NULL_ONLY = List.of(
      "TLS_RSA_WITH_NULL_SHA256", "TLS_ECDHE_RSA_WITH_NULL_SHA", "TLS_ECDHE_ECDSA_WITH_NULL_SHA");

  /** Finite-field DHE, AEAD. Needs an RSA certificate; see the class doc for the group size. */
  public static final List<String> DHE_ONLY = List.of("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256");

  /** AEAD without forward secrecy: the key exchange is the server's static RSA key. */
  public static final List<String> STATIC_RSA_ONLY = List.of("TLS_RSA_WITH_AES_128_GCM_SHA256");

  /** Triple DES, CBC. Needs an RSA certificate. */
  public static final List<String> TRIPLE_DES_ONLY =
      List.of("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "SSL_RSA_WITH_3DES_EDE_CBC_SHA");

  /** Anonymous: no certificate at all, so any test certificate will do for the builder. */
  public static final List<String> ANONYMOUS_ONLY =
      List.of("TLS_DH_anon_WITH_AES_128_GCM_SHA256", "TLS_DH_anon_WITH_AES_128_CBC_SHA");

  private static final int HANDSHAKE_TIMEOUT_MS = 10_000;
  private static final int IDLE_TIMEOUT_MS = 30_000;

  private final String name;
  private final int status;
  private final ServerSocket socket;
  private final boolean tls;
  private final Thread acceptor;
  private final Set<Socket> open = ConcurrentHashMap.newKeySet();
  // Written by connection threads, read by the test thread; every access holds `this`.
  private int connections;
  private final List<Handshake> handshakes = new ArrayList<>();
  private final List<String> failedHandshakes = new ArrayList<>();
  private final List<ReceivedRequest> requests = new ArrayList<>();
  private final List<String> notHttp = new ArrayList<>();

  /**
   * A completed handshake, as the server saw it. {@code sni} is empty when none was sent;
   * {@code clientCertificate} is the subject of the client's certificate, empty when it sent none.
   */
  public record Handshake(String protocol, String cipherSuite, Optional<String> sni,
      Optional<String> clientCertificate) {}

  /** An HTTPS upstream presenting {@code cert.chain()} with its key. */
  public static Builder https(TestCert cert) {
    return new Builder(cert);
  }

  /** A cleartext HTTP upstream, the "not TLS at all" case. */
  public static Builder plain() {
    return new Builder(null);
  }

  /** Options for the server; all optional. */
  public static final class Builder {
    private final TestCert cert;
    private String name = "upstream";
    private int status = 200;
    private List<String> protocols = List.of();
    private List<String> cipherSuites = List.of();
    private boolean leafOnly;
    private TestCert clientCa;

    private Builder(TestCert cert) {
      this.cert = cert;
    }

    /** Appears in the body, {@code hello from <name>}, and in thread names. */
    public Builder name(String name) {
      this.name = name;
      return this;
    }

    /** The status of every response; 200 unless set. */
    public Builder status(int status) {
      this.status = status;
      return this;
    }

    /** The only protocols offered, e.g. {@code "TLSv1"}; the JDK's defaults unless set. */
    public Builder protocols(String... protocols) {
      this.protocols = List.of(protocols);
      return this;
    }

    /** The only suites offered, e.g. {@link #NULL_ONLY}; the JDK's defaults unless set. */
    public Builder cipherSuites(List<String> suites) {
      this.cipherSuites = List.copyOf(suites);
      return this;
    }

    public Builder cipherSuites(String... suites) {
      return cipherSuites(List.of(suites));
    }

    /**
     * Presents the leaf alone, leaving out the intermediates of {@code cert.chain()}: the
     * misconfigured server whose chain a client cannot build without fetching what is missing.
     */
    public Builder withoutIntermediates() {
      this.leafOnly = true;
      return this;
    }

    /**
     * Requires a client certificate issued by {@code ca} (mTLS): a handshake without one, or with
     * one from another CA, fails and is recorded in {@link #failedHandshakes()}.
     */
    public Builder requireClientCertificate(TestCert ca) {
      this.clientCa = ca;
      return this;
    }

    /** Binds 127.0.0.1 on a free port and starts accepting. */
    public TlsTestServer start() {
      try {
        return new TlsTestServer(this);
      } catch (IOException | GeneralSecurityException e) {
        throw new IllegalStateException("cannot start test server " + name, e);
      }
    }
  }

  private TlsTestServer(Builder b) throws IOException, GeneralSecurityException {
    this.name = b.name;
    this.status = b.status;
    this.tls = b.cert != null;
    InetAddress loopback = InetAddress.getByName("127.0.0.1");
    if (tls) {
      SSLContext context = SSLContext.getInstance("TLS");
      KeyManagerFactory keys = b.leafOnly ? leafOnlyKeys(b.cert) : b.cert.keyManagerFactory();
      TrustManager[] clientTrust =
          b.clientCa == null ? null : b.clientCa.trustManagerFactory().getTrustManagers();
      context.init(keys.getKeyManagers(), clientTrust, null);
      SSLServerSocket server =
          (SSLServerSocket) context.getServerSocketFactory().createServerSocket(0, 50, loopback);
      server.setNeedClientAuth(b.clientCa != null);
      if (!b.protocols.isEmpty()) {
        requireAllowedByTestJvm(b.protocols);
        server.setEnabledProtocols(b.protocols.toArray(String[]::new));
      }
      if (!b.cipherSuites.isEmpty()) {
        requireSupported(server, b.cipherSuites);
        server.setEnabledCipherSuites(b.cipherSuites.toArray(String[]::new));
      }
      this.socket = server;
    } else {
      this.socket = new ServerSocket(0, 50, loopback);
    }
    this.acceptor = new Thread(this::acceptLoop, "test-server-" + name + "-accept");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  public String host() {
    return "127.0.0.1";
  }

  public int port() {
    return socket.getLocalPort();
  }

  public String name() {
    return name;
  }

  /** TCP connections accepted, whether or not a handshake followed. */
  public synchronized int connections() {
    return connections;
  }

  /** Handshakes that completed, in order. Empty in plain mode. */
  public synchronized List<Handshake> handshakes() {
    return List.copyOf(handshakes);
  }

  /** Why handshakes failed, as the server's exception messages, in order. */
  public synchronized List<String> failedHandshakes() {
    return List.copyOf(failedHandshakes);
  }

  /** Every request read, in order. Empty means the upstream received nothing. */
  public synchronized List<ReceivedRequest> requests() {
    return List.copyOf(requests);
  }

  /** Connections whose bytes were not HTTP (in plain mode: a TLS ClientHello), answered 400. */
  public synchronized List<String> notHttp() {
    return List.copyOf(notHttp);
  }

  /**
   * Waits until at least {@code count} handshakes have ended, completed or failed. A client sees
   * its own failure before the server's thread records it; wait before asserting on the server's
   * side of a refused handshake.
   *
   * @throws AssertionError when the deadline passes first
   */
  public synchronized TlsTestServer awaitHandshakeOutcomes(int count, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (handshakes.size() + failedHandshakes.size() < count) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("test server " + name + " saw " + handshakes.size()
            + " handshakes and " + failedHandshakes.size() + " failures within " + timeout
            + ", expected " + count + " in all");
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    return this;
  }

  /** Stops accepting, closes every open connection and waits for the accept thread. */
  @Override
  public void close() {
    try {
      socket.close();
    } catch (IOException ignored) {
      // Closing anyway.
    }
    for (Socket s : open) {
      closeQuietly(s);
    }
    try {
      acceptor.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void acceptLoop() {
    int n = 0;
    while (!socket.isClosed()) {
      Socket connection;
      try {
        connection = socket.accept();
      } catch (IOException e) {
        return; // closed
      }
      open.add(connection);
      synchronized (this) {
        connections++;
      }
      Thread worker = new Thread(() -> serve(connection), "test-server-" + name + "-" + n++);
      worker.setDaemon(true);
      worker.start();
    }
  }

  private void serve(Socket connection) {
    try (connection) {
      connection.setSoTimeout(HANDSHAKE_TIMEOUT_MS);
      String protocol = "none";
      Optional<String> sni = Optional.empty();
      if (connection instanceof SSLSocket ssl) {
        try {
          ssl.startHandshake();
        } catch (IOException e) {
          record(failedHandshakes, String.valueOf(e.getMessage()));
          return;
        }
        SSLSession session = ssl.getSession();
        protocol = session.getProtocol();
        sni = sniOf(session);
        record(handshakes,
            new Handshake(protocol, session.getCipherSuite(), sni, clientSubject(session)));
      }
      connection.setSoTimeout(IDLE_TIMEOUT_MS);
      InputStream in = connection.getInputStream();
      OutputStream out = connection.getOutputStream();
      while (true) {
        Optional<ReceivedRequest> request;
        try {
          request = HttpWire.read(in, out, protocol, sni);
        } catch (HttpWire.NotHttpException e) {
          record(notHttp, e.getMessage());
          HttpWire.rejectNotHttp(out);
          return;
        }
        if (request.isEmpty()) {
          return;
        }
        record(requests, request.get());
        boolean keepAlive = HttpWire.keepAlive(request.get());
        HttpWire.respond(out, request.get(), status, name, keepAlive);
        if (!keepAlive) {
          return;
        }
      }
    } catch (SocketException e) {
      // The client or close() hung up; nothing to record.
    } catch (IOException e) {
      // A read timeout or a reset mid-request: the test asserts on what was recorded before.
    } finally {
      open.remove(connection);
    }
  }

  private synchronized <T> void record(List<T> list, T item) {
    list.add(item);
    notifyAll();
  }

  private static Optional<String> clientSubject(SSLSession session) {
    try {
      Certificate[] sent = session.getPeerCertificates();
      return sent.length > 0 && sent[0] instanceof X509Certificate x
          ? Optional.of(x.getSubjectX500Principal().getName()) : Optional.empty();
    } catch (SSLPeerUnverifiedException e) {
      return Optional.empty(); // the client sent no certificate
    }
  }

  /** Key managers holding the leaf certificate only, without its intermediates. */
  private static KeyManagerFactory leafOnlyKeys(TestCert cert) throws IOException,
      GeneralSecurityException {
    KeyStore store = KeyStore.getInstance("PKCS12");
    store.load(null, null);
    store.setKeyEntry("server", cert.privateKey(), TestCert.PASSWORD.toCharArray(),
        new X509Certificate[] {cert.certificate()});
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(store, TestCert.PASSWORD.toCharArray());
    return kmf;
  }

  private static Optional<String> sniOf(SSLSession session) {
    if (session instanceof ExtendedSSLSession extended) {
      for (SNIServerName server : extended.getRequestedServerNames()) {
        if (server instanceof SNIHostName host) {
          return Optional.of(host.getAsciiName());
        }
      }
    }
    return Optional.empty();
  }

  /** Fails fast, outside Maven, when the JVM was started without test-java.security. */
  private static void requireAllowedByTestJvm(List<String> protocols) {
    Set<String> disabled = Arrays.stream(
            String.valueOf(Security.getProperty("jdk.tls.disabledAlgorithms")).split(","))
        .map(String::trim).collect(Collectors.toSet());
    for (String protocol : protocols) {
      if (disabled.contains(protocol)) {
        throw new IllegalStateException(protocol + " is disabled in this JVM; run the tests with"
            + " -Djava.security.properties=proxy/src/test/resources/test-java.security"
            + " (the surefire argLine does)");
      }
    }
  }

  private static void requireSupported(SSLServerSocket server, List<String> suites) {
    List<String> supported = List.of(server.getSupportedCipherSuites());
    for (String suite : suites) {
      if (!supported.contains(suite)) {
        // The JDK lists only suites its disabledAlgorithms allow, so a run without
        // test-java.security lands here too.
        throw new IllegalArgumentException("cipher suite " + suite + " is unknown to the JDK or"
            + " disabled in this JVM; the tests need -Djava.security.properties="
            + "proxy/src/test/resources/test-java.security (the surefire argLine sets it)");
      }
    }
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // Closing anyway.
    }
  }

  @Override
  public String toString() {
    return "TlsTestServer[" + name + (tls ? ", https" : ", plain") + ", 127.0.0.1:" + port() + "]";
  }
}
