package dev.egret.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pins: malformed ones refused when built, and a mismatch that teaches how to fix the config. */
class PinsTest {
  private static final TestCert ROOT = TestPki.rootCa("Pins Test Root").issue();
  private static final TestCert LEAF = ROOT.leaf("pins.partner.test").issue();
  private static final TestCert OTHER = TestPki.rootCa("Pins Test Other Root").issue();

  @Test
  void refusesPinWithoutTheSha256Prefix() {
    String pin = "sha1/" + LEAF.spkiPin().substring("sha256/".length());
    assertThatThrownBy(() -> Pins.parse(List.of(pin)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'" + pin + "'")
        .hasMessageContaining("must start with 'sha256/'");
  }

  @Test
  void refusesPinThatIsNotBase64() {
    assertThatThrownBy(() -> Pins.parse(List.of("sha256/not*base64!")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'sha256/not*base64!' is not valid base64");
  }

  @Test
  void refusesPinThatIsNotASha256Hash() {
    assertThatThrownBy(() -> Pins.parse(List.of("sha256/AAAA")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("decodes to 3 bytes; a SHA-256 hash has 32");
  }

  @Test
  void acceptsAVerifiedChainHoldingAnyPinnedKeyRootIncluded() {
    Pins pins = Pins.parse(List.of(OTHER.spkiPin(), ROOT.spkiPin()));
    assertThatCode(() -> pins.check("pins.partner.test",
        List.of(LEAF.certificate(), ROOT.certificate()))).doesNotThrowAnyException();
  }

  @Test
  void mismatchListsTheChainsPinsThenTheConfiguredOnes() {
    Pins pins = Pins.parse(List.of(OTHER.spkiPin()));
    assertThatThrownBy(() -> pins.check("pins.partner.test",
        List.of(LEAF.certificate(), ROOT.certificate())))
        .isInstanceOf(Pins.PinMismatchException.class)
        .hasMessage("certificate pinning failure for pins.partner.test: the verified chain has "
            + LEAF.spkiPin() + " (O=Egret Tests,CN=pins.partner.test), "
            + ROOT.spkiPin() + " (O=Egret Tests,CN=Pins Test Root); the rule pins "
            + OTHER.spkiPin());
  }

  @Test
  void noPinsAcceptsAnyVerifiedChain() {
    assertThat(Pins.NONE.isEmpty()).isTrue();
    assertThatCode(() -> Pins.NONE.check("pins.partner.test", List.of(LEAF.certificate())))
        .doesNotThrowAnyException();
  }

  /** The class doc tells operators to compute pins with openssl; both must agree. */
  @Test
  void pinOfMatchesTheOpensslRecipe(@TempDir Path dir) throws Exception {
    Path pem = LEAF.writePem(dir).cert();
    Process p;
    try {
      p = new ProcessBuilder("sh", "-c", "openssl x509 -pubkey -noout -in '" + pem + "'"
          + " | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64")
          .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
    } catch (java.io.IOException e) {
      assumeTrue(false, "no sh/openssl here");
      return;
    }
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
    assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
    assumeTrue(p.exitValue() == 0 && !out.isEmpty(), "openssl is not available");
    assertThat(Pins.pinOf(LEAF.certificate())).isEqualTo("sha256/" + out);
  }
}
