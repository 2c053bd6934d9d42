package dev.egret.tunnel;

/**
 * Names for TLS wire versions, as the JDK spells them: {@code TlsVersions.name(0x0303)} is
 * "TLSv1.2", the same string {@code SSLSession.getProtocol()} and {@code tls.minVersion} use.
 */
public final class TlsVersions {
  public static final int SSL_3 = 0x0300;
  public static final int TLS_1_0 = 0x0301;
  public static final int TLS_1_1 = 0x0302;
  public static final int TLS_1_2 = 0x0303;
  public static final int TLS_1_3 = 0x0304;

  private TlsVersions() {}

  /** "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3", else the hex value, e.g. "0x7f1c". */
  public static String name(int version) {
    return switch (version) {
      case SSL_3 -> "SSLv3";
      case TLS_1_0 -> "TLSv1";
      case TLS_1_1 -> "TLSv1.1";
      case TLS_1_2 -> "TLSv1.2";
      case TLS_1_3 -> "TLSv1.3";
      default -> String.format("0x%04x", version & 0xffff);
    };
  }

  /**
   * True for the reserved GREASE values (0x0a0a, 0x1a1a, ... 0xfafa, RFC 8701) that clients
   * sprinkle into version lists so servers keep tolerating unknown values; they name no version.
   */
  public static boolean isGrease(int version) {
    return (version & 0x0f0f) == 0x0a0a && (version >>> 8) == (version & 0xff);
  }
}
