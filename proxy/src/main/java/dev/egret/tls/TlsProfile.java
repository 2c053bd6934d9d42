package dev.egret.tls;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SupportedCipherSuiteFilter;
import java.util.List;
import javax.net.ssl.SSLException;
import javax.net.ssl.X509KeyManager;

/**
 * Everything Egret needs to originate TLS to one rule's hosts: the strict trust manager (chain,
 * host name, baseline, pins), an optional client certificate, and the protocol and cipher suite
 * baseline. Built once when the config is compiled, with the one Netty {@link SslContext} every
 * upstream connection of the profile is made from; upstream pools are kept per profile too, so
 * one rule's pins and trust never serve another's requests.
 */
public final class TlsProfile {
  private final String name;
  private final StrictTrustManager trust;
  private final X509KeyManager clientKey;
  private final SslContext context;
  private final long handshakeTimeoutMillis;

  /**
   * @param name where the profile comes from ("tls" or "allow[3]"), for messages
   * @param trust the verifier
   * @param clientKey the client certificate for mTLS, or null
   * @param baseline protocol versions and cipher suites
   * @param handshakeTimeout {@code timeouts.handshake}, set on each connection's handshake
   */
  public TlsProfile(String name, StrictTrustManager trust, X509KeyManager clientKey,
      TlsBaseline baseline, java.time.Duration handshakeTimeout) {
    this.name = name;
    this.trust = trust;
    this.clientKey = clientKey;
    this.handshakeTimeoutMillis = Math.max(1, handshakeTimeout.toMillis());
    // The host name check is the JDK's (StrictTrustManager asks the PKIX manager with the engine),
    // which reads the engine's endpoint identification: HTTPS, so a certificate must name the host.
    SslContextBuilder b = SslContextBuilder.forClient()
        .sslProvider(TlsEngine.current().provider())
        .trustManager(trust)
        .protocols(baseline.protocols())
        // Only drops a suite the engine does not implement; it never adds one.
        .ciphers(baseline.cipherSuites(), SupportedCipherSuiteFilter.INSTANCE)
        .endpointIdentificationAlgorithm("HTTPS");
    if (clientKey != null) {
      b.keyManager(clientKey);
    }
    try {
      this.context = b.build();
    } catch (SSLException e) {
      throw new IllegalStateException("cannot build the TLS context of " + name + ": "
          + e.getMessage(), e);
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
   * certificate must carry), with the profile's handshake timeout.
   */
  public SslHandler newHandler(ByteBufAllocator alloc, String host, int port) {
    SslHandler h = context.newHandler(alloc, host, port);
    h.setHandshakeTimeoutMillis(handshakeTimeoutMillis);
    return h;
  }

  /** {@code timeouts.handshake} in milliseconds. */
  public long handshakeTimeoutMillis() {
    return handshakeTimeoutMillis;
  }

  /** The configured pins, for {@code explain}. */
  public List<String> pins() {
    return trust.pins().written();
  }
}
