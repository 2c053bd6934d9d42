package dev.egret.trace;

import dev.egret.config.EgretConfig;
import dev.egret.policy.Target;
import dev.egret.telemetry.Hop;
import dev.egret.telemetry.Telemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.MeterProvider;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.TraceFlags;
import io.opentelemetry.api.trace.TraceState;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.exporter.otlp.http.trace.OtlpHttpSpanExporter;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.IdGenerator;
import io.opentelemetry.sdk.trace.ReadWriteSpan;
import io.opentelemetry.sdk.trace.ReadableSpan;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.SpanProcessor;
import io.opentelemetry.sdk.trace.data.LinkData;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.BatchSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import io.opentelemetry.sdk.trace.samplers.Sampler;
import io.opentelemetry.sdk.trace.samplers.SamplingResult;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiConsumer;
import java.util.function.Function;

/**
 * Tracing with the OpenTelemetry SDK, exporting over OTLP/HTTP (the JDK's HTTP client sends).
 * Loaded only when the config says {@code exporter: otlp}.
 *
 * <p>Bounded everywhere a client could push: at most {@link #QUEUE} finished spans wait for the
 * exporter (more are dropped and counted as {@code queue_full}); a batch the collector refuses
 * or that times out is dropped and counted as {@code export_failed} (no retry, so a collector
 * that is down costs no memory); and a client's {@code sampled} flag is honoured at most {@link
 * #SAMPLED_PARENTS_PER_SECOND} times a second (beyond, {@code rate_limited}), so clients cannot
 * turn tracing into load.
 */
final class OtlpTracing implements Tracing {
  static final int QUEUE = 2048;
  static final int BATCH = 512;
  static final int SAMPLED_PARENTS_PER_SECOND = 200;
  static final Duration EXPORT_TIMEOUT = Duration.ofSeconds(5);
  static final Duration SCHEDULE = Duration.ofSeconds(1);

  static final AttributeKey<String> METHOD = AttributeKey.stringKey("http.request.method");
  static final AttributeKey<String> SERVER_ADDRESS = AttributeKey.stringKey("server.address");
  static final AttributeKey<Long> SERVER_PORT = AttributeKey.longKey("server.port");
  static final AttributeKey<Long> STATUS = AttributeKey.longKey("http.response.status_code");
  static final AttributeKey<String> ERROR_TYPE = AttributeKey.stringKey("error.type");
  static final AttributeKey<String> DESTINATION = AttributeKey.stringKey("egret.destination");
  static final AttributeKey<String> KIND = AttributeKey.stringKey("egret.kind");
  static final AttributeKey<String> OUTCOME = AttributeKey.stringKey("egret.outcome");
  static final AttributeKey<String> CLIENT = AttributeKey.stringKey("egret.client");
  static final AttributeKey<String> ORIGIN = AttributeKey.stringKey("egret.origin");
  static final AttributeKey<String> PEER = AttributeKey.stringKey("network.peer.address");
  static final AttributeKey<Long> PEER_PORT = AttributeKey.longKey("network.peer.port");
  static final AttributeKey<String> TLS_VERSION = AttributeKey.stringKey("tls.protocol.version");
  static final AttributeKey<String> TLS_CIPHER = AttributeKey.stringKey("tls.cipher");
  static final AttributeKey<Double> DNS_MS = AttributeKey.doubleKey("egret.dns_ms");
  static final AttributeKey<Double> CONNECT_MS = AttributeKey.doubleKey("egret.connect_ms");
  static final AttributeKey<Double> HANDSHAKE_MS = AttributeKey.doubleKey("egret.handshake_ms");
  static final AttributeKey<Double> FIRST_BYTE_MS = AttributeKey.doubleKey("egret.first_byte_ms");

