package dev.egret.tls;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * SPKI SHA-256 pins for one rule, in the form {@code sha256/BASE64=} (as HPKP and OkHttp write
 * them). Get a server's pins with:
 *
 * <pre>
 * openssl s_client -connect HOST:443 -servername HOST &lt;/dev/null \
 *   | openssl x509 -pubkey -noout | openssl pkey -pubin -outform der \
 *   | openssl dgst -sha256 -binary | base64
 * </pre>
 *
 * The check passes when any certificate of the <em>verified</em> chain, root included, has one
 * of the pins; pinning a root or an intermediate survives leaf rotation. Malformed pins are
 * refused when the config is compiled, not when the first request fails.
 *
 * <p>Pinning is dangerous: a pin that no longer matches the server's chain takes the
 * destination down for every task until the config changes. Pin at least two keys (the current
 * one and a backup or the CA's), and watch {@code egret_upstream_tls_handshakes_total} for
 * {@code result="pin_mismatch"} after each certificate rotation.
 */
public final class Pins {
  private final List<String> written;
  private final Set<String> hashes;

  private Pins(List<String> written, Set<String> hashes) {
    this.written = written;
    this.hashes = hashes;
  }

  public static final Pins NONE = new Pins(List.of(), Set.of());

  /** @throws IllegalArgumentException naming the malformed pin and the expected form */
  public static Pins parse(List<String> pins) {
    Set<String> hashes = new HashSet<>();
    for (String pin : pins) {
      hashes.add(parseOne(pin));
    }
    return new Pins(List.copyOf(pins), Set.copyOf(hashes));
  }

  /** Returns the base64 hash of a pin, checking its form. */
  public static String parseOne(String pin) {
    if (!pin.startsWith("sha256/")) {
      throw new IllegalArgumentException(
          "pin '" + pin + "' must start with 'sha256/' followed by the base64 SPKI SHA-256 hash");
    }
    String b64 = pin.substring("sha256/".length());
    byte[] raw;
    try {
      raw = Base64.getDecoder().decode(b64);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("pin '" + pin + "' is not valid base64: " + e.getMessage());
    }
    if (raw.length != 32) {
      throw new IllegalArgumentException("pin '" + pin + "' decodes to " + raw.length
          + " bytes; a SHA-256 hash has 32 (44 base64 characters ending in '=')");
    }
    return Base64.getEncoder().encodeToString(raw);
  }

  public boolean isEmpty() {
    return hashes.isEmpty();
  }

  public List<String> written() {
    return written;
  }

  /** The pin of a certificate's public key, as {@code sha256/BASE64=}. */
  public static String pinOf(X509Certificate cert) {
    try {
      byte[] spki = cert.getPublicKey().getEncoded();
      byte[] hash = MessageDigest.getInstance("SHA-256").digest(spki);
      return "sha256/" + Base64.getEncoder().encodeToString(hash);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK always has SHA-256", e);
    }
  }

  /**
   * Checks the verified chain (leaf first, trust anchor last).
   *
   * @throws PinMismatchException listing the chain's pins beside the configured ones
   */
  public void check(String host, List<X509Certificate> verifiedChain) throws PinMismatchException {
    if (hashes.isEmpty()) {
      return;
    }
    List<String> chainPins = new ArrayList<>();
    for (X509Certificate c : verifiedChain) {
      String pin = pinOf(c);
      if (hashes.contains(pin.substring("sha256/".length()))) {
        return;
      }
      chainPins.add(pin + " (" + c.getSubjectX500Principal().getName() + ")");
    }
    throw new PinMismatchException("certificate pinning failure for " + host
        + ": the verified chain has " + String.join(", ", chainPins)
        + "; the rule pins " + String.join(", ", written));
  }

  /** A chain that verified but holds none of the configured pins. */
  public static final class PinMismatchException extends CertificateException {
    public PinMismatchException(String message) {
      super(message);
    }
  }
}
