package dev.egret.tls;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.X509KeyManager;

/**
 * Parses PEM certificates and keys for the config. The config reads the files (regular files
 * only, size-capped: {@code config.ConfigFiles}) and hands the bytes here, so that every file a
 * config names is read one way and watched for changes. Messages name the file and say how to
 * fix it.
 */
public final class Pem {
  private static final Pattern BLOCK =
      Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\\s]+)-----END \\1-----");

  private Pem() {}

  /** Every certificate in a PEM file (a CA bundle may hold several). */
  public static List<X509Certificate> certificates(String file, byte[] pem) {
    String text = new String(pem, StandardCharsets.US_ASCII);
    List<X509Certificate> out = new ArrayList<>();
    try {
      CertificateFactory cf = CertificateFactory.getInstance("X.509");
      Matcher m = BLOCK.matcher(text);
      while (m.find()) {
        if (m.group(1).equals("CERTIFICATE")) {
          byte[] der = Base64.getMimeDecoder().decode(m.group(2));
          out.add((X509Certificate) cf.generateCertificate(new ByteArrayInputStream(der)));
        }
      }
    } catch (CertificateException | IllegalArgumentException e) {
      throw new IllegalArgumentException(file + " holds a certificate that cannot be parsed: "
          + e.getMessage());
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException(file + " holds no '-----BEGIN CERTIFICATE-----' block");
    }
    return out;
  }

  /**
   * A key manager for a client certificate: the certificate chain from {@code certFile}, the
   * PKCS#8 private key from {@code keyFile}.
   */
  public static X509KeyManager keyManager(String certFile, byte[] certPem, String keyFile,
      byte[] keyPem) {
    List<X509Certificate> chain = certificates(certFile, certPem);
    PrivateKey key = privateKey(keyFile, keyPem);
    try {
      KeyStore ks = KeyStore.getInstance("PKCS12");
      ks.load(null, null);
      char[] pw = "egret".toCharArray();
      ks.setKeyEntry("client", key, pw, chain.toArray(new X509Certificate[0]));
      KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(ks, pw);
      for (KeyManager km : kmf.getKeyManagers()) {
        if (km instanceof X509KeyManager x) {
          return x;
        }
      }
      throw new IllegalStateException("no X509KeyManager");
    } catch (Exception e) {
      throw new IllegalArgumentException("the key in " + keyFile + " does not fit the certificate in "
          + certFile + ": " + e.getMessage());
    }
  }

  private static PrivateKey privateKey(String file, byte[] pem) {
    String text = new String(pem, StandardCharsets.US_ASCII);
    Matcher m = BLOCK.matcher(text);
    if (!m.find()) {
      throw new IllegalArgumentException(file + " holds no PEM private key block");
    }
    String type = m.group(1);
    if (!type.equals("PRIVATE KEY")) {
      throw new IllegalArgumentException(file + " holds a '" + type + "' block; Egret reads "
          + "unencrypted PKCS#8 keys: convert with 'openssl pkcs8 -topk8 -nocrypt -in "
          + Path.of(file).getFileName() + "'");
    }
    byte[] der = Base64.getMimeDecoder().decode(m.group(2));
    for (String alg : List.of("RSA", "EC", "Ed25519", "RSASSA-PSS")) {
      try {
        return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
      } catch (Exception e) {
        // try the next algorithm
      }
    }
    throw new IllegalArgumentException(file + " holds a private key of an unsupported type; "
        + "use RSA or EC");
  }
}
