package dev.egret.address;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import dev.egret.policy.HostPattern;
import dev.egret.policy.Plaintext;
import dev.egret.policy.Rule;
import io.vertx.core.Future;
import java.net.InetAddress;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The address rules without a network: {@link AddressPolicy} with the documented default set,
 * {@code addresses.allow} and a rule's {@code allowAddresses}, and {@link Cidr} parsing. Every
 * address here is only judged, never connected to.
 */
class AddressGuardTest {
  private static final AddressPolicy DEFAULT = new AddressPolicy(AddressPolicy.defaultDeny(),
      List.of());

  private static InetAddress ip(String literal) {
    return InetAddressLiteral.of(literal);
  }

  /** Parses a literal without DNS: Cidr.literal refuses anything that is not numeric. */
  private static final class InetAddressLiteral {
    static InetAddress of(String literal) {
      byte[] bytes = Cidr.literal(literal);
      assertThat(bytes).as("test literal " + literal).isNotNull();
      try {
        return InetAddress.getByAddress(bytes);
      } catch (java.net.UnknownHostException e) {
        throw new AssertionError(e);
      }
    }
  }

  private static Rule rule(String... allowAddresses) {
    return new Rule(HostPattern.compile("crm.internal.example"), Set.of(443), Set.of(), List.of(),
        Plaintext.UPGRADE, null, List.of(allowAddresses).stream().map(Cidr::parse).toList(),
        null, false, 1);
  }

  @ParameterizedTest(name = "{0} is in {1}")
  @CsvSource({
      "0.0.0.0, 0.0.0.0/8",
      "0.255.255.255, 0.0.0.0/8",
      "10.0.0.0, 10.0.0.0/8",
      "10.255.255.255, 10.0.0.0/8",
      "100.64.0.0, 100.64.0.0/10",
      "100.127.255.255, 100.64.0.0/10",
      "127.0.0.1, 127.0.0.0/8",
      "127.8.9.10, 127.0.0.0/8",
      "169.254.169.254, 169.254.0.0/16",
      "169.254.170.2, 169.254.0.0/16",
      "172.16.0.0, 172.16.0.0/12",
      "172.31.255.255, 172.16.0.0/12",
      "192.0.0.8, 192.0.0.0/24",
      "192.0.2.1, 192.0.2.0/24",
      "192.168.1.1, 192.168.0.0/16",
      "198.18.0.1, 198.18.0.0/15",
      "198.19.255.255, 198.18.0.0/15",
      "198.51.100.7, 198.51.100.0/24",
      "203.0.113.9, 203.0.113.0/24",
      "224.0.0.1, 224.0.0.0/4",
      "239.255.255.255, 224.0.0.0/4",
      "240.0.0.1, 240.0.0.0/4",
      "255.255.255.255, 240.0.0.0/4",
      "::, ::/128",
      "::1, ::1/128",
      "fd00:ec2::254, fc00::/7",
      "fc00::1, fc00::/7",
      "fe80::1, fe80::/10",
      "febf:ffff::1, fe80::/10",
      "ff02::1, ff00::/8",
      // IPv4-mapped, IPv4-compatible and NAT64 forms are judged by the IPv4 address inside.
      "::ffff:127.0.0.1, 127.0.0.0/8",
      "::ffff:169.254.169.254, 169.254.0.0/16",
      "::ffff:a9fe:a9fe, 169.254.0.0/16",
      "::ffff:10.1.2.3, 10.0.0.0/8",
      "::127.0.0.1, 127.0.0.0/8",
      "64:ff9b::a9fe:a9fe, 169.254.0.0/16",
      "64:ff9b::7f00:1, 127.0.0.0/8",
      "64:ff9b::192.168.0.1, 192.168.0.0/16",
  })
  void refusesEveryDefaultRange(String address, String range) {
    assertThat(DEFAULT.deniedRange(ip(address), null)).hasToString(range);
  }

  @ParameterizedTest
  @ValueSource(strings = {
      // Just outside each neighbouring range.
      "1.0.0.0", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255",
      "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0",
      "192.0.1.0", "192.0.3.0", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0",
      "198.51.99.255", "198.51.101.0", "203.0.112.255", "203.0.114.0", "223.255.255.255",
      "8.8.8.8", "93.184.216.34",
      "2001:db8::1", "2606:4700::1111", "fbff:ffff::1", "fec0::1", "feff::1",
      // Mapped and NAT64 forms of public IPv4 addresses are public.
      "::ffff:8.8.8.8", "64:ff9b::808:808", "64:ff9b::1:808:808",
  })
  void letsPublicAddressesThrough(String address) {
    assertThat(DEFAULT.deniedRange(ip(address), null)).isNull();
  }