  private final EgretConfig.Tracing settings;
  private final Telemetry telemetry;
  private final SdkTracerProvider provider;
  private final Tracer tracer;
  /** Spans handed to the batch processor and not yet taken by the exporter. */
  private final AtomicLong queued = new AtomicLong();
  private volatile SpanContext invocation;
  private final java.util.concurrent.atomic.AtomicBoolean closed =
      new java.util.concurrent.atomic.AtomicBoolean();

  OtlpTracing(EgretConfig.Tracing settings, Telemetry telemetry) {
    this.settings = settings;
    this.telemetry = telemetry;
    SpanExporter otlp = OtlpHttpSpanExporter.builder()
        .setEndpoint(settings.endpoint().toString())
        .setTimeout(EXPORT_TIMEOUT)
        .setRetryPolicy(null)
        .setMeterProvider(MeterProvider::noop)
        .build();
    SpanProcessor batch = BatchSpanProcessor.builder(new Counting(otlp))
        // Twice the bound Bounded enforces, so the SDK's own queue never drops uncounted.
        .setMaxQueueSize(QUEUE * 2)
        .setMaxExportBatchSize(BATCH)
        .setScheduleDelay(SCHEDULE)
        // Longer than the exporter's own timeout, so that a batch that timed out is counted
        // (Counting's callback runs as its result fails) before the processor stops waiting.
        .setExporterTimeout(EXPORT_TIMEOUT.plusSeconds(5))
        .setMeterProvider(MeterProvider::noop)
        .build();
    this.provider = SdkTracerProvider.builder()
        .setResource(Resource.getDefault().merge(Resource.create(Attributes.of(
            AttributeKey.stringKey("service.name"), "egret"))))
        // Under passthrough, hop() itself drops unsampled hops before any span exists (nothing
        // is sent upstream for them), so a root that reaches the SDK was already chosen.
        .setSampler(Sampler.parentBasedBuilder(passthrough()
                ? Sampler.alwaysOn() : Sampler.traceIdRatioBased(settings.sampleRatio()))
            .setRemoteParentSampled(new RateLimited(telemetry))
            .build())
        .addSpanProcessor(new Bounded(batch))
        .build();
    this.tracer = provider.get("dev.egret");
  }

  @Override
  public HopTrace hop(String method, Function<String, String> headers) {
    SpanContext parent = TraceHeaders.traceparent(headers.apply(TraceHeaders.TRACEPARENT));
    if (parent == null && settings.xray()) {
      parent = TraceHeaders.xray(headers.apply(TraceHeaders.XRAY));
    }
    if (parent == null) {
      parent = invocation;
    }
    if (passthrough() && (parent != null ? !parent.isSampled()
        : ThreadLocalRandom.current().nextDouble() >= settings.sampleRatio())) {
      // Not traced, and passthrough sends the client's headers as they came: no span at all.
      return null;
    }
    method = method(method);
    var builder = tracer.spanBuilder(method).setSpanKind(SpanKind.SERVER);
    if (parent != null) {
      builder.setParent(Context.root().with(Span.wrap(parent)));
    } else {
      builder.setNoParent();
    }
    return new Trace(builder.startSpan(), method);
  }

  private boolean passthrough() {
    return settings.propagate() == EgretConfig.Propagation.PASSTHROUGH;
  }

  @Override
  public void invocation(String xrayHeader) {
    invocation = xrayHeader == null ? null : TraceHeaders.xray(xrayHeader);
  }

