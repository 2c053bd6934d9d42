package dev.egret.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.security.Security;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The test JVM runs with test-java.security (surefire argLine), so that test servers can offer
 * what Egret must refuse on its own. If these fail, every "Egret refuses X" test would be
 * proving the JDK's defaults instead.
 */
class TestJvmSecurityTest {

  private static List<String> entries(String property) {
    return Arrays.stream(Security.getProperty(property).split(",")).map(String::trim).toList();
  }

  @Test
  void allowsOldProtocolsAndWeakSuitesForTestServers() {
    assertThat(entries("jdk.tls.disabledAlgorithms"))
        .doesNotContain("TLSv1", "TLSv1.1", "NULL", "anon", "3DES_EDE_CBC")
        .contains("SSLv3", "RC4");
  }

  @Test
  void allowsSha1SignedChains() {
    assertThat(Security.getProperty("jdk.certpath.disabledAlgorithms"))
        .doesNotContain("SHA1")
        .contains("RSA keySize < 1024");
  }

  @Test
  void givesDheServersA1024BitGroup() {
    assertThat(System.getProperty("jdk.tls.ephemeralDHKeySize")).isEqualTo("1024");
  }
}
