package dev.egret.listener;

import dev.egret.exchange.RequestHead;
import java.nio.charset.StandardCharsets;

/**
 * Byte-level grammar shared by header lines and chunked trailer lines (RFC 9110 section 5.6,
 * RFC 9112 section 5): token characters, field-line syntax and field-value characters.
 */
final class FieldLines {
  static final byte CR = '\r';
  static final byte LF = '\n';
  static final byte SP = ' ';
  static final byte HTAB = '\t';

  private FieldLines() {}

  /** tchar from RFC 9110: what methods, header names and chunk-extension names are made of. */
  static boolean isTokenChar(int b) {
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')) {
      return true;
    }
    return switch (b) {
      case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~' -> true;
      default -> false;
    };
  }

  /** A control character: anything below SP, and DEL. HTAB counts; callers allow it where fit. */
  static boolean isControl(int b) {
    return b < 0x20 || b == 0x7f;
  }

  /**
   * Parses one field line, {@code bytes[from, to)} without its CRLF, as {@code name ":" OWS
   * value OWS}. {@code what} ("header" or "trailer") goes into the refusal's words.
   */
  static RequestHead.Header parse(byte[] bytes, int from, int to, String what) {
    if (from == to) {
      throw Refusals.badRequest("empty " + what + " line");
    }
    if (bytes[from] == SP || bytes[from] == HTAB) {
      throw Refusals.badRequest(
          "obsolete line folding: a " + what + " line starts with white space");
    }
    int colon = -1;
    for (int i = from; i < to; i++) {
      if (bytes[i] == ':') {
        colon = i;
        break;
      }
    }
    if (colon < 0) {
      throw Refusals.badRequest(what + " line without a colon");
    }
    if (colon == from) {
      throw Refusals.badRequest("empty " + what + " name");
    }
    int last = bytes[colon - 1] & 0xff;
    if (last == SP || last == HTAB) {
      // A proxy that trims this and one that does not disagree on the field's name.
      throw Refusals.badRequest("white space before a " + what + "'s colon");
    }
    for (int i = from; i < colon; i++) {
      int b = bytes[i] & 0xff;
      if (isControl(b)) {
        throw Refusals.badRequest("NUL or control character in a " + what + " name");
      }
      if (!isTokenChar(b)) {
        throw Refusals.badRequest(
            "invalid character '" + (char) b + "' in a " + what + " name");
      }
    }
    String name = new String(bytes, from, colon - from, StandardCharsets.US_ASCII);
    int start = colon + 1;
    int end = to;
    while (start < end && (bytes[start] == SP || bytes[start] == HTAB)) {
      start++;
    }
    while (end > start && (bytes[end - 1] == SP || bytes[end - 1] == HTAB)) {
      end--;
    }
    for (int i = start; i < end; i++) {
      int b = bytes[i] & 0xff;
      // field-vchar and obs-text are allowed, HTAB and SP between them; no other control.
      if (b != HTAB && isControl(b)) {
        throw Refusals.badRequest(
            "NUL or control character in the value of " + what + " " + name);
      }
    }
    return new RequestHead.Header(name, new String(bytes, start, end - start,
        StandardCharsets.ISO_8859_1));
  }
}
