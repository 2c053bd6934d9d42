package dev.egret.policy;

import java.net.IDN;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Locale;

/**
 * Host name normalisation, shared by the config (patterns) and the request path (targets) so
 * both sides are compared in one form: lower case, no trailing dot, IDNs as punycode, IPv6
 * literals without brackets.
 */
public final class HostName {
  private HostName() {}

  /**
   * Normalises a host as written in a URL, a CONNECT target or the config.
   *
   * @throws IllegalArgumentException when the name is not a valid host name (IDNA rules)
   */
  public static String normalize(String host) {
    String h = host;
    if (h.startsWith("[") && h.endsWith("]")) {
      h = h.substring(1, h.length() - 1);
    }
    if (h.indexOf(':') >= 0) {
      return ipv6(h);
    }
    if (h.endsWith(".")) {
      h = h.substring(0, h.length() - 1);
    }
    if (h.isEmpty()) {
      throw new IllegalArgumentException("empty host name");
    }
    // IDN.toASCII refuses labels over 63 characters and maps Unicode to punycode; plain ASCII
    // names come back unchanged apart from case.
    return IDN.toASCII(h, IDN.USE_STD3_ASCII_RULES).toLowerCase(Locale.ROOT);
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
    String[] parts = s.split("\\.", -1);
    if (parts.length != 4) {
      return false;
    }
    for (String p : parts) {
      if (p.isEmpty() || p.length() > 3 || (p.length() > 1 && p.charAt(0) == '0')) {
        return false;
      }
      for (int i = 0; i < p.length(); i++) {
        if (p.charAt(i) < '0' || p.charAt(i) > '9') {
          return false;
        }
      }
      if (Integer.parseInt(p) > 255) {
        return false;
      }
    }
    return true;
  }

  /** host:port, with brackets around an IPv6 literal. */
  public static String authority(String host, int port) {
    return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
  }
}
