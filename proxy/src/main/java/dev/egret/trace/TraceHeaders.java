package dev.egret.trace;

import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanId;
import io.opentelemetry.api.trace.TraceFlags;
import io.opentelemetry.api.trace.TraceId;
import io.opentelemetry.api.trace.TraceState;

/**
 * Reads and writes the two trace headers Egret understands: W3C {@code traceparent} and AWS
 * X-Ray's {@code X-Amzn-Trace-Id}. Strict: anything that is not exactly a valid header gives
 * null (the hop then has no parent), never an exception.
 *
 * <pre>{@code
 * SpanContext parent = TraceHeaders.traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
 * String xray = TraceHeaders.xray(parent);   // Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1
 * }</pre>
 */
public final class TraceHeaders {
  public static final String TRACEPARENT = "traceparent";
  public static final String TRACESTATE = "tracestate";
  public static final String XRAY = "X-Amzn-Trace-Id";
  /** A header longer than this is not a trace header anyone sends; it is not parsed. */
  static final int MAX_LENGTH = 512;

  private TraceHeaders() {}

  /**
   * A {@code traceparent} value as a remote parent, or null. Version 00 must be exactly
   * {@code 00-<32 hex>-<16 hex>-<2 hex>}; a later version may append fields after a dash, which
   * are ignored; version ff is invalid. Hex is lower case; all-zero ids are invalid.
   */
  public static SpanContext traceparent(String value) {
    if (value == null || value.length() < 55 || value.length() > MAX_LENGTH) {
      return null;
    }
    String v = value.strip();
    if (v.length() < 55 || v.charAt(2) != '-' || v.charAt(35) != '-' || v.charAt(52) != '-') {
      return null;
    }
    String version = v.substring(0, 2);
    if (!lowerHex(version) || version.equals("ff")) {
      return null;
    }
    if (version.equals("00") ? v.length() != 55 : v.length() > 55 && v.charAt(55) != '-') {
      return null;
    }
    String traceId = v.substring(3, 35);
    String spanId = v.substring(36, 52);
    String flags = v.substring(53, 55);
    if (!lowerHex(flags) || !TraceId.isValid(traceId) || !SpanId.isValid(spanId)) {
      return null;
    }
    boolean sampled = (Integer.parseInt(flags, 16) & 1) == 1;
    return SpanContext.createFromRemoteParent(traceId, spanId,
        sampled ? TraceFlags.getSampled() : TraceFlags.getDefault(), TraceState.getDefault());
  }

  /** {@code 00-<trace id>-<span id>-<flags>} for {@code context}. */
  public static String traceparent(SpanContext context) {
    return "00-" + context.getTraceId() + "-" + context.getSpanId() + "-"
        + context.getTraceFlags().asHex();
  }

  /**
   * An {@code X-Amzn-Trace-Id} value ({@code Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1},
   * fields in any order, other fields such as {@code Self} or {@code Lineage} ignored) as a remote
   * parent, or null when it has no valid Root and Parent. {@code Sampled=1} samples; {@code 0},
   * {@code ?} or none does not.
   */
  public static SpanContext xray(String value) {
    if (value == null || value.length() > MAX_LENGTH) {
      return null;
    }
    String traceId = null;
    String spanId = null;
    boolean sampled = false;
    for (String field : value.split(";", 16)) {
      int eq = field.indexOf('=');
      if (eq < 0) {
        continue;
      }
      String key = field.substring(0, eq).strip();
      String val = field.substring(eq + 1).strip();
      switch (key) {
        case "Root" -> {
          if (traceId != null) {
            return null; // two roots: ambiguous, so none
          }
          if (val.length() != 35 || !val.startsWith("1-") || val.charAt(10) != '-') {
            return null;
          }
          traceId = val.substring(2, 10) + val.substring(11);
          if (!TraceId.isValid(traceId)) {
            return null;
          }
        }
        case "Parent" -> {
          if (spanId != null || !SpanId.isValid(val)) {
            return null;
          }
          spanId = val;
        }
        case "Sampled" -> sampled = val.equals("1");
        default -> { }
      }
    }
    if (traceId == null || spanId == null) {
      return null;
    }
    return SpanContext.createFromRemoteParent(traceId, spanId,
        sampled ? TraceFlags.getSampled() : TraceFlags.getDefault(), TraceState.getDefault());
  }

  /** {@code Root=1-<8 hex>-<24 hex>;Parent=<span id>;Sampled=0|1} for {@code context}. */
  public static String xray(SpanContext context) {
    String t = context.getTraceId();
    return "Root=1-" + t.substring(0, 8) + "-" + t.substring(8) + ";Parent="
        + context.getSpanId() + ";Sampled=" + (context.isSampled() ? "1" : "0");
  }

  private static boolean lowerHex(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f')) {
        return false;
      }
    }
    return true;
  }
}
