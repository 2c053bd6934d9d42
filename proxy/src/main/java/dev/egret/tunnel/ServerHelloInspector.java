package dev.egret.tunnel;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Objects;
import java.util.Set;

/**
 * Reads an upstream's first bytes in a tunnel until they make one whole ServerHello, then says
 * which TLS version the server chose, so the tunnel can hold it to {@code tls.minVersion}. Create
 * one per tunnel and offer it the server's chunks as they arrive, until the answer is not
 * {@link HelloInspection.NeedMore}; from then on the tunnel relays opaque bytes:
 *
 * <pre>{@code
 * HelloInspection.OfServer seen = inspector.offer(chunk, 0, chunk.length);
 * if (seen instanceof HelloInspection.ServerHello hello && hello.version() < minWireVersion) {
 *   close("server chose " + hello.versionName());
 * }
 * }</pre>
 *
 * <p>The version is the supported_versions extension's choice when present (TLS 1.3 puts 0x0304
 * there and 0x0303 in the legacy field), else the legacy server_version. A HelloRetryRequest
 * counts as a ServerHello: it already carries the chosen version. A server that answers with an
 * alert instead yields {@link HelloInspection.Alert}. The same bounds as
 * {@link ClientHelloInspector} apply: 64 KiB at most, no allocation ahead of the bytes, no
 * exceptions for any content. Not thread-safe: use it from the connection's event loop.
 */
public final class ServerHelloInspector {
  private static final int SERVER_HELLO = 2;
  private static final int SUPPORTED_VERSIONS = 43;

  /** SHA-256 of "HelloRetryRequest": the random of every HelloRetryRequest (RFC 8446 4.1.3). */
  private static final byte[] HELLO_RETRY_RANDOM = {
      (byte) 0xcf, 0x21, (byte) 0xad, 0x74, (byte) 0xe5, (byte) 0x9a, 0x61, 0x11,
      (byte) 0xbe, 0x1d, (byte) 0x8c, 0x02, 0x1e, 0x65, (byte) 0xb8, (byte) 0x91,
      (byte) 0xc2, (byte) 0xa2, 0x11, 0x16, 0x7a, (byte) 0xbb, (byte) 0x8c, 0x5e,
      0x07, (byte) 0x9e, 0x09, (byte) 0xe2, (byte) 0xc8, (byte) 0xa8, 0x33, (byte) 0x9c};

  private final HandshakeReassembler reassembler =
      new HandshakeReassembler(SERVER_HELLO, "ServerHello", true);
  private HelloInspection.OfServer verdict;

  /** Offers a whole chunk; see {@link #offer(byte[], int, int)}. */
  public HelloInspection.OfServer offer(byte[] chunk) {
    return offer(chunk, 0, chunk.length);
  }

  /**
   * Offers the next {@code len} bytes the server sent, starting at {@code chunk[off]}. The bytes
   * are read, not kept.
   *
   * @return NeedMore until a verdict, then the verdict (ServerHello, Alert or Refused) for good
   * @throws IndexOutOfBoundsException only when off and len do not lie within chunk (a caller
   *     bug); never for the content of the bytes
   */
  public HelloInspection.OfServer offer(byte[] chunk, int off, int len) {
    Objects.checkFromIndexSize(off, len, chunk.length);
    if (verdict != null) {
      return verdict;
    }
    try {
      switch (reassembler.feed(chunk, off, len)) {
        case NEED_MORE:
          return HelloInspection.NEED_MORE;
        case ALERT:
          verdict = new HelloInspection.Alert(
              reassembler.alertLevel(), reassembler.alertDescription());
          break;
        default:
          verdict = parse(reassembler.body(), reassembler.bodyLength());
      }
    } catch (HelloRejection e) {
      verdict = e.toResult();
    } catch (RuntimeException e) {
      // As in ClientHelloInspector: a bug here must still end as a verdict, not an exception.
      verdict = new HelloInspection.Malformed(
          "unreadable ServerHello (" + e.getClass().getSimpleName() + ")");
    }
    return verdict;
  }

  /** The verdict so far: NeedMore, or the final answer. */
  public HelloInspection.OfServer result() {
    return verdict == null ? HelloInspection.NEED_MORE : verdict;
  }

  // RFC 8446 4.1.3; TLS 1.0 to 1.2 share the layout, with extensions optional.
  private static HelloInspection.ServerHello parse(byte[] body, int length)
      throws HelloRejection {
    HelloReader in = new HelloReader(body, 0, length);
    int legacyVersion = in.u16("server_version");
    if ((legacyVersion >>> 8) != 3) {
      throw HelloRejection.malformed(
          "ServerHello server_version 0x%04x is not 0x03xx", legacyVersion);
    }
    boolean retry = Arrays.equals(in.bytes(32, "random"), HELLO_RETRY_RANDOM);
    int sessionId = in.u8("legacy_session_id_echo length");
    if (sessionId > 32) {
      throw HelloRejection.malformed("legacy_session_id_echo of %d bytes, at most 32",
          sessionId);
    }
    in.skip(sessionId, "legacy_session_id_echo");
    int cipherSuite = in.u16("cipher_suite");
    in.skip(1, "legacy_compression_method");

    int selected = -1;
    if (in.remaining() > 0) {
      HelloReader extensions = in.slice(in.u16("extensions length"), "extensions");
      in.expectEnd("the ServerHello");
      Set<Integer> seen = new HashSet<>();
      while (extensions.remaining() > 0) {
        int type = extensions.u16("extension type");
        HelloReader data = extensions.slice(extensions.u16("extension length"),
            "extension " + ClientHelloInspector.extensionName(type));
        if (!seen.add(type)) {
          throw HelloRejection.malformed("duplicate %s extension",
              ClientHelloInspector.extensionName(type));
        }
        if (type == SUPPORTED_VERSIONS) {
          // In a ServerHello the extension is a single selected_version.
          selected = data.u16("selected_version");
          data.expectEnd("the supported_versions extension");
        }
      }
    }
    if (retry && selected < 0) {
      throw HelloRejection.malformed("HelloRetryRequest without supported_versions");
    }
    return new HelloInspection.ServerHello(
        selected >= 0 ? selected : legacyVersion, legacyVersion, retry, cipherSuite);
  }
}