  @Override
  public boolean flush(Duration deadline) {
    return provider.forceFlush().join(deadline.toMillis(), TimeUnit.MILLISECONDS).isSuccess();
  }

  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    provider.shutdown().join(EXPORT_TIMEOUT.toMillis() * 3, TimeUnit.MILLISECONDS);
  }

  private final class Trace implements HopTrace {
    private final Span server;
    private final String method;
    private Span client;
    /** What the third party sees as the parent under {@code restart}: a trace of its own. */
    private SpanContext restarted;

    Trace(Span server, String method) {
      this.server = server;
      this.method = method;
    }

    @Override
    public void upstreamStarted() {
      if (client != null) {
        return;
      }
      var builder = tracer.spanBuilder(method)
          .setSpanKind(SpanKind.CLIENT)
          .setParent(Context.root().with(server));
      if (settings.propagate() == EgretConfig.Propagation.RESTART) {
        IdGenerator ids = IdGenerator.random();
        restarted = SpanContext.create(ids.generateTraceId(), ids.generateSpanId(),
            server.getSpanContext().isSampled() ? TraceFlags.getSampled() : TraceFlags.getDefault(),
            TraceState.getDefault());
        builder.addLink(restarted);
      }
      client = builder.startSpan();
    }

    @Override
    public boolean rewrites(String name) {
      return switch (settings.propagate()) {
        case PASSTHROUGH -> false;
        case PROPAGATE -> name.equalsIgnoreCase(TraceHeaders.TRACEPARENT)
            || name.equalsIgnoreCase(TraceHeaders.TRACESTATE)
            || settings.xray() && name.equalsIgnoreCase(TraceHeaders.XRAY);
        // Internal trace ids never leave: an X-Ray header goes only as the new trace, if at all.
        case RESTART -> name.equalsIgnoreCase(TraceHeaders.TRACEPARENT)
            || name.equalsIgnoreCase(TraceHeaders.TRACESTATE)
            || name.equalsIgnoreCase(TraceHeaders.XRAY);
      };
    }

    @Override
    public void addHeaders(BiConsumer<String, String> add) {
      SpanContext sent = switch (settings.propagate()) {
        case PASSTHROUGH -> null;
        case PROPAGATE -> (client != null ? client : server).getSpanContext();
        case RESTART -> {
          if (restarted == null) {
            upstreamStarted();
          }
          yield restarted;
        }
      };
      if (sent == null) {
        return;
      }
      add.accept(TraceHeaders.TRACEPARENT, TraceHeaders.traceparent(sent));
      if (settings.xray()) {
        add.accept(TraceHeaders.XRAY, TraceHeaders.xray(sent));
      }
    }

    @Override
    public void end(Hop hop, Target target, InetSocketAddress upstream) {
      if (server.isRecording()) {
        server.setAttribute(METHOD, method);
        if (target != null) {
          server.setAttribute(SERVER_ADDRESS, target.host());
          server.setAttribute(SERVER_PORT, (long) target.port());
        }
        common(server, hop);
        server.setAttribute(OUTCOME, hop.outcome());
        if (hop.origin != null) {
          server.setAttribute(ORIGIN, hop.origin);
        }
      }
      if (client != null && client.isRecording()) {
        client.setAttribute(METHOD, method);
        if (target != null) {
          client.setAttribute(SERVER_ADDRESS, target.host());
        }
        if (upstream != null) {
          client.setAttribute(SERVER_PORT, (long) upstream.getPort());
          client.setAttribute(PEER, upstream.getAddress().getHostAddress());
          client.setAttribute(PEER_PORT, (long) upstream.getPort());
        }
        common(client, hop);
        if (hop.tlsVersion != null) {
          client.setAttribute(TLS_VERSION, tlsVersion(hop.tlsVersion));
          client.setAttribute(TLS_CIPHER, hop.tlsCipher);
        }
        millis(client, DNS_MS, hop.dnsNanos);
        millis(client, CONNECT_MS, hop.connectNanos);
        millis(client, HANDSHAKE_MS, hop.handshakeNanos);
        millis(client, FIRST_BYTE_MS, hop.firstByteNanos);
      }
      if (client != null) {
        client.end();
      }
      server.end();
    }

    private void common(Span span, Hop hop) {
      if (hop.status > 0) {
        span.setAttribute(STATUS, (long) hop.status);
      }
      span.setAttribute(DESTINATION, hop.destination());
      if (hop.kind != null) {
        span.setAttribute(KIND, hop.kind.label());
      }
      if (hop.error != null) {
        span.setAttribute(ERROR_TYPE, hop.errorLabel());
        span.setStatus(StatusCode.ERROR);
      }
    }
  }

  private static final java.util.Set<String> METHODS = java.util.Set.of("GET", "HEAD", "POST",
      "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH");

  /**
   * The span name and {@code http.request.method}: a known method, else {@code _OTHER} as
   * OpenTelemetry's HTTP conventions say, so a client cannot write its own text into traces.
   */
  static String method(String method) {
    return method != null && METHODS.contains(method) ? method : "_OTHER";
  }

  /** "TLSv1.3" as OpenTelemetry writes it: "1.3". */
  static String tlsVersion(String javaName) {
    return javaName.startsWith("TLSv") ? javaName.substring(4) : javaName;
  }

  private static void millis(Span span, AttributeKey<Double> key, long nanos) {
    if (nanos >= 0) {
      span.setAttribute(key, nanos / 1_000_000.0);
    }
  }

  /** Honours a client's sampled flag at most {@link #SAMPLED_PARENTS_PER_SECOND} a second. */
  private static final class RateLimited implements Sampler {
    private final Telemetry telemetry;
    private final AtomicLong window = new AtomicLong();
    private final AtomicLong taken = new AtomicLong();

    RateLimited(Telemetry telemetry) {
      this.telemetry = telemetry;
    }

    @Override
    public SamplingResult shouldSample(Context parent, String traceId, String name,
        SpanKind kind, Attributes attributes, List<LinkData> links) {
      long second = System.nanoTime() / 1_000_000_000L;
      long w = window.get();
      if (w != second && window.compareAndSet(w, second)) {
        taken.set(0);
      }
      if (taken.incrementAndGet() <= SAMPLED_PARENTS_PER_SECOND) {
        return SamplingResult.recordAndSample();
      }
      telemetry.traceSpansDropped("rate_limited", 1);
      return SamplingResult.drop();
    }

    @Override
    public String getDescription() {
      return "RateLimited{" + SAMPLED_PARENTS_PER_SECOND + "/s}";
    }
  }

  /** Drops (and counts) finished spans once {@link #QUEUE} wait for the exporter. */
  private final class Bounded implements SpanProcessor {
    private final SpanProcessor next;

    Bounded(SpanProcessor next) {
      this.next = next;
    }

    @Override
    public void onStart(Context parent, ReadWriteSpan span) {}

    @Override
    public boolean isStartRequired() {
      return false;
    }

    @Override
    public void onEnd(ReadableSpan span) {
      if (!span.getSpanContext().isSampled()) {
        return;
      }
      if (queued.incrementAndGet() > QUEUE) {
        queued.decrementAndGet();
        telemetry.traceSpansDropped("queue_full", 1);
        return;
      }
      next.onEnd(span);
    }

    @Override
    public boolean isEndRequired() {
      return true;
    }

    @Override
    public CompletableResultCode shutdown() {
      return next.shutdown();
    }

    @Override
    public CompletableResultCode forceFlush() {
      return next.forceFlush();
    }
  }

  /** Takes spans off the queue count as the exporter gets them; counts batches that failed. */
  private final class Counting implements SpanExporter {
    private final SpanExporter next;

    Counting(SpanExporter next) {
      this.next = next;
    }

    @Override
    public CompletableResultCode export(Collection<SpanData> spans) {
      int n = spans.size();
      queued.addAndGet(-n);
      CompletableResultCode result;
      try {
        result = next.export(spans);
      } catch (RuntimeException e) {
        telemetry.traceSpansDropped("export_failed", n);
        return CompletableResultCode.ofFailure();
      }
      result.whenComplete(() -> {
        if (!result.isSuccess()) {
          telemetry.traceSpansDropped("export_failed", n);
        }
      });
      return result;
    }

    @Override
    public CompletableResultCode flush() {
      return next.flush();
    }

    @Override
    public CompletableResultCode shutdown() {
      return next.shutdown();
    }
  }
}
