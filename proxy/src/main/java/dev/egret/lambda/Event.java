package dev.egret.lambda;

import io.vertx.core.json.JsonObject;

/**
 * One event from {@code /event/next}: {@code INVOKE} or {@code SHUTDOWN}, with the epoch
 * millisecond by which the extension must be done ({@code deadlineMs}), and for an invoke its
 * {@code X-Amzn-Trace-Id} ({@code tracing.value}, null if none).
 */
record Event(String type, long deadlineMs, String shutdownReason, String traceHeader) {
  boolean isShutdown() {
    return "SHUTDOWN".equals(type);
  }

  static Event parse(JsonObject json) {
    String type = json.getString("eventType");
    if (type == null || type.isBlank()) {
      throw new IllegalArgumentException("no eventType");
    }
    Long deadline = json.getLong("deadlineMs");
    if (deadline == null || deadline <= 0) {
      throw new IllegalArgumentException("eventType " + type + " without a deadlineMs");
    }
    String trace = null;
    if (json.getValue("tracing") instanceof JsonObject tracing
        && "X-Amzn-Trace-Id".equals(tracing.getValue("type"))
        && tracing.getValue("value") instanceof String value) {
      trace = value;
    }
    return new Event(type, deadline, json.getString("shutdownReason"), trace);
  }
}
