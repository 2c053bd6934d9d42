package dev.egret.tunnel;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;

/**
 * Reads a tunnel client's first bytes until they make one whole ClientHello, then says what it
 * asked for. Create one per CONNECT tunnel and offer it each chunk as it arrives, holding the
 * chunks back from the upstream until the answer is not {@link HelloInspection.NeedMore}:
 *
 * <pre>{@code
 * ClientHelloInspector inspector = new ClientHelloInspector();
 * HelloInspection.OfClient seen = inspector.offer(chunk, 0, chunk.length);
 * if (seen instanceof HelloInspection.ClientHello hello) { ... compare hello.sni() ... }
 * }</pre>
 *
 * <p>The hello may span several TLS records and any number of TCP segments. Everything is
 * bounded: the inspector reads at most 64 KiB before answering "too large", allocates only for
 * bytes that arrived, and {@code offer} returns a value for any bytes rather than throwing.
 * Once it has answered, it returns that same answer for any later chunk without reading it.
 * Not thread-safe: use it from the connection's event loop.
 */
public final class ClientHelloInspector {
  private static final int CLIENT_HELLO = 1;
  private static final int SERVER_NAME = 0;
  private static final int SUPPORTED_VERSIONS = 43;
  private static final int EARLY_DATA = 42;
  /** draft-ietf-tls-esni's encrypted_client_hello, as Chrome and Firefox send it. */
  private static final int ENCRYPTED_CLIENT_HELLO = 0xfe0d;
  /**
   * Every extension that hides the real destination behind the outer SNI: the final ECH code
   * and the earlier drafts' (0xfe0a drafts 8 and 9, 0xfe0c drafts 10 to 12), still spoken by some
   * clients and servers, and ESNI's encrypted_server_name (0xffce). An allow-list of one code would let
   * a draft through, so all of them count as encrypted_client_hello.
   */
  private static final Set<Integer> HIDDEN_DESTINATION = Set.of(
      ENCRYPTED_CLIENT_HELLO, 0xfe0a, 0xfe0c, 0xffce);
  private static final int HOST_NAME = 0;
  private static final int MAX_HOST = 253;
  private static final int MAX_LABEL = 63;

  private final HandshakeReassembler reassembler =
      new HandshakeReassembler(CLIENT_HELLO, "ClientHello", false);
  private HelloInspection.OfClient verdict;

  /** Offers a whole chunk; see {@link #offer(byte[], int, int)}. */
  public HelloInspection.OfClient offer(byte[] chunk) {
    return offer(chunk, 0, chunk.length);
  }

  /**
   * Offers the next {@code len} bytes the client sent, starting at {@code chunk[off]}. The bytes
   * are read, not kept: the caller holds them for forwarding.
   *
   * @return NeedMore until a verdict, then the verdict (a ClientHello or a Refused) for good
   * @throws IndexOutOfBoundsException only when off and len do not lie within chunk (a caller
   *     bug); never for the content of the bytes
   */
  public HelloInspection.OfClient offer(byte[] chunk, int off, int len) {
    Objects.checkFromIndexSize(off, len, chunk.length);
    if (verdict != null) {
      return verdict;
    }
    try {
      if (reassembler.feed(chunk, off, len) == HandshakeReassembler.Progress.NEED_MORE) {
        return HelloInspection.NEED_MORE;
      }
      verdict = parse(reassembler.body(), reassembler.bodyLength());
    } catch (HelloRejection e) {
      verdict = e.toResult();
    } catch (RuntimeException e) {
      // The readers check every length, so this is a bug here; the peer still gets a verdict
      // rather than an exception on the event loop.
      verdict = new HelloInspection.Malformed(
          "unreadable ClientHello (" + e.getClass().getSimpleName() + ")");
    }
    return verdict;
  }

  /** The verdict so far: NeedMore, or the final answer. */
  public HelloInspection.OfClient result() {
    return verdict == null ? HelloInspection.NEED_MORE : verdict;
  }

