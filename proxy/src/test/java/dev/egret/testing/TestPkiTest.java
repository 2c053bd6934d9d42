package dev.egret.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.egret.tls.Pins;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECKey;
import java.security.interfaces.RSAKey;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestPkiTest {
  private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

  private static final TestCert ROOT = TestPki.rootCa("Test Root").issue();
  private static final TestCert INTERMEDIATE = ROOT.intermediate("Test Intermediate").issue();

  @Test
  void marksCasAsCasAndLeavesAsServerCertificates() throws Exception {
    TestCert leaf = INTERMEDIATE.leaf("api.partner.test").issue();

    assertThat(ROOT.certificate().getBasicConstraints()).isGreaterThanOrEqualTo(0);
    assertThat(ROOT.certificate().getKeyUsage()[5]).as("keyCertSign").isTrue();
    assertThat(INTERMEDIATE.certificate().getBasicConstraints()).isGreaterThanOrEqualTo(0);
    assertThat(leaf.certificate().getBasicConstraints()).isEqualTo(-1);
    assertThat(leaf.certificate().getKeyUsage()[5]).as("keyCertSign").isFalse();
    assertThat(leaf.certificate().getExtendedKeyUsage()).containsExactly(SERVER_AUTH);
    assertThat(leaf.certificate().getSubjectAlternativeNames())
        .containsExactly(List.of(2, "api.partner.test"));
  }

  @Test
  void putsDnsNamesAndIpAddressesInTheSan() throws Exception {
    TestCert byIp = ROOT.leaf("127.0.0.1").issue();
    TestCert both = ROOT.leaf("api.partner.test").dns("api.partner.test", "*.partner.test")
        .ip("127.0.0.1", "[::1]").issue();

    assertThat(byIp.certificate().getSubjectAlternativeNames())
        .containsExactly(List.of(7, "127.0.0.1"));
    assertThat(both.certificate().getSubjectAlternativeNames()).containsExactly(
        List.of(2, "api.partner.test"), List.of(2, "*.partner.test"),
        List.of(7, "127.0.0.1"), List.of(7, "0:0:0:0:0:0:0:1"));
  }

  @Test
  void chainsLeafAndIntermediatesButNeverTheRoot() {
    TestCert leaf = INTERMEDIATE.leaf("api.partner.test").issue();

    assertThat(leaf.chain()).containsExactly(leaf.certificate(), INTERMEDIATE.certificate());
    assertThat(ROOT.leaf("a.test").issue().chain()).hasSize(1);
    assertThat(ROOT.chain()).containsExactly(ROOT.certificate());
    assertThat(leaf.root()).isSameAs(ROOT);
  }

  @Test
  void issuesChainsTheJdkValidatesToTheRoot() throws Exception {
    TestCert leaf = INTERMEDIATE.leaf("api.partner.test").key(KeyKind.EC_P256).issue();

    validate(leaf, ROOT);
    assertThat(leaf.certificate().getSigAlgName()).isEqualTo("SHA256withRSA");
  }

  @Test
  void signsWithTheAlgorithmAsked() throws Exception {
    TestCert sha1 = ROOT.leaf("old.partner.test").signature("SHA1withRSA").issue();
    TestCert ecRoot = TestPki.rootCa("EC Root").key(KeyKind.EC_P256).issue();
    TestCert ecLeaf = ecRoot.leaf("ec.partner.test").key(KeyKind.EC_P256).issue();

    assertThat(sha1.certificate().getSigAlgName()).isEqualTo("SHA1withRSA");
    assertThat(ecLeaf.certificate().getSigAlgName()).isEqualTo("SHA256withECDSA");
    validate(sha1, ROOT); // only because test-java.security allows SHA-1 chains
    validate(ecLeaf, ecRoot);
  }

  @Test
  void makesKeysOfTheKindAsked() {
    TestCert rsa1024 = ROOT.leaf("weak.partner.test").key(KeyKind.RSA_1024).issue();
    TestCert p256 = ROOT.leaf("ec.partner.test").key(KeyKind.EC_P256).issue();
    TestCert p224 = ROOT.leaf("p224.partner.test").key(KeyKind.EC_P224).issue();

    assertThat(((RSAKey) rsa1024.certificate().getPublicKey()).getModulus().bitLength())
        .isEqualTo(1024);
    assertThat(((ECKey) p256.certificate().getPublicKey()).getParams().getOrder().bitLength())
        .isEqualTo(256);
    // BouncyCastle made the key; the JDK parses it, which is all a trust-manager test needs.
    assertThat(((ECKey) p224.certificate().getPublicKey()).getParams().getOrder().bitLength())
        .isEqualTo(224);
  }

  @Test
  void leavesSmallEcLeavesForEgretToRefuseBecauseTheJdkAcceptsThem() throws Exception {
    validate(ROOT.leaf("p224.partner.test").key(KeyKind.EC_P224).issue(), ROOT);
    validate(ROOT.leaf("p192.partner.test").key(KeyKind.EC_P192).issue(), ROOT);
  }

  @Test
  void datesExpiredAndNotYetValidCertificates() {
    TestCert expired = ROOT.leaf("api.partner.test").expired().issue();
    TestCert early = ROOT.leaf("api.partner.test").notYetValid().issue();

    assertThatThrownBy(() -> expired.certificate().checkValidity())
        .isInstanceOf(CertificateExpiredException.class);
    assertThatThrownBy(() -> early.certificate().checkValidity())
        .isInstanceOf(CertificateNotYetValidException.class);
  }

  @Test
  void reusesAKeyPerNameAndNeverAcrossNames() {
    TestCert first = ROOT.leaf("api.partner.test").issue();
    TestCert renewed = ROOT.leaf("api.partner.test").expired().issue();
    TestCert other = ROOT.leaf("other.partner.test").issue();
    TestCert shared = ROOT.leaf("other.partner.test").keySlot("api.partner.test").issue();

    assertThat(renewed.spkiPin()).isEqualTo(first.spkiPin());
    assertThat(other.spkiPin()).isNotEqualTo(first.spkiPin()).isNotEqualTo(ROOT.spkiPin());
    assertThat(shared.spkiPin()).isEqualTo(first.spkiPin());
  }

  @Test
  void writesTheChainAndAPkcs8Key(@TempDir Path dir) throws Exception {
    TestCert leaf = INTERMEDIATE.leaf("api.partner.test").issue();

    TestCert.PemFiles pem = leaf.writePem(dir);

    String key = Files.readString(pem.key());
    assertThat(key).startsWith("-----BEGIN PRIVATE KEY-----\n")
        .endsWith("-----END PRIVATE KEY-----\n");
    try (var in = Files.newInputStream(pem.cert())) {
      List<java.security.cert.Certificate> written =
          List.copyOf(CertificateFactory.getInstance("X.509").generateCertificates(in));
      assertThat(written).containsExactly(leaf.certificate(), INTERMEDIATE.certificate());
    }
  }

  @Test
  void storesTheKeyWithItsChain(@TempDir Path dir) throws Exception {
    TestCert leaf = INTERMEDIATE.leaf("api.partner.test").issue();

    KeyStore loaded = KeyStore.getInstance("PKCS12");
    try (var in = Files.newInputStream(leaf.writePkcs12(dir))) {
      loaded.load(in, TestCert.PASSWORD.toCharArray());
    }

    assertThat(loaded.getKey("server", TestCert.PASSWORD.toCharArray()))
        .isEqualTo(leaf.privateKey());
    assertThat(loaded.getCertificateChain("server")).hasSize(2);
  }

  @Test
  void pinsTheKeyAsOpensslAndEgretDo(@TempDir Path dir) {
    assumeTrue(OpenSsl.available(), "openssl is not installed");
    TestCert leaf = INTERMEDIATE.leaf("api.partner.test").key(KeyKind.EC_P256).issue();
    Path cert = leaf.writePem(dir).cert();

    String opensslPin = OpenSsl.run("openssl x509 -pubkey -noout -in '" + cert
        + "' | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64").trim();

    assertThat(leaf.spkiPin()).isEqualTo("sha256/" + opensslPin)
        .isEqualTo(Pins.pinOf(leaf.certificate()));
  }

  private static void validate(TestCert leaf, TestCert root) throws Exception {
    PKIXParameters params =
        new PKIXParameters(Set.of(new TrustAnchor(root.certificate(), null)));
    params.setRevocationEnabled(false);
    List<X509Certificate> chain = leaf.chain();
    CertPathValidator.getInstance("PKIX")
        .validate(CertificateFactory.getInstance("X.509").generateCertPath(chain), params);
  }
}
