package dev.egret.tunnel;

import java.util.List;
import java.util.Map;

/**
 * What a {@link ClientHelloInspector} or {@link ServerHelloInspector} has learned so far from a
 * tunnel's first bytes. Test the value with {@code instanceof}:
 *
 * <pre>{@code
 * HelloInspection.OfClient seen = inspector.offer(bytes);
 * if (seen instanceof HelloInspection.ClientHello hello) { compare(hello.sni(), connectHost); }
 * else if (seen instanceof HelloInspection.Refused refused) { close(refused.reason()); }
 * // else NeedMore: keep holding the bytes and wait for the next chunk
 * }</pre>
 *
 * <p>{@link OfClient} and {@link OfServer} list which values each inspector can return, so the
 * compiler knows a client-side inspection never yields an {@link Alert}. Every value is
 * immutable, and every value other than {@link NeedMore} is final: the inspector returns it
 * again for any later bytes.
 */
public sealed interface HelloInspection {

  /** The one {@link NeedMore} value. */
  NeedMore NEED_MORE = new NeedMore();

  /** True once the inspection has a verdict, i.e. for everything except {@link NeedMore}. */
  default boolean done() {
    return !(this instanceof NeedMore);
  }

  /** What {@link ClientHelloInspector#offer} returns. */
  sealed interface OfClient extends HelloInspection permits NeedMore, ClientHello, Refused {}

  /** What {@link ServerHelloInspector#offer} returns. */
  sealed interface OfServer extends HelloInspection
      permits NeedMore, ServerHello, Alert, Refused {}

  /** The bytes were not a TLS hello; {@link #reason()} is one sentence for the log. */
  sealed interface Refused extends OfClient, OfServer permits NotTls, Malformed {
    String reason();
  }

  /** The hello is not complete yet: hold the bytes and offer the next chunk. */
  record NeedMore() implements OfClient, OfServer {}

  /**
   * A whole, well-formed ClientHello.
   *
   * @param sni the server_name host, lower-cased ASCII as sent (a trailing dot kept; the caller
   *     normalises), or null when the client sent no server_name extension
   * @param legacyVersion the ClientHello's legacy_version field, e.g. 0x0303
   * @param supportedVersions the supported_versions extension's list in the client's order,
   *     GREASE values included ({@link TlsVersions#isGrease}); empty when the extension is absent
   * @param encryptedHello the code of the extension that encrypts the real hello, or -1: 0xfe0d
   *     ({@code encrypted_client_hello}), a draft's 0xfe0a or 0xfe0c, or ESNI's 0xffce. With one
   *     of them the real server name is hidden, and the SNI above is only the outer, public one
   * @param earlyData the hello offers TLS 1.3 0-RTT data ({@code early_data}), which may follow
   *     it as application data records before the ServerHello
   */
  record ClientHello(String sni, int legacyVersion, List<Integer> supportedVersions,
      int encryptedHello, boolean earlyData) implements OfClient {
    public ClientHello {
      supportedVersions = List.copyOf(supportedVersions);
    }

    /** The hello hides its real destination (ECH, one of its drafts, or ESNI). */
    public boolean encryptedClientHello() {
      return encryptedHello >= 0;
    }

    /** The highest version offered: the best non-GREASE supported_versions entry, else legacy. */
    public int highestVersion() {
      return supportedVersions.stream()
          .filter(v -> !TlsVersions.isGrease(v))
          .max(Integer::compare)
          .orElse(legacyVersion);
    }
  }

  /**
   * A whole, well-formed ServerHello (or HelloRetryRequest, which the TLS 1.3 wire format makes
   * a ServerHello with a fixed random).
   *
   * @param version the negotiated version: supported_versions' selected_version when present
   *     (0x0304 for TLS 1.3), else the legacy server_version
   * @param legacyVersion the ServerHello's legacy server_version field
   * @param helloRetryRequest true when the server asked the client to retry with another key
   *     share; the version is already decided by then
   * @param cipherSuite the IANA code of the suite the server chose, e.g. 0x1301
   */
  record ServerHello(int version, int legacyVersion, boolean helloRetryRequest, int cipherSuite)
      implements OfServer {
    /** The JDK's name for the negotiated version, e.g. "TLSv1.3". */
    public String versionName() {
      return TlsVersions.name(version);
    }

    /** The suite's IANA name, e.g. "TLS_AES_128_GCM_SHA256", for the access log. */
    public String cipherName() {
      return CipherSuites.name(cipherSuite);
    }
  }

  /**
   * The server's first record was a TLS alert instead of a ServerHello: usually it refused the
   * ClientHello (no shared version or cipher, unknown SNI).
   *
   * @param level 1 warning, 2 fatal
   * @param description the alert code (RFC 8446 section 6), e.g. 70 protocol_version
   */
  record Alert(int level, int description) implements OfServer {
    private static final Map<Integer, String> NAMES = Map.ofEntries(
        Map.entry(0, "close_notify"),
        Map.entry(10, "unexpected_message"),
        Map.entry(20, "bad_record_mac"),
        Map.entry(22, "record_overflow"),
        Map.entry(40, "handshake_failure"),
        Map.entry(42, "bad_certificate"),
        Map.entry(43, "unsupported_certificate"),
        Map.entry(44, "certificate_revoked"),
        Map.entry(45, "certificate_expired"),
        Map.entry(46, "certificate_unknown"),
        Map.entry(47, "illegal_parameter"),
        Map.entry(48, "unknown_ca"),
        Map.entry(49, "access_denied"),
        Map.entry(50, "decode_error"),
        Map.entry(51, "decrypt_error"),
        Map.entry(70, "protocol_version"),
        Map.entry(71, "insufficient_security"),
        Map.entry(80, "internal_error"),
        Map.entry(86, "inappropriate_fallback"),
        Map.entry(90, "user_canceled"),
        Map.entry(109, "missing_extension"),
        Map.entry(110, "unsupported_extension"),
        Map.entry(112, "unrecognized_name"),
        Map.entry(113, "bad_certificate_status_response"),
        Map.entry(115, "unknown_psk_identity"),
        Map.entry(116, "certificate_required"),
        Map.entry(120, "no_application_protocol"));

    public boolean fatal() {
      return level == 2;
    }

    /** The RFC name of the description, e.g. "handshake_failure", or "alert_N" if unknown. */
    public String descriptionName() {
      return NAMES.getOrDefault(description, "alert_" + description);
    }
  }

  /**
   * The bytes are some other protocol: plaintext HTTP, an SSLv2-style hello, a record that is
   * not a handshake, or a handshake that does not start with the expected hello.
   */
  record NotTls(String reason) implements Refused {}

  /**
   * The bytes start like TLS but break its rules: inconsistent lengths, truncated blocks, a bad
   * server_name, or a hello larger than the inspector will hold.
   */
  record Malformed(String reason) implements Refused {}
}
