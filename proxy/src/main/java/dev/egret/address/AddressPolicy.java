package dev.egret.address;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * The compiled {@code addresses:} section: which resolved addresses Egret refuses to connect to.
 * IPv4-mapped ({@code ::ffff:0:0/96}), IPv4-compatible ({@code ::/96}) and NAT64
 * ({@code 64:ff9b::/96}) addresses are judged by the IPv4 address inside them, so
 * {@code [::ffff:169.254.169.254]} is the metadata service, as it is to the kernel.
 */
public final class AddressPolicy {
  /** The built-in {@code default} set. */
  public static final List<String> DEFAULT_DENY = List.of(
      "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
      "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
      "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128",
      "fc00::/7", "fe80::/10", "ff00::/8");


  private final List<Cidr> deny;
  private final List<Cidr> allow;

  public AddressPolicy(List<Cidr> deny, List<Cidr> allow) {
    this.deny = List.copyOf(deny);
    this.allow = List.copyOf(allow);
  }

  /** The built-in set as parsed CIDRs, for {@code deny: [default]}. */
  public static List<Cidr> defaultDeny() {
    List<Cidr> out = new ArrayList<>();
    for (String c : DEFAULT_DENY) {
      out.add(Cidr.parse(c));
    }
    return out;
  }

  /**
   * The denied range that holds this address, or null if Egret may connect to it for this rule
   * ({@code addresses.allow} and the matched rule's {@code allowAddresses}, {@code ruleExempt},
   * exempt). {@code ruleExempt} may be null: report mode with no matching rule.
   */
  public Cidr deniedRange(InetAddress address, List<Cidr> ruleExempt) {
    byte[] judged = judgedBytes(address.getAddress());
    if (exempt(allow, judged) || exempt(ruleExempt, judged)) {
      return null;
    }
    for (int k = 0; k < deny.size(); k++) {
      Cidr c = deny.get(k);
      if (c.contains(judged)) {
        return c;
      }
    }
    return null;
  }

  private static boolean exempt(List<Cidr> cidrs, byte[] judged) {
    if (cidrs == null) {
      return false;
    }
    for (int k = 0; k < cidrs.size(); k++) {
      Cidr c = cidrs.get(k);
      if (c.contains(judged)) {
        return true;
      }
    }
    return false;
  }

  /** The address to judge: the embedded IPv4 address for mapped, compatible and NAT64 forms. */
  static byte[] judgedBytes(byte[] b) {
    if (b.length == 16) {
      boolean zeros = true;
      for (int i = 0; i < 10; i++) {
        zeros &= b[i] == 0;
      }
      boolean mapped = zeros && b[10] == (byte) 0xff && b[11] == (byte) 0xff;
      // ::/96 holds :: and ::1 too, which the default set names as themselves; only treat it as
      // IPv4-compatible when the embedded part is not 0.0.0.0 or 0.0.0.1.
      boolean compatible = zeros && b[10] == 0 && b[11] == 0 && (b[12] | b[13] | b[14]) != 0;
      boolean nat64 = b[0] == 0 && b[1] == 0x64 && b[2] == (byte) 0xff && b[3] == (byte) 0x9b;
      for (int i = 4; nat64 && i < 12; i++) {
        nat64 = b[i] == 0;
      }
      if (mapped || compatible || nat64) {
        byte[] v4 = new byte[4];
        System.arraycopy(b, 12, v4, 0, 4);
        return v4;
      }
    }
    return b;
  }
}
