package dev.egret.testing;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * An issued test certificate with its private key. Hand it to a server, write it for a config,
 * or trust it in a client:
 *
 * <pre>
 * TestCert leaf = root.leaf("api.partner.test").issue();
 * TlsTestServer server = TlsTestServer.https(leaf).start();   // presents leaf.chain()
 * PemFiles pem = root.writePem(dir);                           // for tls.trust.pem in a config
 * SSLContext client = root.clientContext();                    // a JDK client trusting root
 * String pin = root.spkiPin();                                 // "sha256/...=" as Egret reads it
 * </pre>
 *
 * <p>{@link #chain()} is what a server sends: this certificate, then its intermediates, never
 * the self-signed root (a root's chain is the root alone).
 */
public final class TestCert {
  /** The password of every key store made here. */
  public static final String PASSWORD = "changeit";

  private final String name;
  private final X509Certificate certificate;
  private final KeyPair keyPair;
  private final KeyKind keyKind;
  private final TestCert issuer;

  TestCert(String name, X509Certificate certificate, KeyPair keyPair, KeyKind keyKind,
      TestCert issuer) {
    this.name = name;
    this.certificate = certificate;
    this.keyPair = keyPair;
    this.keyKind = keyKind;
    this.issuer = issuer;
  }

  /** The written PEM files: the chain (leaf first) and the PKCS#8 private key. */
  public record PemFiles(Path cert, Path key) {}

  /** A CA below this one. Works from any certificate, so a test can misuse a leaf as a CA. */
  public TestPki intermediate(String name) {
    return TestPki.ca(this, name);
  }

  /** A server certificate for {@code host} (a DNS name or an IP literal), issued by this one. */
  public TestPki leaf(String host) {
    return TestPki.leaf(this, host);
  }

  public String name() {
    return name;
  }

  public X509Certificate certificate() {
    return certificate;
  }

  public PrivateKey privateKey() {
    return keyPair.getPrivate();
  }

  public KeyKind keyKind() {
    return keyKind;
  }

  /** The certificate that signed this one; a root is its own issuer. */
  public TestCert issuer() {
    return issuer == null ? this : issuer;
  }

  /** The self-signed root at the top of this certificate's chain. */
  public TestCert root() {
    return issuer == null ? this : issuer.root();
  }

  /** This certificate, then the intermediates up to (not including) the root. */
  public List<X509Certificate> chain() {
    List<X509Certificate> chain = new ArrayList<>();
    chain.add(certificate);
    for (TestCert up = issuer; up != null && up.issuer != null; up = up.issuer) {
      chain.add(up.certificate);
    }
    return List.copyOf(chain);
  }

  /** The SPKI SHA-256 pin of this certificate's key, as {@code sha256/BASE64=}. */
  public String spkiPin() {
    try {
      byte[] hash = MessageDigest.getInstance("SHA-256")
          .digest(certificate.getPublicKey().getEncoded());
      return "sha256/" + Base64.getEncoder().encodeToString(hash);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("the JDK always has SHA-256", e);
    }
  }

  /**
   * Writes {@code <name>.pem} (the chain, leaf first) and {@code <name>-key.pem} (PKCS#8,
   * {@code BEGIN PRIVATE KEY}) into {@code dir}.
   */
  public PemFiles writePem(Path dir) {
    try {
      Files.createDirectories(dir);
      StringBuilder certs = new StringBuilder();
      for (X509Certificate c : chain()) {
        certs.append(pem("CERTIFICATE", c.getEncoded()));
      }
      Path cert = Files.writeString(dir.resolve(fileStem() + ".pem"), certs);
      Path key = Files.writeString(dir.resolve(fileStem() + "-key.pem"),
          pem("PRIVATE KEY", privateKey().getEncoded()));
      return new PemFiles(cert, key);
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalStateException("cannot write PEM files for " + name + " to " + dir, e);
    }
  }

  /** Writes {@code <name>.p12} (key and chain, password {@link #PASSWORD}), e.g. for WireMock. */
  public Path writePkcs12(Path dir) {
    try {
      Files.createDirectories(dir);
      Path file = dir.resolve(fileStem() + ".p12");
      try (OutputStream out = Files.newOutputStream(file)) {
        keyStore().store(out, PASSWORD.toCharArray());
      }
      return file;
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalStateException("cannot write a PKCS#12 file for " + name, e);
    }
  }

  /** A PKCS#12 store holding this key under the alias {@code server}, with {@link #chain()}. */
  public KeyStore keyStore() {
    try {
      KeyStore store = KeyStore.getInstance("PKCS12");
      store.load(null, null);
      store.setKeyEntry("server", privateKey(), PASSWORD.toCharArray(),
          chain().toArray(X509Certificate[]::new));
      return store;
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalStateException("cannot build a key store for " + name, e);
    }
  }

  /** Key managers presenting this certificate's chain, for a server. */
  public KeyManagerFactory keyManagerFactory() {
    try {
      KeyManagerFactory kmf =
          KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(keyStore(), PASSWORD.toCharArray());
      return kmf;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot build key managers for " + name, e);
    }
  }

  /** A PKIX trust manager factory with this certificate as the only trust anchor. */
  public TrustManagerFactory trustManagerFactory() {
    try {
      KeyStore store = KeyStore.getInstance("PKCS12");
      store.load(null, null);
      store.setCertificateEntry("anchor", certificate);
      TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
      tmf.init(store);
      return tmf;
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalStateException("cannot build a trust manager for " + name, e);
    }
  }

  /**
   * A client {@link SSLContext} trusting only this certificate, with the JDK's default checks
   * (as relaxed by test-java.security). Not Egret's verifier: a test client, to check servers.
   */
  public SSLContext clientContext() {
    try {
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(null, trustManagerFactory().getTrustManagers(), null);
      return context;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot build a client context trusting " + name, e);
    }
  }

  private String fileStem() {
    return name.replaceAll("[^A-Za-z0-9._-]", "_");
  }

  private static String pem(String type, byte[] der) {
    String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
        .encodeToString(der);
    return "-----BEGIN " + type + "-----\n" + body + "\n-----END " + type + "-----\n";
  }

  @Override
  public String toString() {
    return "TestCert[" + certificate.getSubjectX500Principal().getName() + ", " + keyKind + "]";
  }
}
