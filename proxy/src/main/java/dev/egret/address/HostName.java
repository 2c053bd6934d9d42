package dev.egret.address;

import java.net.IDN;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Locale;

/**
 * Host name normalisation: the one function that turns a request host (URL, CONNECT target,
 * SNI) and a config host pattern into the form they are compared in, so the two sides can never
 * be read differently. Lower case; one trailing dot removed; the IDNA label separators U+3002,
 * U+FF0E and U+FF61 read as dots; each label as punycode; IPv6 literals without brackets in one
 * spelling. Refused: an empty label ({@code a..b}, {@code host..}), and a name whose last label
 * is numeric but that is not a canonical dotted quad ({@code 2130706433}, {@code 0x7f.1},
 * {@code 127.0.0.1.}), because URL parsers read those as addresses and DNS does not.
 */
public final class HostName {
  /** RFC 1035: a name of at most 253 characters in text form, labels of at most 63. */
  private static final int MAX_NAME = 253;
  private static final int MAX_LABEL = 63;

  private HostName() {}

  /**
   * Normalises a host as written in a URL, a CONNECT target, an SNI or the config.
   *
   * @throws IllegalArgumentException with a message naming the problem, when the host is not a
   *     valid host name or IP literal
   */
  public static String normalize(String host) {
    // Both checks are one pass without allocating; a canonical dotted quad is its own form.
    return canonical(host) || isDottedQuad(host) ? host : String.join(".", labels(host, false));
  }

