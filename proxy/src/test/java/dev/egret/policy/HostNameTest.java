package dev.egret.policy;

import dev.egret.listener.RequestTargets;
import dev.egret.address.HostName;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigException;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * One normalisation for request hosts and config patterns (docs: "Config file"): lower case, one
 * trailing dot, the IDNA separators U+3002, U+FF0E and U+FF61 read as dots, punycode; empty
 * labels and non-canonical IPv4 forms refused, on both sides alike.
 */
class HostNameTest {
  @TempDir Path dir;

  @ParameterizedTest(name = "{0} -> {1}")
  @CsvSource({
      "API.Example.COM, api.example.com",
      "api.example.com., api.example.com",
      "api\u3002example\u3002com, api.example.com",
      "api\uFF0Eexample\uFF0Ecom, api.example.com",
      "api\uFF61example\uFF61com, api.example.com",
      "api\u3002example\u3002com\u3002, api.example.com",
      "B\u00fccher.example, xn--bcher-kva.example",
      "\uFF41\uFF50\uFF49.example, api.example",
      "127.0.0.1, 127.0.0.1",
      "[2001:DB8:0::1], 2001:db8:0:0:0:0:0:1",
  })
  void normalisesAsTheRequestSideDoes(String written, String normalised) {
    assertThat(HostName.normalize(written)).isEqualTo(normalised);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"evil.example..", "a..b", ".a.b", "..", "127.0.0.1..", "2130706433..",
      "0x7f.1..", "a\u3002\u3002b", "a.b\uFF0E\uFF0E", "evil.example\u3002."})
  void refusesAnEmptyLabel(String host) {
    assertThatThrownBy(() -> HostName.normalize(host))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("empty label");
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"[Z]", "[a.example]", "[127.0.0.1]", "[xn--bcher-kva.example]"})
  void refusesBracketsAroundAnythingButAnIpv6Literal(String host) {
    assertThatThrownBy(() -> HostName.normalize(host))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("IPv6");
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"2130706433", "0x7f.1", "0177.0.0.1", "127.1", "127.0.0.1.",
      "1.2.3.0x4", "256.0.0.1", "a.123"})
  void refusesNonCanonicalIpv4(String host) {
    assertThatThrownBy(() -> HostName.normalize(host))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("canonical dotted-quad");
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"evil\u2024example", "a_b.example", "a b.example", "a\u2488b.example"})
  void refusesWhatIdnaWouldTurnIntoAnotherName(String host) {
    assertThatThrownBy(() -> HostName.normalize(host)).isInstanceOf(IllegalArgumentException.class);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"evil.example..", "a..b", "127.0.0.1..", "2130706433..", "0x7f.1.."})
  void theRequestTargetRefusesAnEmptyLabelBeforeAnyDecisionOrLookup(String host) {
    for (String[] target : new String[][] {{"GET", "http://" + host + "/"},
        {"GET", "https://" + host + ":8443/"}, {"CONNECT", host + ":443"}}) {
      assertThatThrownBy(() -> RequestTargets.target(target[0], target[1]))
          .as(target[0] + " " + target[1])
          .isInstanceOfSatisfying(ProxyFailure.class,
              f -> assertThat(f.kind()).isEqualTo(ErrorKind.REQUEST_ERROR))
          .hasMessageContaining("empty label");
    }
  }

  @ParameterizedTest(name = "{0} matches {1}")
  @CsvSource({
      "*\uFF0Eevil\uFF0Eexample, www.evil.example",
      "**\u3002evil\u3002example, a.b.evil.example",
      "ec2\uFF61*\uFF61amazonaws\uFF61com, ec2.eu-west-1.amazonaws.com",
      "EVIL\uFF0EExample\uFF0E, evil.example",
      "*.B\u00fccher.example, www.xn--bcher-kva.example",
      "**.example.com., a.example.com",
  })
  void patternsAreNormalisedLikeHosts(String pattern, String host) {
    assertThat(HostPattern.compile(pattern).matches(HostName.normalize(host))).isTrue();
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"**.*", "*.*", "*", "**", "example.*", "**.example.*", "a.*\uFF0E",
      "*.*."})
  void refusesAPatternWhoseLastLabelIsAWildcard(String pattern) {
    assertThatThrownBy(() -> HostPattern.compile(pattern))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("ends in a wildcard label")
        .hasMessageContaining("e.g. *.example.com");
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"a..example", "*..example", "**..example", "example.com..",
      "*\u3002\u3002example"})
  void refusesAPatternWithAnEmptyLabel(String pattern) {
    assertThatThrownBy(() -> HostPattern.compile(pattern))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("empty label");
  }

  @Test
  void aDenyWrittenWithFullwidthDotsDenies() throws Exception {
    Path file = dir.resolve("egret.yaml");
    Files.writeString(file, """
        version: 1
        allow:
          - host: "**.example"
        deny:
          - host: "*\uFF0Eevil\uFF0Eexample"
          - host: "bad\u3002example"
          - host: "**\uFF61worse\uFF61example"
        """);
    Allowlist a = ConfigCompiler.load(file).allowlist();
    for (String url : new String[] {"https://www.evil.example/", "https://bad.example/",
        "https://a.b.worse.example/", "https://WWW.EVIL.EXAMPLE./"}) {
      Decision d = a.decide(RequestTargets.target("GET", url).target());
      assertThat(d.verdict()).as(url).isEqualTo(Verdict.DENY);
      assertThat(d.reason()).as(url).isEqualTo(Reason.DENIED_BY_RULE);
    }
    assertThat(a.decide(RequestTargets.target("GET", "https://good.example/").target()).verdict())
        .isEqualTo(Verdict.ALLOW);
  }

  @Test
  void checkRefusesAWildcardLastLabelWithLineColumnAndAFix() throws Exception {
    Path file = dir.resolve("egret.yaml");
    Files.writeString(file, """
        version: 1
        allow:
          - host: "**.*"
          - host: "*.*"
        deny:
          - host: "*"
        """);
    assertThatThrownBy(() -> ConfigCompiler.load(file))
        .isInstanceOfSatisfying(ConfigException.class, e -> assertThat(e.errors())
            .extracting(err -> err.line() + ":" + err.column() + " " + err.message())
            .anySatisfy(m -> assertThat(m).startsWith("3:11 allow[0].host:")
                .contains("ends in a wildcard label").contains("**.example.com"))
            .anySatisfy(m -> assertThat(m).startsWith("4:11 allow[1].host:"))
            .anySatisfy(m -> assertThat(m).startsWith("6:11 deny[0].host:")));
  }

  /**
   * The one-pass check for an already canonical host must agree with the full normalisation on
   * every input: same result, or both refuse. Many short hosts over an alphabet that reaches
   * every branch (case, digits, hyphens, dots, hex prefixes, a non-ASCII dot).
   */
  @Test
  void theCanonicalFastPathAgreesWithTheFullNormalisation() {
    String alphabet = "aZ09-.x\u3002";
    java.util.Random random = new java.util.Random(42);
    int agreed = 0;
    for (int round = 0; round < 200_000; round++) {
      int len = 1 + random.nextInt(12);
      StringBuilder b = new StringBuilder();
      for (int i = 0; i < len; i++) {
        b.append(alphabet.charAt(random.nextInt(alphabet.length())));
      }
      String host = b.toString();
      String full;
      try {
        full = String.join(".", HostName.labels(host, false));
      } catch (IllegalArgumentException e) {
        full = null;
      }
      String fast;
      try {
        fast = HostName.normalize(host);
      } catch (IllegalArgumentException e) {
        fast = null;
      }
      assertThat(fast).as("normalize(%s)", host).isEqualTo(full);
      agreed++;
    }
    assertThat(agreed).isEqualTo(200_000);
  }

  @Test
  void dottedQuadIsFourDecimalOctetsWithoutLeadingZeros() {
    java.util.regex.Pattern reference = java.util.regex.Pattern.compile(
        "((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])\\.){3}"
        + "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])");
    java.util.Random random = new java.util.Random(7);
    String alphabet = "0125.9x";
    for (int round = 0; round < 200_000; round++) {
      StringBuilder b = new StringBuilder();
      int len = 1 + random.nextInt(16);
      for (int i = 0; i < len; i++) {
        b.append(alphabet.charAt(random.nextInt(alphabet.length())));
      }
      String s = b.toString();
      assertThat(HostName.isDottedQuad(s)).as(s).isEqualTo(reference.matcher(s).matches());
    }
    assertThat(HostName.isDottedQuad("255.255.255.255")).isTrue();
    assertThat(HostName.isDottedQuad("256.1.1.1")).isFalse();
    assertThat(HostName.isDottedQuad("01.1.1.1")).isFalse();
  }
}
