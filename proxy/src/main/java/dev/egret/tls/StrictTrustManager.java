package dev.egret.tls;

import java.net.Socket;
import java.security.InvalidAlgorithmParameterException;
import java.security.KeyStore;
import java.security.NoSuchAlgorithmException;
import java.security.PublicKey;
import java.security.cert.CertPathBuilder;
import java.security.cert.CertPathBuilderException;
import java.security.cert.CertStore;
import java.security.cert.CertificateException;
import java.security.cert.CollectionCertStoreParameters;
import java.security.cert.PKIXBuilderParameters;
import java.security.cert.PKIXCertPathBuilderResult;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.security.interfaces.DSAKey;
import java.security.interfaces.ECKey;
import java.security.interfaces.RSAKey;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * Verifies upstream certificates for one TLS profile. First the JDK's PKIX trust manager checks
 * the chain, validity and the host name (the engine carries the {@code HTTPS} endpoint
 * identification Vert.x sets). Then Egret holds the chain to the documented baseline, which the JDK
 * does not enforce for private CAs: no SHA-1 or MD5 signatures below the root, RSA and DSA keys of
 * at least 2048 bits, EC keys of at least 256. Last, the pins are checked over the verified chain,
 * root included. Every refusal is a {@link CertificateException}, which the failure classifier
 * maps to {@code tls_certificate_error}.
 *
 * <p>Used only as a client (upstream) trust manager; the client-side methods refuse.
 */
public final class StrictTrustManager extends X509ExtendedTrustManager {
  private final X509ExtendedTrustManager pkix;
  private final Set<TrustAnchor> anchors;
  private final Pins pins;

  private StrictTrustManager(X509ExtendedTrustManager pkix, Set<TrustAnchor> anchors, Pins pins) {
    this.pkix = pkix;
    this.anchors = anchors;
    this.pins = pins;
  }

  /**
   * Builds a verifier over the given roots. Reads the JDK's CA file when {@code system} is true,
   * so call it off the event loop (config compilation does).
   *
   * @param system include the JVM's CA set
   * @param extraRoots more trusted roots (PEM files from the config)
   */
  public static StrictTrustManager create(boolean system, List<X509Certificate> extraRoots,
      Pins pins) {
    try {
      List<X509Certificate> roots = new ArrayList<>(extraRoots);
      if (system) {
        TrustManagerFactory sys =
            TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        sys.init((KeyStore) null);
        roots.addAll(Arrays.asList(x509(sys.getTrustManagers()).getAcceptedIssuers()));
      }
      KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
      ks.load(null, null);
      Set<TrustAnchor> anchors = new HashSet<>();
      int i = 0;
      for (X509Certificate root : roots) {
        ks.setCertificateEntry("root-" + i++, root);
        anchors.add(new TrustAnchor(root, null));
      }
      TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
      tmf.init(ks);
      return new StrictTrustManager(x509(tmf.getTrustManagers()), Set.copyOf(anchors), pins);
    } catch (Exception e) {
      throw new IllegalStateException("cannot build the trust store: " + e.getMessage(), e);
    }
  }

  private static X509ExtendedTrustManager x509(TrustManager[] managers) {
    for (TrustManager tm : managers) {
      if (tm instanceof X509ExtendedTrustManager x) {
        return x;
      }
    }
    throw new IllegalStateException("the JDK offered no X509ExtendedTrustManager");
  }

  public Pins pins() {
    return pins;
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    pkix.checkServerTrusted(chain, authType, engine);
    String host = engine == null ? "upstream" : engine.getPeerHost();
    holdToBaseline(host, chain);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
      throws CertificateException {
    pkix.checkServerTrusted(chain, authType, socket);
    holdToBaseline("upstream", chain);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType)
      throws CertificateException {
    // Without an engine the host name cannot be checked; Egret always passes one, so refuse.
    throw new CertificateException("upstream verification needs the TLS engine (host name check)");
  }

  private void holdToBaseline(String host, X509Certificate[] sent) throws CertificateException {
    List<X509Certificate> verified = verifiedChain(sent);
    // verified: leaf first, trust anchor last. Signatures are judged below the root only: a
    // root's self-signature is not what makes it trusted.
    for (int i = 0; i < verified.size(); i++) {
      X509Certificate c = verified.get(i);
      boolean root = i == verified.size() - 1;
      if (!root) {
        String alg = c.getSigAlgName().toUpperCase(Locale.ROOT);
        if (alg.contains("SHA1") || alg.contains("SHA-1") || alg.contains("MD5")
            || alg.contains("MD2")) {
          throw new WeakCertificateException(host + ": certificate '"
              + c.getSubjectX500Principal().getName() + "' is signed with " + c.getSigAlgName()
              + "; SHA-1 and weaker signatures are refused");
        }
      }
      String weak = weakKey(c.getPublicKey());
      if (weak != null) {
        throw new WeakCertificateException(host + ": certificate '"
            + c.getSubjectX500Principal().getName() + "' has " + weak);
      }
    }
    pins.check(host, verified);
  }

  private static String weakKey(PublicKey key) {
    if (key instanceof RSAKey rsa && rsa.getModulus().bitLength() < 2048) {
      return "a " + rsa.getModulus().bitLength() + "-bit RSA key; at least 2048 bits are required";
    }
    if (key instanceof DSAKey dsa && dsa.getParams().getP().bitLength() < 2048) {
      return "a " + dsa.getParams().getP().bitLength() + "-bit DSA key; at least 2048 bits are required";
    }
    if (key instanceof ECKey ec && ec.getParams().getOrder().bitLength() < 256) {
      return "a " + ec.getParams().getOrder().bitLength() + "-bit EC key; at least 256 bits are required";
    }
    return null;
  }

  /**
   * Rebuilds the path the PKIX check accepted, so the baseline and the pins see the root too
   * (servers usually do not send it).
   */
  private List<X509Certificate> verifiedChain(X509Certificate[] sent) throws CertificateException {
    try {
      X509CertSelector target = new X509CertSelector();
      target.setCertificate(sent[0]);
      PKIXBuilderParameters params = new PKIXBuilderParameters(anchors, target);
      params.setRevocationEnabled(false);
      params.addCertStore(CertStore.getInstance("Collection",
          new CollectionCertStoreParameters(Arrays.asList(sent))));
      PKIXCertPathBuilderResult result =
          (PKIXCertPathBuilderResult) CertPathBuilder.getInstance("PKIX").build(params);
      List<X509Certificate> chain = new ArrayList<>();
      for (var c : result.getCertPath().getCertificates()) {
        chain.add((X509Certificate) c);
      }
      chain.add(result.getTrustAnchor().getTrustedCert());
      return chain;
    } catch (CertPathBuilderException | InvalidAlgorithmParameterException
        | NoSuchAlgorithmException e) {
      throw new CertificateException("cannot rebuild the verified chain: " + e.getMessage(), e);
    }
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    throw new CertificateException("Egret's upstream trust manager does not verify clients");
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
      throws CertificateException {
    throw new CertificateException("Egret's upstream trust manager does not verify clients");
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType)
      throws CertificateException {
    throw new CertificateException("Egret's upstream trust manager does not verify clients");
  }

  @Override
  public X509Certificate[] getAcceptedIssuers() {
    return pkix.getAcceptedIssuers();
  }

  /** A chain that verified but falls below the documented signature or key-size baseline. */
  public static final class WeakCertificateException extends CertificateException {
    WeakCertificateException(String message) {
      super(message);
    }
  }
}