  @Test
  void readsCidrsWrittenInMappedOrNat64FormAsTheIpv4NetworkTheyName() {
    // The guard judges such addresses as IPv4, so a CIDR kept in 16 bytes would never match.
    AddressPolicy mapped = new AddressPolicy(
        List.of(Cidr.parse("::ffff:100.100.0.0/112"), Cidr.parse("64:ff9b::8.8.8.0/120")), List.of());
    assertThat(mapped.deniedRange(ip("100.100.3.4"), null)).hasToString("::ffff:100.100.0.0/112");
    assertThat(mapped.deniedRange(ip("::ffff:100.100.3.4"), null)).isNotNull();
    assertThat(mapped.deniedRange(ip("8.8.8.8"), null)).hasToString("64:ff9b::8.8.8.0/120");
    assertThat(mapped.deniedRange(ip("100.101.0.1"), null)).isNull();
  }

  @Test
  void judgesNat64OnlyInsideItsPrefix() {
    // 64:ff9b:1::/48 is the local-use NAT64 prefix, not the well-known /96: judged as IPv6.
    assertThat(AddressPolicy.judgedBytes(ip("64:ff9b:1::a9fe:a9fe").getAddress())).hasSize(16);
    assertThat(AddressPolicy.judgedBytes(ip("64:ff9b::a9fe:a9fe").getAddress()))
        .containsExactly(169, 254, 169, 254);
  }

  @ParameterizedTest
  @CsvSource({
      "::ffff:127.0.0.1, 127.0.0.1",
      "::ffff:a9fe:a9fe, 169.254.169.254",
      "::a9fe:aa02, 169.254.170.2",
      "64:ff9b::a9fe:a9fe, 169.254.169.254",
      "64:ff9b::10.1.2.3, 10.1.2.3",
  })
  void unwrapsTheIpv4AddressInsideMappedCompatibleAndNat64Forms(String v6, String v4) {
    // Raw 16-byte forms, as a resolver or a socket could hand them over.
    byte[] bytes = Cidr.literal(v6);
    assertThat(bytes).hasSize(16);
    assertThat(AddressPolicy.judgedBytes(bytes)).containsExactly(Cidr.literal(v4));
  }

  @Test
  void keepsTheUnspecifiedAndLoopbackIpv6AddressesAsThemselves() {
    assertThat(AddressPolicy.judgedBytes(ip("::").getAddress())).hasSize(16);
    assertThat(AddressPolicy.judgedBytes(ip("::1").getAddress())).hasSize(16);
  }

  @Test
  void exemptsAddressesAllowForEveryRule() {
    AddressPolicy policy = new AddressPolicy(AddressPolicy.defaultDeny(),
        List.of(Cidr.parse("127.0.0.1/32"), Cidr.parse("10.20.0.0/16")));
    assertThat(policy.deniedRange(ip("127.0.0.1"), null)).isNull();
    assertThat(policy.deniedRange(ip("127.0.0.1"), rule().allowAddresses())).isNull();
    assertThat(policy.deniedRange(ip("::ffff:127.0.0.1"), null)).isNull();
    assertThat(policy.deniedRange(ip("10.20.255.255"), null)).isNull();
    // Boundaries: the exemption is exactly the CIDR.
    assertThat(policy.deniedRange(ip("127.0.0.2"), null)).hasToString("127.0.0.0/8");
    assertThat(policy.deniedRange(ip("10.21.0.0"), null)).hasToString("10.0.0.0/8");
    assertThat(policy.deniedRange(ip("10.19.255.255"), null)).hasToString("10.0.0.0/8");
    assertThat(policy.deniedRange(ip("169.254.169.254"), null)).hasToString("169.254.0.0/16");
  }

  @Test
  void exemptsARulesAllowAddressesForThatRuleOnly() {
    Rule crm = rule("10.20.0.0/16");
    assertThat(DEFAULT.deniedRange(ip("10.20.1.2"), crm.allowAddresses())).isNull();
    assertThat(DEFAULT.deniedRange(ip("::ffff:10.20.1.2"), crm.allowAddresses())).isNull();
    assertThat(DEFAULT.deniedRange(ip("10.20.1.2"), rule().allowAddresses())).hasToString("10.0.0.0/8");
    assertThat(DEFAULT.deniedRange(ip("10.20.1.2"), null)).hasToString("10.0.0.0/8");
    assertThat(DEFAULT.deniedRange(ip("10.21.0.0"), crm.allowAddresses())).hasToString("10.0.0.0/8");
    assertThat(DEFAULT.deniedRange(ip("169.254.169.254"), crm.allowAddresses())).hasToString("169.254.0.0/16");
  }

  @Test
  void deniesConfiguredRangesBesideTheDefaultSet() {
    List<Cidr> deny = new java.util.ArrayList<>(AddressPolicy.defaultDeny());
    deny.add(Cidr.parse("8.8.8.0/24"));
    deny.add(Cidr.parse("2001:db8::/32"));
    AddressPolicy policy = new AddressPolicy(deny, List.of());
    assertThat(policy.deniedRange(ip("8.8.8.8"), null)).hasToString("8.8.8.0/24");
    assertThat(policy.deniedRange(ip("::ffff:8.8.8.8"), null)).hasToString("8.8.8.0/24");
    assertThat(policy.deniedRange(ip("2001:db8::1"), null)).hasToString("2001:db8::/32");
    assertThat(policy.deniedRange(ip("8.8.9.8"), null)).isNull();
  }