  // RFC 8446 4.1.2, which keeps the TLS 1.2 layout on the wire.
  private static HelloInspection.ClientHello parse(byte[] body, int length)
      throws HelloRejection {
    HelloReader in = new HelloReader(body, 0, length);
    int legacyVersion = in.u16("legacy_version");
    if ((legacyVersion >>> 8) != 3) {
      throw HelloRejection.malformed(
          "ClientHello legacy_version 0x%04x is not 0x03xx", legacyVersion);
    }
    in.skip(32, "random");
    int sessionId = in.u8("legacy_session_id length");
    if (sessionId > 32) {
      throw HelloRejection.malformed("legacy_session_id of %d bytes, at most 32", sessionId);
    }
    in.skip(sessionId, "legacy_session_id");
    int suites = in.u16("cipher_suites length");
    if (suites < 2 || suites % 2 != 0) {
      throw HelloRejection.malformed("cipher_suites length %d is not a positive even number",
          suites);
    }
    in.skip(suites, "cipher_suites");
    int compression = in.u8("legacy_compression_methods length");
    if (compression < 1) {
      throw HelloRejection.malformed("no legacy_compression_methods");
    }
    in.skip(compression, "legacy_compression_methods");
    if (in.remaining() == 0) {
      // A TLS 1.2 client may send no extensions at all.
      return new HelloInspection.ClientHello(null, legacyVersion, List.of(), -1, false);
    }
    HelloReader extensions = in.slice(in.u16("extensions length"), "extensions");
    in.expectEnd("the ClientHello");

    String sni = null;
    List<Integer> versions = List.of();
    Set<Integer> seen = new HashSet<>();
    int encryptedHello = -1;
    while (extensions.remaining() > 0) {
      int type = extensions.u16("extension type");
      HelloReader data = extensions.slice(extensions.u16("extension length"),
          "extension " + extensionName(type));
      if (!seen.add(type)) {
        // RFC 8446 4.2: at most one of each; two server_names could fool a check on one.
        throw HelloRejection.malformed("duplicate %s extension", extensionName(type));
      }
      if (HIDDEN_DESTINATION.contains(type) && encryptedHello < 0) {
        encryptedHello = type;
      }
      if (type == SERVER_NAME) {
        sni = serverName(data);
      } else if (type == SUPPORTED_VERSIONS) {
        versions = supportedVersions(data);
      }
    }
    return new HelloInspection.ClientHello(sni, legacyVersion, versions, encryptedHello,
        seen.contains(EARLY_DATA));
  }

  // RFC 6066 section 3.
  private static String serverName(HelloReader data) throws HelloRejection {
    HelloReader list = data.slice(data.u16("server_name list length"), "server_name list");
    data.expectEnd("the server_name extension");
    if (list.remaining() == 0) {
      throw HelloRejection.malformed("empty server_name list");
    }
    int nameType = list.u8("server_name type");
    if (nameType != HOST_NAME) {
      throw HelloRejection.malformed("server_name type %d is not host_name (0)", nameType);
    }
    int length = list.u16("host_name length");
    if (length == 0) {
      throw HelloRejection.malformed("empty server_name host");
    }
    byte[] host = list.bytes(length, "host_name");
    if (list.remaining() > 0) {
      throw HelloRejection.malformed("server_name lists more than one name");
    }
    checkHost(host);
    return new String(host, StandardCharsets.US_ASCII).toLowerCase(Locale.ROOT);
  }

  /**
   * Letters, digits, '-', '_' and dots between non-empty labels; one trailing dot is let
   * through for the caller's normalisation. Anything else (NUL, '%', ':', spaces, non-ASCII)
   * could make the name compare differently here and at the upstream.
   */
  private static void checkHost(byte[] host) throws HelloRejection {
    int length = host.length;
    if (host[length - 1] == '.') {
      length--;
    }
    if (length == 0 || length > MAX_HOST) {
      throw HelloRejection.malformed("server_name host of %d bytes, must be 1 to %d",
          host.length, MAX_HOST);
    }
    int label = 0;
    for (int i = 0; i < length; i++) {
      int c = host[i] & 0xff;
      if (c == '.') {
        if (label == 0) {
          throw HelloRejection.malformed("server_name host has an empty label");
        }
        label = 0;
        continue;
      }
      boolean allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
          || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!allowed) {
        throw HelloRejection.malformed(
            "server_name host has byte 0x%02x at index %d, not a host name character", c, i);
      }
      if (++label > MAX_LABEL) {
        throw HelloRejection.malformed("server_name host has a label over %d bytes", MAX_LABEL);
      }
    }
    if (label == 0) {
      throw HelloRejection.malformed("server_name host has an empty label");
    }
  }

  // RFC 8446 4.2.1: ProtocolVersion versions<2..254>.
  private static List<Integer> supportedVersions(HelloReader data) throws HelloRejection {
    int length = data.u8("supported_versions length");
    if (length < 2 || length % 2 != 0) {
      throw HelloRejection.malformed(
          "supported_versions length %d is not a positive even number", length);
    }
    HelloReader list = data.slice(length, "supported_versions");
    data.expectEnd("the supported_versions extension");
    List<Integer> versions = new ArrayList<>(length / 2);
    while (list.remaining() > 0) {
      versions.add(list.u16("supported version"));
    }
    return versions;
  }

  static String extensionName(int type) {
    return switch (type) {
      case SERVER_NAME -> "server_name";
      case SUPPORTED_VERSIONS -> "supported_versions";
      case EARLY_DATA -> "early_data";
      case ENCRYPTED_CLIENT_HELLO -> "encrypted_client_hello";
      case 0xfe0a, 0xfe0c -> String.format("encrypted_client_hello (draft code 0x%04x)", type);
      case 0xffce -> "encrypted_server_name (ESNI, 0xffce)";
      default -> String.format("0x%04x", type);
    };
  }
}
