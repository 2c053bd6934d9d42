package dev.egret.tls;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SupportedCipherSuiteFilter;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import javax.net.ssl.SSLException;
import javax.net.ssl.X509KeyManager;

/**
 * Everything Egret needs to originate TLS to one rule's hosts: the strict trust manager (chain,
 * host name, baseline, pins), an optional client certificate, and the protocol and cipher suite
 * baseline, with the one Netty {@link SslContext} every upstream connection of the profile is
 * made from; upstream pools are kept per profile too, so one rule's pins and trust never serve
 * another's requests.
 *
 * <pre>{@code
 * TlsProfile p = new TlsProfile("tls", Pins.NONE, () -> StrictTrustManager.create(true, roots,
 *     Pins.NONE), null, baseline, Duration.ofSeconds(10));
 * p.prepare();                    // off the event loops, at most once; a future of the context
 * if (p.prepared()) p.newHandler(alloc, "api.example.com", 443);
 * }</pre>
 *
 * <p>The trust manager and the context are built once, on first need, not when the config is
 * compiled: for the default profile that means reading the JDK's CA file (about 140 certificates
 * parsed) and starting the JDK's and BoringSSL's TLS stacks, together half of the main thread's
 * CPU time to {@code /readyz} in a sidecar start-up profile, and no refused request, tunnel or
 * scrape needs any of it. {@code egret run} prepares every profile on a thread of its own right
 * after it says it is ready, and a reload before it swaps, both off the event loops; the first
 * dial of a profile that is not built yet waits for it without blocking its loop
 * ({@code UpstreamClient}).
 */
public final class TlsProfile {
  private final String name;
  private final Pins pins;
  private final Supplier<StrictTrustManager> trustSource;
  private final X509KeyManager clientKey;
  private final TlsBaseline baseline;
  private final long handshakeTimeoutMillis;
  private final AtomicBoolean started = new AtomicBoolean();
  private final CompletableFuture<SslContext> built = new CompletableFuture<>();
  /** Set once {@link #built} completed with a context; read without a lock on the event loops. */
  private volatile SslContext context;

  /**
   * @param name where the profile comes from ("tls" or "allow[3]"), for messages
   * @param pins the pins {@code trust} checks, for {@code explain}
   * @param trust builds the verifier; called once, off the event loops (it may read files)
   * @param clientKey the client certificate for mTLS, or null
   * @param baseline protocol versions and cipher suites
   * @param handshakeTimeout {@code timeouts.handshake}, set on each connection's handshake
   */
  public TlsProfile(String name, Pins pins, Supplier<StrictTrustManager> trust,
      X509KeyManager clientKey, TlsBaseline baseline, java.time.Duration handshakeTimeout) {
    this.name = name;
    this.pins = pins;
    this.trustSource = trust;
    this.clientKey = clientKey;
    this.baseline = baseline;
    this.handshakeTimeoutMillis = Math.max(1, handshakeTimeout.toMillis());
  }

  /**
   * Starts building the trust manager and the context on a thread of their own unless that has
   * started already; the future completes when the profile is {@link #prepared()} (or with why
   * it cannot be). Never blocks.
   */
  public CompletableFuture<SslContext> prepare() {
    if (started.compareAndSet(false, true)) {
      Thread t = new Thread(this::build, "egret-tls-" + name);
      t.setDaemon(true);
      t.start();
    }
    return built;
  }

  /**
   * Prepares {@code profiles} one after the other on this thread; a profile that cannot be built
   * keeps its failure (its first dial gets it) and the others are still built.
   */
  public static void prepareAll(Collection<TlsProfile> profiles) {
    for (TlsProfile p : profiles) {
      try {
        p.prepareNow();
      } catch (RuntimeException e) {
        // Kept in the profile's future.
      }
    }
  }

  /** Builds the context on this thread unless it is built or being built; waits for it. */
  public void prepareNow() {
    if (started.compareAndSet(false, true)) {
      build();
    }
    built.join();
  }

  /** True once {@link #newHandler} can be called. */
  public boolean prepared() {
    return context != null;
  }

  private void build() {
    try {
      // The host name check is the JDK's (StrictTrustManager asks the PKIX manager with the
      // engine), which reads the engine's endpoint identification: HTTPS, so a certificate must
      // name the host.
      SslContextBuilder b = SslContextBuilder.forClient()
          .sslProvider(TlsEngine.current().provider())
          .trustManager(trustSource.get())
          .protocols(baseline.protocols())
          // Only drops a suite the engine does not implement; it never adds one.
          .ciphers(baseline.cipherSuites(), SupportedCipherSuiteFilter.INSTANCE)
          .endpointIdentificationAlgorithm("HTTPS");
      if (clientKey != null) {
        b.keyManager(clientKey);
      }
      context = b.build();
      built.complete(context);
    } catch (SSLException | RuntimeException e) {
      built.completeExceptionally(new IllegalStateException("cannot build the TLS context of "
          + name + ": " + e.getMessage(), e));
    }
  }

  public String name() {
    return name;
  }

  public boolean hasClientCertificate() {
    return clientKey != null;
  }

  /**
   * A client engine for one connection to {@code host} (SNI when it is a name, and the name the
   * certificate must carry), with the profile's handshake timeout. Only once {@link #prepared()}.
   */
  public SslHandler newHandler(ByteBufAllocator alloc, String host, int port) {
    SslContext c = context;
    if (c == null) {
      throw new IllegalStateException("the TLS profile " + name + " is not prepared yet");
    }
    SslHandler h = c.newHandler(alloc, host, port);
    h.setHandshakeTimeoutMillis(handshakeTimeoutMillis);
    return h;
  }

  /** {@code timeouts.handshake} in milliseconds. */
  public long handshakeTimeoutMillis() {
    return handshakeTimeoutMillis;
  }

  /** The configured pins, for {@code explain}. */
  public List<String> pins() {
    return pins.written();
  }
}
