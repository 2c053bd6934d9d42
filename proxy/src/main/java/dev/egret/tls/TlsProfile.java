package dev.egret.tls;

import io.vertx.core.net.ClientSSLOptions;
import io.vertx.core.net.KeyCertOptions;
import io.vertx.core.net.TrustOptions;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.X509KeyManager;

/**
 * Everything Egret needs to originate TLS to one rule's hosts: the strict trust manager (chain,
 * host name, baseline, pins), an optional client certificate, and the protocol and cipher suite
 * baseline. Built once when the config is compiled; its {@link ClientSSLOptions} instance is
 * reused for every request so Vert.x keeps one SSL context and one connection pool per profile.
 */
public final class TlsProfile {
  private final String name;
  private final StrictTrustManager trust;
  private final X509KeyManager clientKey;
  private final ClientSSLOptions sslOptions;

  /**
   * @param name where the profile comes from ("tls" or "allow[3]"), for messages
   * @param trust the verifier
   * @param clientKey the client certificate for mTLS, or null
   * @param baseline protocol versions and cipher suites
   * @param handshakeTimeout {@code timeouts.handshake}; Vert.x reads it from these options
   */
  public TlsProfile(String name, StrictTrustManager trust, X509KeyManager clientKey,
      TlsBaseline baseline, java.time.Duration handshakeTimeout) {
    this.name = name;
    this.trust = trust;
    this.clientKey = clientKey;
    ClientSSLOptions o = new ClientSSLOptions()
        .setTrustOptions(TrustOptions.wrap(trust))
        .setHostnameVerificationAlgorithm("HTTPS")
        .setEnabledSecureTransportProtocols(baseline.protocols())
        .setUseAlpn(false)
        .setSslHandshakeTimeout(Math.max(1, handshakeTimeout.toMillis()))
        .setSslHandshakeTimeoutUnit(java.util.concurrent.TimeUnit.MILLISECONDS);
    for (String suite : new ArrayList<>(baseline.cipherSuites())) {
      o.addEnabledCipherSuite(suite);
    }
    if (clientKey != null) {
      o.setKeyCertOptions(KeyCertOptions.wrap(clientKey));
    }
    this.sslOptions = o;
  }

  public String name() {
    return name;
  }

  public boolean hasClientCertificate() {
    return clientKey != null;
  }

  /**
   * The options to put on each upstream request; one instance per profile, never copied. Each
   * profile wraps its own trust manager, so Vert.x keeps a separate SSL context and pool per
   * profile: that is what keeps one rule's pins and trust from serving another's requests.
   */
  public ClientSSLOptions sslOptions() {
    return sslOptions;
  }

  /** The configured pins, for {@code explain}. */
  public List<String> pins() {
    return trust.pins().written();
  }
}
