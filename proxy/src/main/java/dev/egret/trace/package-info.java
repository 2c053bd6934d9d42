/**
 * Traces per hop, off by default. With {@code tracing.exporter: otlp}, each hop is a SERVER span
 * (and an upgraded request also a CLIENT span for its upstream call), parented by the client's
 * {@code traceparent} or {@code X-Amzn-Trace-Id}, exported in batches over OTLP/HTTP by the
 * OpenTelemetry SDK. With {@code exporter: none}, {@link dev.egret.trace.Tracing#OFF} loads no SDK
 * class, allocates nothing per hop and leaves the wire as it is.
 */
package dev.egret.trace;
