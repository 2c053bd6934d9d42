package dev.egret.policy;

import dev.egret.address.HostName;
import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Host-name normalisation and host patterns under fuzzed names: a name either normalises to one
 * canonical spelling that normalises to itself (lower-case LDH labels or an IP literal, nothing a
 * URL parser could read as another host) or is refused with an {@link IllegalArgumentException};
 * a pattern either compiles or is refused the same way, and then matches exactly the hosts an
 * independent regular-expression reading of it matches, never an IP literal by wildcard.
 *
 * <p>Regression inputs: {@code src/test/resources/dev/egret/policy/HostNameFuzzTestInputs};
 * fuzzing: {@code bench/fuzz.sh dev.egret.policy.HostNameFuzzTest}.
 */
class HostNameFuzzTest {
  /** Pieces a name is built from: the characters and forms the normaliser treats specially. */
  private static final String[] PIECES = {
      "a", "B", "z9", "-", ".", "..", "*", "**", "xn--", "xn--nxasmq6b", "0x7f", "0", "00", "127",
      "255", "256", "1", "\u3002", "\uFF0E", "\uFF61", "\u2024", "[", "]", ":", "::", "::1",
      "ffff", "%", "@", "/", "\\", " ", "\u00e9", "\u00df", "\u0130", "\u212a", "\u200d",
      "\uFB01", "\u03c3", "\ud83d\ude00", "\ud800", "example", "com", "1.2.3.4", "::ffff:"};

  private static final Pattern LDH_NAME =
      Pattern.compile("([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*");

  @FuzzTest(maxDuration = "10m")
  void namesAndPatterns(FuzzedDataProvider data) throws Exception {
    String host = name(data);
    String pattern = name(data);
    String other = name(data);

    String normalized = normalized(host);
    if (normalized != null) {
      checkCanonical(host, normalized);
    }
    String otherNormalized = normalized(other);

    HostPattern compiled;
    try {
      compiled = HostPattern.compile(pattern);
    } catch (IllegalArgumentException refused) {
      assertThat(refused.getMessage()).isNotBlank();
      return;
    }
    Pattern oracle = oracle(compiled.pattern());
    for (String candidate : new String[] {normalized, otherNormalized, instance(compiled)}) {
      if (candidate == null) {
        continue;
      }
      boolean expected = HostName.isIpLiteral(candidate)
          ? compiled.isExact() && oracleExact(compiled.pattern()).equals(candidate)
          : oracle.matcher(candidate).matches();
      assertThat(compiled.matches(candidate))
          .as("pattern '%s' (read as %s) against host '%s'", compiled.pattern(), oracle, candidate)
          .isEqualTo(expected);
    }
    if (compiled.isExact()) {
      String exact = normalized(compiled.pattern().trim());
      assertThat(exact).isNotNull();
      assertThat(compiled.matches(exact)).isTrue();
    }
  }

  /** Null when refused; any other exception type fails the test. */
  private static String normalized(String host) {
    try {
      return HostName.normalize(host);
    } catch (IllegalArgumentException refused) {
      assertThat(refused.getMessage()).isNotBlank();
      return null;
    }
  }

  private static void checkCanonical(String host, String n) throws Exception {
    assertThat(HostName.normalize(n)).as("normalising '%s' again", n).isEqualTo(n);
    if (n.indexOf(':') >= 0) {
      // One spelling of the same address the input wrote.
      String literal = host.startsWith("[") && host.endsWith("]")
          ? host.substring(1, host.length() - 1) : host;
      assertThat(InetAddress.getByName("[" + n + "]"))
          .isEqualTo(InetAddress.getByName("[" + literal + "]"));
      return;
    }
    if (HostName.isDottedQuad(n)) {
      return; // written so, or with IDNA dots or digits that IDNA maps to ASCII ones
    }
    assertThat(n.length()).isBetween(1, 253);
    assertThat(LDH_NAME.matcher(n).matches()).as("'%s' from '%s' is LDH labels", n, host).isTrue();
    String last = n.substring(n.lastIndexOf('.') + 1);
    assertThat(last.matches("[0-9]+|0x[0-9a-f]*"))
        .as("last label of '%s' reads as a number to URL parsers", n).isFalse();
    // Case and one root dot do not change a name.
    if (isAscii(host)) {
      assertThat(normalized(host.toUpperCase(Locale.ROOT))).isEqualTo(n);
    }
    if (!host.endsWith(".") && !host.endsWith("\u3002") && !host.endsWith("\uFF0E")
        && !host.endsWith("\uFF61")) {
      assertThat(normalized(host + ".")).as("'%s.'", host).isEqualTo(n);
    }
  }

  /**
   * The pattern as a regular expression over a normalised host, built from the written pattern
   * with the same normalisation of its non-wildcard labels: {@code *} one label, a leading
   * {@code **} one or more.
   */
  private static Pattern oracle(String written) {
    String[] labels = HostName.labels(written.trim(), true);
    StringBuilder re = new StringBuilder();
    for (int i = 0; i < labels.length; i++) {
      String l = labels[i];
      if (i == 0 && l.equals("**")) {
        re.append("(?:[^.]+\\.)+");
        continue;
      }
      re.append(l.equals("*") ? "[^.]+" : Pattern.quote(l));
      if (i < labels.length - 1) {
        re.append("\\.");
      }
    }
    return Pattern.compile(re.toString());
  }

  private static String oracleExact(String written) {
    return String.join(".", HostName.labels(written.trim(), true));
  }

  /** A host the pattern names: each wildcard label replaced by a plain one. */
  private static String instance(HostPattern p) {
    List<String> out = new ArrayList<>();
    for (String l : HostName.labels(p.pattern().trim(), true)) {
      out.add(l.equals("**") ? "x.y" : l.equals("*") ? "w" : l);
    }
    String host = normalized(String.join(".", out));
    if (host != null && !HostName.isIpLiteral(host)) {
      assertThat(p.matches(host)).as("'%s' names '%s'", p.pattern(), host).isTrue();
    }
    return host;
  }

  private static boolean isAscii(String s) {
    return s.chars().allMatch(c -> c < 0x80);
  }

  /** A raw string, or one assembled from {@link #PIECES} and raw bits. */
  private static String name(FuzzedDataProvider data) {
    if (data.consumeBoolean()) {
      return data.consumeString(80);
    }
    StringBuilder sb = new StringBuilder();
    int n = data.consumeInt(1, 12);
    for (int i = 0; i < n; i++) {
      if (data.consumeInt(0, 7) == 0) {
        sb.append(data.consumeString(8));
      } else {
        sb.append(PIECES[data.consumeInt(0, PIECES.length - 1)]);
      }
    }
    return sb.toString();
  }
}
