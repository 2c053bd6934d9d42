package dev.egret.trace;

import com.sun.net.httpserver.HttpServer;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
import io.opentelemetry.proto.trace.v1.ResourceSpans;
import io.opentelemetry.proto.trace.v1.ScopeSpans;
import io.opentelemetry.proto.trace.v1.Span;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * An OpenTelemetry collector stand-in: an OTLP/HTTP protobuf endpoint on 127.0.0.1 that decodes
 * every export into spans, and can refuse (503) or hang to play a collector that is down.
 */
public final class OtlpReceiver implements AutoCloseable {
  public enum Behaviour { ACCEPT, REFUSE, HANG }

  private final HttpServer server;
  private final List<Span> spans = new CopyOnWriteArrayList<>();
  private final List<byte[]> bodies = new CopyOnWriteArrayList<>();
  private final CountDownLatch released = new CountDownLatch(1);
  private volatile Behaviour behaviour = Behaviour.ACCEPT;
  private volatile int requests;

  public OtlpReceiver() throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
    server.setExecutor(Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "otlp-receiver");
      t.setDaemon(true);
      return t;
    }));
    server.createContext("/v1/traces", exchange -> {
      requests++;
      byte[] body;
      try (InputStream in = exchange.getRequestBody()) {
        body = in.readAllBytes();
      }
      if (behaviour == Behaviour.HANG) {
        try {
          released.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        exchange.close();
        return;
      }
      if (behaviour == Behaviour.REFUSE) {
        exchange.sendResponseHeaders(503, -1);
        exchange.close();
        return;
      }
      bodies.add(body);
      ExportTraceServiceRequest request = ExportTraceServiceRequest.parseFrom(body);
      synchronized (this) {
        for (ResourceSpans rs : request.getResourceSpansList()) {
          for (ScopeSpans ss : rs.getScopeSpansList()) {
            spans.addAll(ss.getSpansList());
          }
        }
        notifyAll();
      }
      byte[] ok = ExportTraceServiceResponse.getDefaultInstance().toByteArray();
      exchange.getResponseHeaders().set("Content-Type", "application/x-protobuf");
      exchange.sendResponseHeaders(200, ok.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(ok);
      }
    });
    server.start();
  }

  public String endpoint() {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/v1/traces";
  }

  void behave(Behaviour b) {
    behaviour = b;
  }

  int requests() {
    return requests;
  }

  /** Waits until at least {@code count} spans arrived; returns all received so far. */
  public List<Span> awaitSpans(int count, Duration deadline) throws InterruptedException {
    long end = System.nanoTime() + deadline.toNanos();
    synchronized (this) {
      long left;
      while (spans.size() < count && (left = end - System.nanoTime()) > 0) {
        TimeUnit.NANOSECONDS.timedWait(this, left);
      }
    }
    return new ArrayList<>(spans);
  }

  /** Every exported request body, as received (to search for what must never be exported). */
  List<byte[]> bodies() {
    return new ArrayList<>(bodies);
  }

  @Override
  public void close() {
    released.countDown();
    server.stop(0);
  }
}
