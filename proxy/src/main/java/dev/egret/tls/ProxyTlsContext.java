package dev.egret.tls;

import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.net.ssl.SSLException;
import javax.net.ssl.X509KeyManager;

/**
 * The server-side TLS context of the proxy port when it speaks TLS ({@code listen.proxyTls}):
 * Egret's own certificate, TLS 1.3 and 1.2 only, and client certificates verified by the JDK's
 * PKIX trust manager against the configured client CAs (chain, validity, and an extended key
 * usage that allows client authentication). Usage: {@code ProxyTlsContext.server(key, cas, true)}
 * once per config load; {@code context.newHandler(alloc)} per connection.
 *
 * <p>The JDK's engine, not BoringSSL: a client certificate that fails verification then fails
 * the handshake with a {@link java.security.cert.CertificateException} in the cause chain, which
 * is how the listener tells an untrusted certificate from any other handshake failure.
 */
public final class ProxyTlsContext {
  private ProxyTlsContext() {}

  /**
   * @param askForCertificate whether the handshake asks for a client certificate; one that is
   *     sent must verify, and whether one is required is the listener's check afterwards
   * @throws IllegalArgumentException when the key and CAs do not make a context
   */
  public static SslContext server(X509KeyManager key, List<X509Certificate> clientCa,
      boolean askForCertificate) {
    SslContextBuilder b = SslContextBuilder.forServer(key)
        .sslProvider(SslProvider.JDK)
        .protocols("TLSv1.3", "TLSv1.2")
        .clientAuth(askForCertificate ? ClientAuth.OPTIONAL : ClientAuth.NONE);
    if (askForCertificate) {
      b.trustManager(clientCa.toArray(new X509Certificate[0]));
    }
    try {
      return b.build();
    } catch (SSLException | RuntimeException e) {
      throw new IllegalArgumentException("cannot build the proxy port's TLS context: "
          + e.getMessage(), e);
    }
  }
}
