package dev.egret.testing;

import java.security.InvalidAlgorithmParameterException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.NoSuchAlgorithmException;
import java.security.Provider;
import java.security.spec.ECGenParameterSpec;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.bouncycastle.jce.provider.BouncyCastleProvider;

/**
 * The key a test certificate carries: {@code TestPki.rootCa("R").key(KeyKind.RSA_1024).issue()}.
 *
 * <p>The JDK 17 in use cannot generate EC keys below P-256 ({@code Curve not supported}), so
 * {@link #EC_P224} and {@link #EC_P192} come from a BouncyCastle provider instance (never
 * registered JVM-wide). The JDK parses their public keys, so they can sit in a chain handed to a
 * trust manager; but no JDK TLS server can sign a handshake with them, and no JDK verifier can
 * check a signature they made. Use them as <em>leaf</em> keys in direct trust-manager tests only.
 * test-java.security lowers the JDK's EC floor to 160 bits, so the JDK's checks pass both and
 * Egret's 256-bit floor is what refuses them.
 */
public enum KeyKind {
  RSA_1024("RSA", 1024, null, false),
  RSA_2048("RSA", 2048, null, false),
  EC_P256("EC", 256, "secp256r1", false),
  EC_P384("EC", 384, "secp384r1", false),
  EC_P224("EC", 224, "secp224r1", true),
  EC_P192("EC", 192, "secp192r1", true);

  private static final Provider BOUNCY_CASTLE = new BouncyCastleProvider();

  /**
   * Generated keys, shared by every test in the JVM. RSA generation costs hundreds of
   * milliseconds on the shared build machine, so each (kind, slot) is made once per run.
   */
  private static final Map<String, KeyPair> CACHE = new ConcurrentHashMap<>();

  private final String algorithm;
  private final int bits;
  private final String curve;
  private final boolean bouncyCastleOnly;

  KeyKind(String algorithm, int bits, String curve, boolean bouncyCastleOnly) {
    this.algorithm = algorithm;
    this.bits = bits;
    this.curve = curve;
    this.bouncyCastleOnly = bouncyCastleOnly;
  }

  public String algorithm() {
    return algorithm;
  }

  public int bits() {
    return bits;
  }

  /** True when only a BouncyCastle provider can use the private key (see the class doc). */
  public boolean bouncyCastleOnly() {
    return bouncyCastleOnly;
  }

  /** The signature algorithm a CA with this key signs with unless told otherwise. */
  String defaultSignature() {
    return algorithm.equals("RSA") ? "SHA256withRSA" : "SHA256withECDSA";
  }

  /** The key pair for a slot; the same slot always gets the same pair within one JVM. */
  KeyPair keyPair(String slot) {
    return CACHE.computeIfAbsent(name() + "/" + slot, k -> generate());
  }

  private KeyPair generate() {
    try {
      KeyPairGenerator generator = bouncyCastleOnly
          ? KeyPairGenerator.getInstance(algorithm, BOUNCY_CASTLE)
          : KeyPairGenerator.getInstance(algorithm);
      if (curve == null) {
        generator.initialize(bits);
      } else {
        generator.initialize(new ECGenParameterSpec(curve));
      }
      return generator.generateKeyPair();
    } catch (NoSuchAlgorithmException | InvalidAlgorithmParameterException e) {
      throw new IllegalStateException("cannot generate a " + this + " key", e);
    }
  }

  static Provider bouncyCastle() {
    return BOUNCY_CASTLE;
  }
}