  /**
   * True when {@code host} is already what {@link #labels} would make of it, checked in one
   * pass without allocating: lower-case letters, digits and inner hyphens, labels of 1 to 63,
   * at most 253 in all, no trailing dot, and a last label that starts with a letter (so it can
   * be neither a number nor an IPv4 literal). That is nearly every host on the request path; the
   * rest take the full path, which also explains what is wrong.
   */
  private static boolean canonical(String host) {
    int n = host.length();
    if (n == 0 || n > MAX_NAME) {
      return false;
    }
    int labelStart = 0;
    for (int i = 0; i <= n; i++) {
      char c = i == n ? '.' : host.charAt(i);
      if (c == '.') {
        int len = i - labelStart;
        if (len == 0 || len > MAX_LABEL || host.charAt(i - 1) == '-') {
          return false;
        }
        labelStart = i + 1;
      } else if (c == '-') {
        if (i == labelStart) {
          return false;
        }
      } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
        return false;
      }
    }
    char lastFirst = host.charAt(host.lastIndexOf('.') + 1);
    return lastFirst >= 'a' && lastFirst <= 'z';
  }

  /**
   * The normalised labels of a host, or of a host pattern when {@code wildcards} is set: then a
   * label that is exactly {@code *} or {@code **} is kept as it is (where they may stand is the
   * pattern's rule, {@link HostPattern}), and any other label holding a {@code *} is refused. An
   * IP literal comes back as one element.
   *
   * @throws IllegalArgumentException naming the problem
   */
  public static String[] labels(String host, boolean wildcards) {
    String h = host;
    if (h.startsWith("[") && h.endsWith("]")) {
      h = h.substring(1, h.length() - 1);
      if (h.indexOf(':') < 0) {
        // "[a.example]" is no name: brackets hold an IPv6 literal and nothing else.
        throw new IllegalArgumentException("'" + host + "' has brackets, which hold only an IPv6 "
            + "literal ([2001:db8::1]); write a name or an IPv4 address without them");
      }
    }
    if (h.indexOf(':') >= 0) {
      return new String[] {ipv6(h)};
    }
    // UTS #46 reads these as full stops; read them so before splitting, or "evil\u3002example"
    // is one label in a pattern and two in IDN.toASCII.
    h = h.replace('\u3002', '.').replace('\uFF0E', '.').replace('\uFF61', '.');
    boolean rootDot = h.endsWith(".");
    if (rootDot) {
      h = h.substring(0, h.length() - 1); // the root label: "example.com." is example.com
    }
    if (h.isEmpty()) {
      throw new IllegalArgumentException("empty host name");
    }
    String[] labels = h.split("\\.", -1);
    for (int i = 0; i < labels.length; i++) {
      String label = labels[i];
      if (label.isEmpty()) {
        throw new IllegalArgumentException("'" + host + "' has an empty label (two dots in a "
            + "row, or a leading dot); a host name has one dot between labels and at most one "
            + "at the end");
      }
      if (wildcards && (label.equals("*") || label.equals("**"))) {
        continue;
      }
      if (wildcards && label.indexOf('*') >= 0) {
        throw new IllegalArgumentException(
            "'*' must be a whole label ('*.example.com'), not part of one as in '" + host + "'");
      }
      String ascii;
      try {
        // The common case, on every request: an ASCII letters-digits-hyphen label not starting
        // or ending with '-' is what IDN.toASCII with STD3 rules returns unchanged (RFC 3490
        // skips nameprep and punycode for ASCII), so only lower-case it. Anything else goes
        // label by label through IDNA, so no mapping inside it can make a new dot (U+2024 maps
        // to '.'): STD3 rules refuse the result then, instead of it becoming two labels.
        ascii = plainAscii(label) ? label.toLowerCase(Locale.ROOT)
            : IDN.toASCII(label, IDN.USE_STD3_ASCII_RULES).toLowerCase(Locale.ROOT);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("label '" + label + "' of '" + host
            + "' is not a valid host name label (" + e.getMessage() + ")");
      }
      if (ascii.isEmpty() || ascii.length() > MAX_LABEL || !isLdh(ascii)) {
        throw new IllegalArgumentException("label '" + label + "' of '" + host
            + "' is not a valid host name label: letters, digits and '-', 1 to 63 of them");
      }
      labels[i] = ascii;
    }
    String joined = String.join(".", labels);
    if (joined.length() > MAX_NAME) {
      throw new IllegalArgumentException("host name '" + host + "' is longer than 253 characters");
    }
    String last = labels[labels.length - 1];
    if (looksNumeric(last) && (rootDot || !isDottedQuad(joined))) {
      // URL parsers read 2130706433, 0x7f.1 or 0177.0.0.1 as 127.0.0.1; DNS does not. Refuse.
      throw new IllegalArgumentException("IPv4 address " + host
          + " is not in canonical dotted-quad form (four decimal numbers 0-255, no leading zeros)");
    }
    return labels;
  }

  /** ASCII letters, digits and '-', neither first nor last: IDNA leaves such a label alone. */
  private static boolean plainAscii(String label) {
    int n = label.length();
    if (n == 0 || label.charAt(0) == '-' || label.charAt(n - 1) == '-') {
      return false;
    }
    for (int i = 0; i < n; i++) {
      char c = label.charAt(i);
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || c == '-')) {
        return false;
      }
    }
    return true;
  }

  private static boolean isLdh(String label) {
    for (int i = 0; i < label.length(); i++) {
      char c = label.charAt(i);
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
        return false;
      }
    }
    return true;
  }

  /** What the WHATWG URL parser would take for a number: all digits, or 0x and hex digits. */
  private static boolean looksNumeric(String label) {
    String digits = label;
    boolean hex = false;
    if (label.length() >= 2 && label.charAt(0) == '0'
        && (label.charAt(1) == 'x' || label.charAt(1) == 'X')) {
      digits = label.substring(2);
      hex = true;
    }
    for (int i = 0; i < digits.length(); i++) {
      char c = Character.toLowerCase(digits.charAt(i));
      boolean ok = (c >= '0' && c <= '9') || (hex && c >= 'a' && c <= 'f');
      if (!ok) {
        return false;
      }
    }
    return hex || !digits.isEmpty();
  }

  /**
   * One spelling per IPv6 address, so {@code 2001:DB8::1} and {@code 2001:db8:0::1} compare
   * equal. An IPv4-mapped literal becomes its IPv4 address, which is what it connects to.
   */
  private static String ipv6(String literal) {
    if (!literal.matches("[0-9A-Fa-f:.]+")) {
      throw new IllegalArgumentException("'" + literal + "' is not an IPv6 address");
    }
    try {
      // A literal with ':' is parsed, never resolved.
      return InetAddress.getByName("[" + literal + "]").getHostAddress().toLowerCase(Locale.ROOT);
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("'" + literal + "' is not an IPv6 address");
    }
  }

  /** True for an IPv6 literal (already without brackets) or a dotted-quad IPv4 literal. */
  public static boolean isIpLiteral(String normalizedHost) {
    return normalizedHost.indexOf(':') >= 0 || isDottedQuad(normalizedHost);
  }

  /** Canonical dotted-quad IPv4: four decimal octets 0-255, no leading zeros. */
  public static boolean isDottedQuad(String s) {
    int n = s.length();
    int octets = 0;
    int value = 0;
    int digits = 0;
    for (int i = 0; i <= n; i++) {
      char c = i == n ? '.' : s.charAt(i);
      if (c == '.') {
        if (digits == 0 || value > 255 || ++octets > 4) {
          return false;
        }
        value = 0;
        digits = 0;
      } else if (c >= '0' && c <= '9') {
        if (digits == 1 && value == 0) {
          return false; // a leading zero
        }
        if (++digits > 3) {
          return false;
        }
        value = value * 10 + (c - '0');
      } else {
        return false;
      }
    }
    return octets == 4;
  }

  /** host:port, with brackets around an IPv6 literal. */
  public static String authority(String host, int port) {
    return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
  }
}
