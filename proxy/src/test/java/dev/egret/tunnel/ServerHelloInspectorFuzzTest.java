package dev.egret.tunnel;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Any bytes from an upstream, cut anywhere: {@link ServerHelloInspector} answers with a value,
 * the same however the stream was cut, and a ServerHello it accepts names a TLS version.
 * Regression inputs in {@code ServerHelloInspectorFuzzTestInputs/} run in every {@code mvn test}.
 */
class ServerHelloInspectorFuzzTest {

  @FuzzTest
  void judgesAnyBytesAlikeHoweverTheyAreCut(FuzzedDataProvider data) {
    int[] cuts = FuzzCuts.consume(data);
    byte[] stream = data.consumeRemainingAsBytes();

    HelloInspection.OfServer whole = new ServerHelloInspector().offer(stream);
    ServerHelloInspector pieces = new ServerHelloInspector();
    HelloInspection.OfServer cut = HelloInspection.NEED_MORE;
    for (byte[] piece : FuzzCuts.split(stream, cuts)) {
      HelloInspection.OfServer next = pieces.offer(piece);
      if (cut.done()) {
        assertThat(next).as("a verdict is final").isSameAs(cut);
      }
      cut = next;
    }

    assertThat(cut).as("the verdict does not depend on where the stream was cut")
        .isEqualTo(whole);
    if (whole instanceof HelloInspection.ServerHello hello) {
      assertThat(hello.legacyVersion() >>> 8).isEqualTo(3);
      assertThat(hello.versionName()).isNotBlank();
      assertThat(hello.cipherName()).isNotBlank();
    } else if (whole instanceof HelloInspection.Alert alert) {
      assertThat(alert.descriptionName()).isNotBlank();
    } else if (whole instanceof HelloInspection.Refused refused) {
      assertThat(refused.reason()).isNotBlank();
    } else {
      assertThat(stream.length).isLessThanOrEqualTo(HandshakeReassembler.LIMIT);
    }
  }
}
