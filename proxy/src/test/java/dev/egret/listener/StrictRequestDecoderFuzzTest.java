package dev.egret.listener;

import dev.egret.exchange.RequestTarget;
import dev.egret.exchange.RequestHead;
import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.egret.failure.ErrorKind;
import dev.egret.testing.LeakRecorder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * The strict decoder ({@link StrictHeadParser} for heads, {@link BodyFraming} for bodies) under
 * fuzzed byte streams, in a real Netty pipeline. For every input, on the proxy port, inside a
 * tunnel and on a transparent listener, with the default limits (and with tiny ones on one of
 * them):
 *
 * <ul>
 *   <li>nothing but a {@code REQUEST_ERROR} refusal with a 400/414/431/501/505 status and a
 *       reason comes out of a bad stream (no other exception), and nothing after it;
 *   <li>every head it passes on is well-formed: token method, HTTP/1.0 or 1.1, token header
 *       names, values with no control character and no surrounding white space, framing that
 *       matches its headers, a target the policy stage reads without error; written out again it
 *       parses to the same head;
 *   <li>a Content-Length body is exactly that many bytes, a request without framing has none;
 *   <li>the bytes behind a CONNECT head, handed to the tunnel, are exactly the rest of the input;
 *   <li>the outcome is the same whether the bytes come at once or in pieces of 1 to 16, and
 *       whether the handler asks for the next request at once or later (on one form per input);
 *   <li>every buffer is released: each input buffer's reference count is zero after the channel
 *       closes, and Netty's leak detector, at PARANOID, reports no buffer of this test.
 * </ul>
 *
 * <p>Regression inputs: {@code src/test/resources/dev/egret/listener/
 * StrictRequestDecoderFuzzTestInputs}; fuzzing: {@code bench/fuzz.sh
 * dev.egret.listener.StrictRequestDecoderFuzzTest}.
 */
class StrictRequestDecoderFuzzTest {
  private static final StrictHeadParser DEFAULT = new StrictHeadParser();
  /** Small enough that short inputs reach the 414 and 431 limits. */
  private static final StrictHeadParser TINY = new StrictHeadParser(24, 64, 3);
  private static final List<StrictHeadParser.TargetForm> FORMS = List.of(
      StrictHeadParser.TargetForm.PROXY,
      new StrictHeadParser.TargetForm.Origin(new RequestHead.Authority("http", "a.example", 80), 80),
      new StrictHeadParser.TargetForm.Origin(null, 8080));
  private static final Set<Integer> REFUSAL_STATUSES = Set.of(400, 414, 431, 501, 505);

  private static ResourceLeakDetector.Level levelBefore;

  @BeforeAll
  static void trackEveryBuffer() {
    levelBefore = ResourceLeakDetector.getLevel();
    ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
  }

  /** A leak shows once its buffer is collected: collect, then allocate so Netty looks. */
  @AfterAll
  static void noBufferOfThisTestLeaked() {
    try {
      for (int i = 0; i < 3; i++) {
        System.gc();
        ByteBuf probe = UnpooledByteBufAllocator.DEFAULT.buffer(1);
        probe.release();
      }
      assertThat(LeakRecorder.installed()).as("leak recorder installed").isTrue();
      assertThat(LeakRecorder.leaks(DecoderRun.class.getName())).isEmpty();
    } finally {
      ResourceLeakDetector.setLevel(levelBefore);
    }
  }

  @FuzzTest(maxDuration = "10m")
  void decodesOrRefusesEveryByteStream(byte[] input) {
    int[] pieces = DecoderRun.piecesOf(input);
    // Every form with the default limits; the tiny limits and the run in pieces with one form
    // each, drawn from the input (a fuzzing run's executions are few on a busy machine).
    int draw = Math.floorMod(pieces[0] + pieces[1], FORMS.size());
    for (StrictHeadParser.TargetForm form : FORMS) {
      DecoderRun whole = DecoderRun.of(DEFAULT, form, input, new int[0], true);
      check(DEFAULT, form, input, whole);
      if (form == FORMS.get(draw)) {
        DecoderRun split = DecoderRun.of(DEFAULT, form, input, pieces, false);
        assertThat(split.transcript()).as("the same in pieces of %s", Arrays.toString(pieces))
            .isEqualTo(whole.transcript());
      }
    }
    StrictHeadParser.TargetForm form = FORMS.get(Math.floorMod(pieces[2], FORMS.size()));
    check(TINY, form, input, DecoderRun.of(TINY, form, input, new int[0], true));
    assertThat(LeakRecorder.leaks(DecoderRun.class.getName())).isEmpty();
  }

