package dev.egret.tunnel;

/**
 * IANA names of the cipher suites a tunnel's ServerHello may choose, spelled as the JDK's {@code
 * SSLSession.getCipherSuite()} spells them, so a tunnel's access-log line reads like an upgrade's.
 * Egret does not judge suites inside a tunnel (the client does); this only names them.
 */
final class CipherSuites {
  private CipherSuites() {}

  /** The suite's name, or its code in hex ("0xc0ad") for one not listed here. */
  static String name(int code) {
    return switch (code) {
      case 0x1301 -> "TLS_AES_128_GCM_SHA256";
      case 0x1302 -> "TLS_AES_256_GCM_SHA384";
      case 0x1303 -> "TLS_CHACHA20_POLY1305_SHA256";
      case 0x1304 -> "TLS_AES_128_CCM_SHA256";
      case 0x1305 -> "TLS_AES_128_CCM_8_SHA256";
      case 0xc02b -> "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
      case 0xc02c -> "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";
      case 0xc02f -> "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";
      case 0xc030 -> "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384";
      case 0xcca8 -> "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";
      case 0xcca9 -> "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256";
      case 0x009e -> "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256";
      case 0x009f -> "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384";
      case 0xccaa -> "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256";
      case 0x009c -> "TLS_RSA_WITH_AES_128_GCM_SHA256";
      case 0x009d -> "TLS_RSA_WITH_AES_256_GCM_SHA384";
      case 0xc013 -> "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA";
      case 0xc014 -> "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA";
      case 0xc027 -> "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256";
      case 0x002f -> "TLS_RSA_WITH_AES_128_CBC_SHA";
      case 0x0035 -> "TLS_RSA_WITH_AES_256_CBC_SHA";
      default -> String.format("0x%04x", code & 0xffff);
    };
  }
}
