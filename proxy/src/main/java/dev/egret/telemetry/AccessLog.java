package dev.egret.telemetry;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.egret.policy.Decision;
import dev.egret.policy.Verdict;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.time.Instant;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The access log: one JSON object per line for every finished hop. Usage: {@code
 * AccessLog.toStdout()} in production (or {@code new AccessLog(stream, capacity)} in a test), call
 * {@link #write(Hop)} from any thread, {@link #close()} on shutdown.
 *
 * <p>{@link #write} never blocks: it copies the hop into an immutable entry and offers it to a
 * bounded queue that a single daemon thread drains into the stream. When stdout is slower than
 * the traffic (a stuck log shipper), the queue fills and further lines are dropped and counted
 * ({@link #dropped()}, exported as {@code egret_access_log_dropped_total}) rather than stalling
 * an event loop.
 *
 * <p>Fields: {@code time} (ISO-8601 UTC, when the request arrived), {@code client}, {@code
 * method}, {@code url} (no query string, no userinfo), {@code kind}, {@code destination}, {@code
 * host} (the host the client named), {@code outcome}, {@code error} (Proxy-Status error type or
 * {@code none}), {@code status}, {@code upstream} (address connected to), {@code tls_version},
 * {@code tls_cipher}, {@code dns_ms}, {@code connect_ms}, {@code handshake_ms}, {@code
 * first_byte_ms}, {@code total_ms} (milliseconds with microsecond precision, null when the stage
 * did not happen), {@code bytes_upstream}, {@code bytes_downstream}, {@code rule}, {@code
 * details}. Every line carries every key, so log queries need no existence checks. Headers are
 * never logged, so no credential can leak through them.
 */
public final class AccessLog implements AutoCloseable {
  /** Enough for a few seconds of a busy sidecar; each entry is a few hundred bytes. */
  public static final int DEFAULT_CAPACITY = 8192;

  private static final JsonFactory JSON = new JsonFactory();

  /** One hop, copied on the caller's thread so the writer never touches a live {@link Hop}. */
  private record Entry(long epochMillis, String client, String method, String url, String kind,
      String destination, String host, String outcome, String error, int status,
      String upstream, String tlsVersion, String tlsCipher, long dnsNanos, long connectNanos,
      long handshakeNanos, long firstByteNanos, long totalNanos, long bytesUpstream,
      long bytesDownstream, String rule, String details) {}

  /** Tells the writer thread to finish; compared by identity. */
  private static final Entry STOP = new Entry(0, null, null, null, null, null, null, null, null,
      0, null, null, null, 0, 0, 0, 0, 0, 0, 0, null, null);

  private final OutputStream out;
  private final BlockingQueue<Entry> queue;
  private final AtomicLong dropped = new AtomicLong();
  private final AtomicLong written = new AtomicLong();
  private final Thread writer;
  private volatile boolean closed;

  /**
   * @param out where lines go; written only by the writer thread, never closed by this class
   * @param capacity lines that may wait for the writer before new ones are dropped
   */
  public AccessLog(OutputStream out, int capacity) {
    if (capacity < 1) {
      throw new IllegalArgumentException("access log capacity must be at least 1, got " + capacity);
    }
    this.out = out;
    this.queue = new ArrayBlockingQueue<>(capacity);
    this.writer = new Thread(this::drain, "egret-access-log");
    writer.setDaemon(true);
    writer.start();
  }

  /** The production log: stdout, {@link #DEFAULT_CAPACITY} lines of slack. */
  public static AccessLog toStdout() {
    return new AccessLog(System.out, DEFAULT_CAPACITY);
  }

  /**
   * Queues one line for the hop. Returns false, and counts a drop, when the queue is full or
   * the log is closed. Never blocks.
   */
  public boolean write(Hop hop) {
    if (closed || !queue.offer(entry(hop))) {
      dropped.incrementAndGet();
      return false;
    }
    return true;
  }

  /** Lines dropped so far because the writer could not keep up (or the log was closed). */
  public long dropped() {
    return dropped.get();
  }

  /** Lines written to the stream so far. */
  public long written() {
    return written.get();
  }

  /**
   * Writes what is queued, then stops the writer; waits at most about four seconds in all. Call
   * it on shutdown, never on an event loop.
   */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      // Bounded waits: if the writer is stuck on a blocked stream, shutdown must not hang too.
      if (!queue.offer(STOP, 2, TimeUnit.SECONDS)) {
        writer.interrupt();
      }
      writer.join(TimeUnit.SECONDS.toMillis(2));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void drain() {
    ByteArrayOutputStream line = new ByteArrayOutputStream(512);
    try {
      while (true) {
        Entry e = queue.take();
        if (e == STOP) {
          break;
        }
        line.reset();
        render(e, line);
        line.write('\n');
        try {
          line.writeTo(out);
          written.incrementAndGet();
          // Flush once the queue is empty: a burst goes out in one write, a trickle promptly.
          if (queue.isEmpty()) {
            out.flush();
          }
        } catch (IOException ioe) {
          // stdout went away; keep draining so callers stay unblocked, count the loss.
          dropped.incrementAndGet();
        }
      }
      out.flush();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (IOException e) {
      // The final flush failed: nothing left to do.
    }
  }

  private static Entry entry(Hop hop) {
    Decision d = hop.decision;
    String host = d == null ? null : d.target().host();
    String details = hop.errorDetails;
    if (details == null && d != null && d.verdict() != Verdict.ALLOW) {
      details = d.details();
    }
    return new Entry(hop.startEpochMillis, hop.client, hop.method, redactUrl(hop.url),
        Observability.kindLabel(hop), hop.destination(), host, hop.outcome(), hop.errorLabel(),
        hop.status, hop.upstreamAddress, hop.tlsVersion, hop.tlsCipher, hop.dnsNanos,
        hop.connectNanos, hop.handshakeNanos, hop.firstByteNanos, hop.totalNanos,
        hop.bytesUpstream, hop.bytesDownstream, d == null ? null : d.ruleName(), details);
  }

  private static void render(Entry e, OutputStream sink) {
    try (JsonGenerator g = JSON.createGenerator(sink, JsonEncoding.UTF8)) {
      g.writeStartObject();
      g.writeStringField("time", Instant.ofEpochMilli(e.epochMillis()).toString());
      g.writeStringField("client", e.client());
      g.writeStringField("method", e.method());
      g.writeStringField("url", e.url());
      g.writeStringField("kind", e.kind());
      g.writeStringField("destination", e.destination());
      g.writeStringField("host", e.host());
      g.writeStringField("outcome", e.outcome());
      g.writeStringField("error", e.error());
      g.writeNumberField("status", e.status());
      g.writeStringField("upstream", e.upstream());
      g.writeStringField("tls_version", e.tlsVersion());
      g.writeStringField("tls_cipher", e.tlsCipher());
      millis(g, "dns_ms", e.dnsNanos());
      millis(g, "connect_ms", e.connectNanos());
      millis(g, "handshake_ms", e.handshakeNanos());
      millis(g, "first_byte_ms", e.firstByteNanos());
      millis(g, "total_ms", e.totalNanos());
      g.writeNumberField("bytes_upstream", e.bytesUpstream());
      g.writeNumberField("bytes_downstream", e.bytesDownstream());
      g.writeStringField("rule", e.rule());
      g.writeStringField("details", e.details());
      g.writeEndObject();
    } catch (IOException impossible) {
      // The sink is a ByteArrayOutputStream.
      throw new IllegalStateException(impossible);
    }
  }

  /** Milliseconds rounded to the microsecond; null for a stage that did not happen (-1). */
  private static void millis(JsonGenerator g, String field, long nanos) throws IOException {
    if (nanos < 0) {
      g.writeNullField(field);
    } else {
      g.writeNumberField(field, Math.round(nanos / 1_000.0) / 1_000.0);
    }
  }

  /**
   * The URL as it may be logged: without query string or fragment, and without userinfo. The
   * caller already drops them; this is the second lock on the door, because a token in a query
   * string or a password in {@code user:pass@} must never reach a log shipper.
   */
  static String redactUrl(String url) {
    if (url == null) {
      return null;
    }
    String u = url;
    int cut = indexOfAny(u, '?', '#');
    if (cut >= 0) {
      u = u.substring(0, cut);
    }
    int schemeEnd = u.indexOf("://");
    int authorityStart = schemeEnd < 0 ? 0 : schemeEnd + 3;
    int pathStart = u.indexOf('/', authorityStart);
    int authorityEnd = pathStart < 0 ? u.length() : pathStart;
    int at = u.lastIndexOf('@', authorityEnd - 1);
    if (at >= authorityStart) {
      u = u.substring(0, authorityStart) + u.substring(at + 1);
    }
    return u;
  }

  private static int indexOfAny(String s, char a, char b) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == a || c == b) {
        return i;
      }
    }
    return -1;
  }
}