  private static void check(StrictHeadParser parser, StrictHeadParser.TargetForm form,
      byte[] input, DecoderRun run) {
    if (run.failure != null) {
      assertThat(run.failure.kind()).isEqualTo(ErrorKind.REQUEST_ERROR);
      assertThat(REFUSAL_STATUSES).contains(run.failure.status());
      assertThat(run.failure.details()).isNotBlank();
    }
    for (DecoderRun.Request r : run.requests) {
      wellFormed(parser, form, r.head);
      RequestHead.Framing framing = r.head.framing();
      int bodyBytes = r.body.size();
      switch (framing.type()) {
        case NONE -> assertThat(bodyBytes).isZero();
        case CONTENT_LENGTH -> {
          assertThat((long) bodyBytes).isLessThanOrEqualTo(framing.contentLength());
          if (r.ended) {
            assertThat((long) bodyBytes).isEqualTo(framing.contentLength());
          }
        }
        case CHUNKED -> { }
      }
    }
    if (run.afterConnect != null) {
      byte[] rest = run.afterConnect;
      assertThat(rest.length).isLessThanOrEqualTo(input.length);
      byte[] tail = Arrays.copyOfRange(input, input.length - rest.length, input.length);
      assertThat(rest).as("the tunnel gets the bytes after the CONNECT head").isEqualTo(tail);
      String before = new String(input, 0, input.length - rest.length, StandardCharsets.ISO_8859_1);
      assertThat(before).endsWith("\r\n\r\n");
    }
  }

  private static void wellFormed(StrictHeadParser parser, StrictHeadParser.TargetForm form,
      RequestHead head) {
    assertThat(head.method()).isNotEmpty();
    head.method().chars().forEach(c -> assertThat(FieldLines.isTokenChar(c)).isTrue());
    assertThat(head.version()).isIn("HTTP/1.1", "HTTP/1.0");
    assertThat(head.target()).isNotEmpty().doesNotContain(" ");
    head.target().chars().forEach(c -> assertThat(c > 0x20 && c < 0x7f).isTrue());
    int lengths = 0;
    int encodings = 0;
    for (RequestHead.Header h : head.headers()) {
      assertThat(h.name()).isNotEmpty();
      h.name().chars().forEach(c -> assertThat(FieldLines.isTokenChar(c)).isTrue());
      h.value().chars().forEach(c -> assertThat(c == '\t' || !FieldLines.isControl(c))
          .as("character %02x in the value of %s", c, h.name()).isTrue());
      assertThat(h.value()).doesNotStartWith(" ").doesNotStartWith("\t")
          .doesNotEndWith(" ").doesNotEndWith("\t");
      String name = h.name().toLowerCase(Locale.ROOT);
      lengths += name.equals("content-length") ? 1 : 0;
      encodings += name.equals("transfer-encoding") ? 1 : 0;
    }
    RequestHead.Framing framing = head.framing();
    switch (framing.type()) {
      case NONE -> assertThat(lengths + encodings).isZero();
      case CONTENT_LENGTH -> {
        assertThat(lengths).isOne();
        assertThat(encodings).isZero();
        assertThat(framing.contentLength()).isNotNegative();
        assertThat(Long.parseLong(head.header("content-length").orElseThrow()))
            .isEqualTo(framing.contentLength());
      }
      case CHUNKED -> {
        assertThat(encodings).isOne();
        assertThat(lengths).isZero();
        assertThat(head.version()).isEqualTo("HTTP/1.1");
        assertThat(head.header("transfer-encoding").orElseThrow()).isEqualToIgnoringCase("chunked");
      }
    }
    if (head.isConnect()) {
      assertThat(form).isEqualTo(StrictHeadParser.TargetForm.PROXY);
      assertThat(framing.type() == RequestHead.Framing.Type.NONE || framing.contentLength() == 0)
          .as("a CONNECT has no body").isTrue();
    }
    // The stages after the decoder read its target without a second opinion.
    RequestTarget target = RequestTarget.of(head);
    assertThat(target.target().host()).isNotEmpty();
    assertThat(head.authority().port()).isBetween(1, 65535);
    // Written out again (no longer than it came: no white space around values), the head parses
    // to itself.
    StringBuilder sb = new StringBuilder(head.method()).append(' ').append(head.target())
        .append(' ').append(head.version()).append("\r\n");
    head.headers().forEach(h -> sb.append(h.name()).append(':').append(h.value()).append("\r\n"));
    byte[] again = sb.append("\r\n").toString().getBytes(StandardCharsets.ISO_8859_1);
    assertThat(parser.parse(again, again.length, form)).isEqualTo(head);
  }
}
