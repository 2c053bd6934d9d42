package dev.egret.tls;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The upstream TLS floor: today's browser baseline, stricter than the JDK's defaults. TLS 1.2 or
 * 1.3 only, and only AEAD suites with forward secrecy over elliptic curves. Finite-field DHE is
 * not offered at all (as in Chrome): the JDK would accept a 1024-bit DHE group, and a server that
 * only speaks DHE today is a server to fix. The config can raise {@code minVersion} to 1.3; it
 * cannot loosen anything here.
 */
public record TlsBaseline(Set<String> protocols, List<String> cipherSuites) {

  private static final List<String> TLS13 =
      List.of("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256");

  private static final List<String> TLS12_ECDHE_AEAD = List.of(
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256");

  /** The baseline for {@code tls.minVersion}: "TLSv1.2" or "TLSv1.3". */
  public static TlsBaseline forMinVersion(String minVersion) {
    if (minVersion.equals("TLSv1.3")) {
      return new TlsBaseline(Set.of("TLSv1.3"), TLS13);
    }
    if (minVersion.equals("TLSv1.2")) {
      Set<String> protocols = new LinkedHashSet<>(List.of("TLSv1.3", "TLSv1.2"));
      List<String> suites = new java.util.ArrayList<>(TLS13);
      suites.addAll(TLS12_ECDHE_AEAD);
      return new TlsBaseline(protocols, List.copyOf(suites));
    }
    throw new IllegalArgumentException(
        "TLS version '" + minVersion + "' is not accepted; use TLSv1.2 or TLSv1.3");
  }

  /** The lowest version allowed, as the wire's two-byte value (0x0303 for TLS 1.2). */
  public int minWireVersion() {
    return protocols.contains("TLSv1.2") ? 0x0303 : 0x0304;
  }
}