  @Test
  void anEmptyDenyListRefusesNothing() {
    AddressPolicy none = new AddressPolicy(List.of(), List.of());
    assertThat(none.deniedRange(ip("127.0.0.1"), null)).isNull();
  }

  @Test
  void refusesANameWhenAnyOfItsAddressesIsDeniedWhateverTheOrder() {
    // A name with one exempt and one denied address is a rebinding setup: refused either way.
    AddressPolicy exempt = new AddressPolicy(AddressPolicy.defaultDeny(),
        List.of(Cidr.parse("127.0.0.1/32")));
    for (List<InetAddress> answer : List.of(List.of(ip("127.0.0.1"), ip("::1")),
        List.of(ip("::1"), ip("127.0.0.1")))) {
      Future<InetAddress> judged = AddressGuard.judge("dual.test", answer, null, exempt);
      assertThat(judged.failed()).as(answer.toString()).isTrue();
      assertThat(judged.cause()).isInstanceOfSatisfying(ProxyFailure.class, f -> {
        assertThat(f.kind()).isEqualTo(ErrorKind.DESTINATION_IP_PROHIBITED);
        assertThat(f.details()).contains("dual.test", "::1/128");
      });
    }
  }

  @Test
  void connectsToTheFirstAddressWhenEveryAddressPasses() {
    AddressPolicy exempt = new AddressPolicy(AddressPolicy.defaultDeny(),
        List.of(Cidr.parse("127.0.0.0/8")));
    Future<InetAddress> judged = AddressGuard.judge("two.test",
        List.of(ip("127.0.0.2"), ip("127.0.0.1")), null, exempt);
    assertThat(judged.succeeded()).isTrue();
    assertThat(judged.result()).isEqualTo(ip("127.0.0.2"));
  }

  @Test
  void treatsAnEmptyAnswerAsADnsError() {
    Future<InetAddress> judged = AddressGuard.judge("empty.test", List.of(), null, DEFAULT);
    assertThat(judged.cause()).isInstanceOfSatisfying(ProxyFailure.class,
        f -> assertThat(f.kind()).isEqualTo(ErrorKind.DNS_ERROR));
  }

  @ParameterizedTest
  @ValueSource(strings = {"10.0.0.0/8", "0.0.0.0/0", "192.168.1.128/25", "::/0", "fd00::/8",
      "64:ff9b::/96", "127.0.0.1/32", "::1/128"})
  void parsesCanonicalCidrs(String written) {
    assertThat(Cidr.parse(written)).hasToString(written);
  }

  @ParameterizedTest
  @ValueSource(strings = {"10.0.0.0", "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/",
      "10.0.0.0/+8", "010.0.0.0/8", "10.0.0/8", "0x0a.0.0.0/8", "10.0.0.0/08x", "::/129",
      "fd00::1/8", "localhost/32", "[::1]/128", "10.0.0.0/8/8", "1.2.3.256/32", "01127::/16",
      "0fd00::/8", "::ffff:010.0.0.0/104", "64:ff9b::01.2.3.4/128"})
  void refusesMalformedCidrs(String written) {
    assertThatThrownBy(() -> Cidr.parse(written)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void suggestsTheNetworkWhenHostBitsAreSet() {
    assertThatThrownBy(() -> Cidr.parse("10.1.2.3/8"))
        .hasMessageContaining("did you mean 10.0.0.0/8?");
  }

  @Test
  void containsHonoursThePrefixBoundaryInsideAByte() {
    Cidr c = Cidr.parse("100.64.0.0/10");
    assertThat(c.contains(ip("100.64.0.0").getAddress())).isTrue();
    assertThat(c.contains(ip("100.127.255.255").getAddress())).isTrue();
    assertThat(c.contains(ip("100.128.0.0").getAddress())).isFalse();
    assertThat(c.contains(ip("100.63.255.255").getAddress())).isFalse();
    // Families never match each other: the 16-byte mapped form is judged only after unwrapping.
    assertThat(c.contains(Cidr.literal("::ffff:100.64.0.1"))).isFalse();
    assertThat(c.contains(AddressPolicy.judgedBytes(Cidr.literal("::ffff:100.64.0.1")))).isTrue();
  }

  @Test
  void readsOnlyNumericLiterals() {
    assertThat(Cidr.literal("localhost")).isNull();
    assertThat(Cidr.literal("2130706433")).isNull();
    assertThat(Cidr.literal("0x7f.0.0.1")).isNull();
    assertThat(Cidr.literal("0177.0.0.1")).isNull();
    assertThat(Cidr.literal("127.1")).isNull();
    assertThat(Cidr.literal("::ffff:127.0.0.1")).hasSize(16);
    assertThat(Cidr.literal("127.0.0.1")).containsExactly(127, 0, 0, 1);
  }
}
