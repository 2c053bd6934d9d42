package dev.egret.trace;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.opentelemetry.api.trace.SpanContext;
import java.util.regex.Pattern;

/**
 * The trace-header parsers under fuzzed values: {@code traceparent} and {@code X-Amzn-Trace-Id}
 * either give null or a valid remote context, never an exception; what they accept is exactly
 * what a regular expression of each format accepts; and a context written back reads back to
 * itself.
 *
 * <p>Regression inputs: {@code src/test/resources/dev/egret/trace/TraceHeadersFuzzTestInputs};
 * fuzzing: {@code bench/fuzz.sh dev.egret.trace.TraceHeadersFuzzTest#METHOD}.
 */
class TraceHeadersFuzzTest {
  private static final Pattern TRACEPARENT = Pattern.compile(
      "(?!ff)([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?",
      Pattern.DOTALL);
  private static final String[] PIECES = {
      "00", "01", "ff", "-", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01", "00",
      "0000000000000000", "00000000000000000000000000000000", "A", "g", " ", "\t", ";", "=",
      "Root=", "1-", "5759e988", "-bd862e3fe1be46a994272793", "Parent=", "53995c3f42cd8ad8",
      "Sampled=", "1", "0", "?", "Self=", "Lineage=", "Root=1-5759e988-bd862e3fe1be46a994272793",
      "\u0000", "\u00e9", "\ud800"};

  @FuzzTest(maxDuration = "10m")
  void traceparent(FuzzedDataProvider data) {
    String header = text(data);
    SpanContext c = TraceHeaders.traceparent(header);
    assertThat(c != null).as("'%s'", header).isEqualTo(valid(header));
    if (c == null) {
      return;
    }
    assertThat(c.isValid()).isTrue();
    assertThat(c.isRemote()).isTrue();
    SpanContext again = TraceHeaders.traceparent(TraceHeaders.traceparent(c));
    assertThat(again).isNotNull();
    assertThat(again.getTraceId()).isEqualTo(c.getTraceId());
    assertThat(again.getSpanId()).isEqualTo(c.getSpanId());
    assertThat(again.isSampled()).isEqualTo(c.isSampled());
  }

  /**
   * The W3C rules, written independently: white space around is ignored; version ff and
   * all-zero ids are invalid; version 00 has exactly four fields, a later one may add more.
   */
  private static boolean valid(String header) {
    if (header.length() < 55 || header.length() > TraceHeaders.MAX_LENGTH) {
      return false;
    }
    var m = TRACEPARENT.matcher(header.strip());
    if (!m.matches()) {
      return false;
    }
    boolean zero = m.group(2).matches("0+") || m.group(3).matches("0+");
    boolean extraOn00 = m.group(1).equals("00") && m.group(5) != null;
    return !zero && !extraOn00;
  }

  @FuzzTest(maxDuration = "10m")
  void xray(FuzzedDataProvider data) {
    String header = text(data);
    SpanContext c = TraceHeaders.xray(header);
    if (c == null) {
      return;
    }
    assertThat(header.length()).isLessThanOrEqualTo(TraceHeaders.MAX_LENGTH);
    assertThat(c.isValid()).isTrue();
    // The root and parent it read are in the header as written.
    String t = c.getTraceId();
    assertThat(header).contains("1-" + t.substring(0, 8) + "-" + t.substring(8))
        .contains(c.getSpanId());
    SpanContext again = TraceHeaders.xray(TraceHeaders.xray(c));
    assertThat(again).isNotNull();
    assertThat(again.getTraceId()).isEqualTo(t);
    assertThat(again.getSpanId()).isEqualTo(c.getSpanId());
    assertThat(again.isSampled()).isEqualTo(c.isSampled());
    // And through the W3C form: the same trace.
    SpanContext w3c = TraceHeaders.traceparent(TraceHeaders.traceparent(c));
    assertThat(w3c.getTraceId()).isEqualTo(t);
  }

  private static String text(FuzzedDataProvider data) {
    if (data.consumeBoolean()) {
      return data.consumeString(700);
    }
    StringBuilder b = new StringBuilder();
    int n = data.consumeInt(0, 24);
    for (int i = 0; i < n; i++) {
      b.append(data.consumeBoolean() ? data.pickValue(PIECES) : data.consumeString(4));
    }
    return b.toString();
  }
}
