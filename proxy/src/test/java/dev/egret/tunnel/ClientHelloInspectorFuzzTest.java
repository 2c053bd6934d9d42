package dev.egret.tunnel;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Any bytes, cut anywhere: {@link ClientHelloInspector} answers with a value (never an
 * exception), the same answer however TCP cut the stream, and a ClientHello it accepts holds only
 * what the tunnel's checks rely on. Regression inputs in {@code ClientHelloInspectorFuzzTestInputs/}
 * run in every {@code mvn test}. To fuzz (one target per run):
 *
 * <pre>
 * JAZZER_FUZZ=1 mvn -B -o -pl proxy test -Dtest=ClientHelloInspectorFuzzTest  *     -Djazzer.max_duration=10m -Dio.netty.leakDetection.level=paranoid
 * </pre>
 *
 * <p>A finding is written beside the regression inputs; keep it there once it is fixed.
 */
class ClientHelloInspectorFuzzTest {

  @FuzzTest
  void judgesAnyBytesAlikeHoweverTheyAreCut(FuzzedDataProvider data) {
    int[] cuts = FuzzCuts.consume(data);
    byte[] stream = data.consumeRemainingAsBytes();

    HelloInspection.OfClient whole = new ClientHelloInspector().offer(stream);
    ClientHelloInspector pieces = new ClientHelloInspector();
    HelloInspection.OfClient cut = HelloInspection.NEED_MORE;
    for (byte[] piece : FuzzCuts.split(stream, cuts)) {
      HelloInspection.OfClient next = pieces.offer(piece);
      if (cut.done()) {
        assertThat(next).as("a verdict is final").isSameAs(cut);
      }
      cut = next;
    }

    assertThat(cut).as("the verdict does not depend on where the stream was cut")
        .isEqualTo(whole);
    assertThat(pieces.result()).isEqualTo(cut);
    if (whole instanceof HelloInspection.ClientHello hello) {
      assertThat(stream.length).isGreaterThanOrEqualTo(5 + 4 + 2 + 32 + 1 + 4 + 2);
      if (hello.sni() != null) {
        assertThat(hello.sni()).matches("[a-z0-9_-]{1,63}(\\.[a-z0-9_-]{1,63})*\\.?");
        assertThat(hello.sni().length()).isLessThanOrEqualTo(254);
      }
      assertThat(hello.legacyVersion() >>> 8).isEqualTo(3);
      assertThat(hello.supportedVersions().size()).isLessThanOrEqualTo(127);
      assertThat(hello.encryptedHello()).isIn(-1, 0xfe0d, 0xfe0a, 0xfe0c, 0xffce);
    } else if (whole instanceof HelloInspection.Refused refused) {
      assertThat(refused.reason()).isNotBlank();
    } else {
      assertThat(stream.length).as("64 KiB at most without a verdict")
          .isLessThanOrEqualTo(HandshakeReassembler.LIMIT);
    }
  }
}
