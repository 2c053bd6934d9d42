package dev.egret.address;

import java.net.InetAddress;
import java.net.UnknownHostException;

/** An IPv4 or IPv6 network, parsed strictly from {@code a.b.c.d/n} or {@code x:y::/n}. */
public final class Cidr {
  private final String written;
  private final byte[] network;
  private final int prefix;

  private Cidr(String written, byte[] network, int prefix) {
    this.written = written;
    this.network = network;
    this.prefix = prefix;
  }

  /**
   * Parses a CIDR. Only numeric literals are accepted (no DNS), and host bits must be zero, so
   * {@code 10.0.0.1/8} is refused rather than silently read as {@code 10.0.0.0/8}.
   *
   * @throws IllegalArgumentException naming what is wrong
   */
  public static Cidr parse(String written) {
    int slash = written.indexOf('/');
    if (slash < 0) {
      throw new IllegalArgumentException(
          "'" + written + "' is not a CIDR; write it as 10.0.0.0/8 or fd00::/8 (/32 or /128 for one address)");
    }
    String addr = written.substring(0, slash);
    String bits = written.substring(slash + 1);
    byte[] bytes = literal(addr);
    if (bytes == null) {
      throw new IllegalArgumentException("'" + addr + "' in '" + written + "' is not an IP address");
    }
    int prefix;
    try {
      prefix = Integer.parseInt(bits);
    } catch (NumberFormatException e) {
      prefix = -1;
    }
    if (!bits.matches("[0-9]{1,3}") || prefix < 0 || prefix > bytes.length * 8) {
      throw new IllegalArgumentException(
          "prefix length '" + bits + "' in '" + written + "' must be 0 to " + bytes.length * 8);
    }
    for (int i = 0; i < bytes.length * 8; i++) {
      if (i >= prefix && bit(bytes, i)) {
        throw new IllegalArgumentException("'" + written + "' has host bits set; did you mean "
            + mask(bytes, prefix) + "/" + prefix + "?");
      }
    }
    if (bytes.length == 16 && prefix >= 96 && embedsIpv4(bytes)) {
      // The guard judges IPv4-mapped and NAT64 addresses by the IPv4 address inside, so a
      // network written in those forms is kept as that IPv4 network, or it would never match.
      byte[] v4 = new byte[4];
      System.arraycopy(bytes, 12, v4, 0, 4);
      return new Cidr(written, v4, prefix - 96);
    }
    return new Cidr(written, bytes, prefix);
  }

  private static String mask(byte[] bytes, int prefix) {
    byte[] m = bytes.clone();
    for (int i = prefix; i < m.length * 8; i++) {
      m[i / 8] &= (byte) ~(0x80 >>> (i % 8));
    }
    try {
      return InetAddress.getByAddress(m).getHostAddress();
    } catch (UnknownHostException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The bytes of a numeric IP literal, or null. Never touches DNS. */
  static byte[] literal(String s) {
    if (s.indexOf(':') >= 0) {
      // A group has at most four hex digits (RFC 4291); InetAddress also reads "0fd00" as one,
      // which other tools refuse, so such a literal is refused here too.
      if (!s.matches("[0-9a-fA-F:.]+") || s.matches(".*[0-9a-fA-F]{5}.*")) {
        return null;
      }
      // An IPv4 tail is held to the IPv4 rule: InetAddress reads ::ffff:010.0.0.1 as 10.0.0.1,
      // a parser that takes 010 as octal as 8.0.0.1.
      String tail = s.substring(s.lastIndexOf(':') + 1);
      if (tail.indexOf('.') >= 0 && !dev.egret.address.HostName.isDottedQuad(tail)) {
        return null;
      }
      try {
        // For a literal with ':' InetAddress parses without resolving. An IPv4-mapped literal
        // comes back as Inet4Address; keep the 16-byte form so the family is what was written.
        byte[] b = InetAddress.getByName("[" + s + "]").getAddress();
        return b.length == 16 ? b : mapped(b);
      } catch (UnknownHostException e) {
        return null;
      }
    }
    if (!dev.egret.address.HostName.isDottedQuad(s)) {
      return null;
    }
    // Four decimal octets, checked just above: read them in one pass (no split, no parse per
    // octet; a literal host is judged on every request to it).
    byte[] b = new byte[4];
    int octet = 0;
    int value = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '.') {
        b[octet++] = (byte) value;
        value = 0;
      } else {
        value = value * 10 + (c - '0');
      }
    }
    b[octet] = (byte) value;
    return b;
  }

  /** True for ::ffff:0:0/96 (IPv4-mapped) and 64:ff9b::/96 (NAT64). */
  private static boolean embedsIpv4(byte[] b) {
    boolean zeros = true;
    for (int i = 0; i < 10; i++) {
      zeros &= b[i] == 0;
    }
    boolean mapped = zeros && b[10] == (byte) 0xff && b[11] == (byte) 0xff;
    boolean nat64 = b[0] == 0 && b[1] == 0x64 && b[2] == (byte) 0xff && b[3] == (byte) 0x9b;
    for (int i = 4; nat64 && i < 12; i++) {
      nat64 = b[i] == 0;
    }
    return mapped || nat64;
  }

  private static byte[] mapped(byte[] v4) {
    byte[] b = new byte[16];
    b[10] = (byte) 0xff;
    b[11] = (byte) 0xff;
    System.arraycopy(v4, 0, b, 12, 4);
    return b;
  }

  private static boolean bit(byte[] b, int i) {
    return (b[i / 8] & (0x80 >>> (i % 8))) != 0;
  }

  /** True if the address (same family) lies in this network. */
  public boolean contains(byte[] address) {
    if (address.length != network.length) {
      return false;
    }
    int full = prefix / 8;
    for (int i = 0; i < full; i++) {
      if (address[i] != network[i]) {
        return false;
      }
    }
    int rest = prefix % 8;
    if (rest == 0) {
      return true;
    }
    int m = 0xff << (8 - rest) & 0xff;
    return (address[full] & m) == (network[full] & m);
  }

  @Override
  public String toString() {
    return written;
  }
}
