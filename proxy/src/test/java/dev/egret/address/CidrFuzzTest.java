package dev.egret.address;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.google.common.net.InetAddresses;
import java.net.InetAddress;

/**
 * CIDR parsing under fuzzed text: a CIDR is refused with an {@link IllegalArgumentException} or
 * read exactly as an independent parser (Guava's {@link InetAddresses}, which never resolves and
 * refuses ambiguous forms such as leading zeros) reads it, with a prefix in range and no host
 * bits; and {@link Cidr#contains} then agrees, for any address, with a bit-by-bit comparison.
 * {@link Cidr#literal}, which the address guard uses on request hosts, agrees the same way.
 *
 * <p>Regression inputs: {@code src/test/resources/dev/egret/address/CidrFuzzTestInputs};
 * fuzzing: {@code bench/fuzz.sh dev.egret.address.CidrFuzzTest}.
 */
class CidrFuzzTest {
  private static final String[] PIECES = {
      "0", "1", "10", "127", "255", "256", "01", "0x1", ".", "/", ":", "::", "ffff", "FFFF",
      "64:ff9b", "fe80", "%", "1.2.3.4", "::ffff:", "/0", "/8", "/32", "/96", "/128", "/129",
      "/08", "/-1", "/+8", " ", "[", "]", "a", "g", "localhost"};

  @FuzzTest(maxDuration = "10m")
  void readsCidrsAsAnIndependentParserDoes(FuzzedDataProvider data) throws Exception {
    String written = text(data);
    byte[] probe = data.consumeBytes(data.consumeBoolean() ? 4 : 16);

    String address = written.indexOf('/') < 0 ? written : written.substring(0, written.indexOf('/'));
    byte[] literal = Cidr.literal(address);
    byte[] independent = independent(address);
    if (literal != null) {
      assertThat(independent).as("'%s' read by Cidr.literal but refused by Guava", address)
          .isNotNull();
      assertThat(literal).as("'%s'", address).isEqualTo(sixteenIfWrittenSo(address, independent));
    }

    Cidr cidr;
    try {
      cidr = Cidr.parse(written);
    } catch (IllegalArgumentException refused) {
      assertThat(refused.getMessage()).isNotBlank();
      return;
    }
    assertThat(cidr.toString()).isEqualTo(written);
    String bits = written.substring(written.indexOf('/') + 1);
    assertThat(bits).matches("[0-9]{1,3}");
    assertThat(independent).as("'%s' accepted but its address is not one", written).isNotNull();
    byte[] network = sixteenIfWrittenSo(address, independent);
    int prefix = Integer.parseInt(bits);
    assertThat(prefix).isBetween(0, network.length * 8);
    for (int i = prefix; i < network.length * 8; i++) {
      assertThat(bit(network, i)).as("host bit %d of %s", i, written).isFalse();
    }
    // The guard judges IPv4-mapped and NAT64 addresses by their IPv4 part: such a network of
    // /96 or longer is kept as that IPv4 network.
    if (network.length == 16 && prefix >= 96 && embedsIpv4(network)) {
      network = java.util.Arrays.copyOfRange(network, 12, 16);
      prefix -= 96;
    }
    assertThat(cidr.contains(network)).isTrue();
    for (byte[] a : new byte[][] {probe, flipped(network, prefix), flipped(network, prefix - 1)}) {
      boolean expected = a.length == network.length && samePrefix(a, network, prefix);
      assertThat(cidr.contains(a)).as("%s contains %s", written, hex(a)).isEqualTo(expected);
    }
  }

  /** Guava's reading, or null when it refuses. */
  private static byte[] independent(String address) {
    try {
      return InetAddresses.forString(address).getAddress();
    } catch (IllegalArgumentException refused) {
      return null;
    }
  }

  /** Guava returns an IPv4-mapped literal as 4 bytes; Cidr keeps the 16 that were written. */
  private static byte[] sixteenIfWrittenSo(String address, byte[] bytes) throws Exception {
    if (address.indexOf(':') >= 0 && bytes.length == 4) {
      byte[] b = new byte[16];
      b[10] = (byte) 0xff;
      b[11] = (byte) 0xff;
      System.arraycopy(bytes, 0, b, 12, 4);
      return b;
    }
    return bytes;
  }

  private static boolean embedsIpv4(byte[] b) {
    boolean mapped = true;
    for (int i = 0; i < 10; i++) {
      mapped &= b[i] == 0;
    }
    mapped &= b[10] == (byte) 0xff && b[11] == (byte) 0xff;
    boolean nat64 = b[0] == 0 && b[1] == 0x64 && b[2] == (byte) 0xff && b[3] == (byte) 0x9b;
    for (int i = 4; i < 12; i++) {
      nat64 &= b[i] == 0;
    }
    return mapped || nat64;
  }

  private static boolean samePrefix(byte[] a, byte[] b, int prefix) {
    for (int i = 0; i < prefix; i++) {
      if (bit(a, i) != bit(b, i)) {
        return false;
      }
    }
    return true;
  }

  /** The network with bit {@code i} flipped: inside when i is a host bit, outside otherwise. */
  private static byte[] flipped(byte[] network, int i) {
    byte[] b = network.clone();
    if (i >= 0 && i < b.length * 8) {
      b[i / 8] ^= (byte) (0x80 >>> (i % 8));
    }
    return b;
  }

  private static boolean bit(byte[] b, int i) {
    return (b[i / 8] & (0x80 >>> (i % 8))) != 0;
  }

  private static String hex(byte[] b) {
    try {
      return b.length == 4 || b.length == 16 ? InetAddress.getByAddress(b).getHostAddress()
          : java.util.HexFormat.of().formatHex(b);
    } catch (java.net.UnknownHostException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String text(FuzzedDataProvider data) {
    if (data.consumeBoolean()) {
      return data.consumeString(64);
    }
    StringBuilder sb = new StringBuilder();
    int n = data.consumeInt(1, 10);
    for (int i = 0; i < n; i++) {
      if (data.consumeInt(0, 7) == 0) {
        sb.append(data.consumeAsciiString(6));
      } else {
        sb.append(PIECES[data.consumeInt(0, PIECES.length - 1)]);
      }
    }
    return sb.toString();
  }
}
