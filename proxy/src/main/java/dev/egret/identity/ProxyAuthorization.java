package dev.egret.identity;

import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Locale;

/**
 * Reads one {@code Proxy-Authorization} value: {@code Basic base64(name:token)}, as {@code
 * HTTPS_PROXY=http://name:token@gateway:3128} makes clients send, or {@code Bearer token}.
 * Anything else is malformed. The token is a secret: no message here contains it, and the
 * caller hashes it at once.
 */
final class ProxyAuthorization {
  /** A readable value: the user name Basic named (null for Bearer) and the token. */
  record Presented(String user, String token) {}

  /** Why a value could not be read, in words that never quote it. */
  static final class Malformed extends Exception {
    Malformed(String message) {
      super(message, null, false, false);
    }
  }

  private ProxyAuthorization() {}

  static Presented parse(String value) throws Malformed {
    String v = value.strip();
    int space = v.indexOf(' ');
    if (space <= 0) {
      throw new Malformed("Proxy-Authorization must be 'Basic <base64 of name:token>' or "
          + "'Bearer <token>'");
    }
    String scheme = v.substring(0, space).toLowerCase(Locale.ROOT);
    String rest = v.substring(space + 1).strip();
    if (rest.isEmpty() || rest.indexOf(' ') >= 0) {
      throw new Malformed("Proxy-Authorization " + scheme + " needs exactly one credential "
          + "after the scheme");
    }
    return switch (scheme) {
      case "basic" -> basic(rest);
      case "bearer" -> new Presented(null, rest);
      default -> throw new Malformed("Proxy-Authorization scheme '" + printable(scheme)
          + "' is not one Egret accepts; use Basic (name:token) or Bearer");
    };
  }

  private static Presented basic(String encoded) throws Malformed {
    byte[] raw;
    try {
      raw = Base64.getDecoder().decode(encoded);
    } catch (IllegalArgumentException e) {
      throw new Malformed("Proxy-Authorization Basic credential is not valid base64");
    }
    String pair;
    try {
      pair = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(java.nio.ByteBuffer.wrap(raw)).toString();
    } catch (CharacterCodingException e) {
      throw new Malformed("Proxy-Authorization Basic credential is not UTF-8 text");
    }
    int colon = pair.indexOf(':');
    if (colon < 0 || colon == pair.length() - 1) {
      throw new Malformed("Proxy-Authorization Basic credential must be name:token with a "
          + "non-empty token");
    }
    return new Presented(pair.substring(0, colon), pair.substring(colon + 1));
  }

  private static String printable(String s) {
    String cut = s.length() > 20 ? s.substring(0, 20) : s;
    return cut.replaceAll("[^A-Za-z0-9_.-]", "?");
  }
}
