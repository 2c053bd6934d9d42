package dev.egret.telemetry;

import dev.egret.policy.Decision;
import dev.egret.policy.Verdict;
import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
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
 * an event loop. Below that bound no line is ever dropped.
 *
 * <p>The writer renders lines with {@link JsonLine} (a reused UTF-8 buffer, no allocation per
 * line) and hands each batch of up to {@value #BATCH} lines to the stream in one write; {@code
 * AccessLogBenchmark} measures what a line costs on each side.
 *
 * <p>Fields: {@code time} (ISO-8601 UTC, when the request arrived), {@code client}, {@code
 * peer} (only when a trusted PROXY header named the client: then {@code client} is the header's
 * source and {@code peer} the load balancer that sent it), {@code method}, {@code url} (no query string, no userinfo), {@code kind}, {@code destination}, {@code
 * host} (the host the client named), {@code outcome}, {@code error} (Proxy-Status error type or
 * {@code none}), {@code status}, {@code upstream} (address connected to), {@code tls_version},
 * {@code tls_cipher}, {@code dns_ms}, {@code connect_ms}, {@code handshake_ms}, {@code
 * first_byte_ms}, {@code total_ms} (milliseconds with microsecond precision, null when the stage
 * did not happen), {@code bytes_upstream}, {@code bytes_downstream}, {@code rule}, {@code
 * details}; in gateway mode also {@code identity} (the client's name, or {@code unidentified}),
 * and {@code peer} (the load balancer) when a PROXY header named the client. Otherwise every
 * line carries every key, so log queries need no existence checks. Headers are
 * never logged, so no credential can leak through them.
 */
public final class AccessLog implements AutoCloseable {
  /** Enough for a few seconds of a busy sidecar; each entry is a few hundred bytes. */
  public static final int DEFAULT_CAPACITY = 8192;

  /** Lines rendered into one buffer and handed to the stream in one write. */
  private static final int BATCH = 256;
  /** How long the writer sleeps between looks at an empty queue while lines keep coming. */
  private static final long LINGER_NANOS = TimeUnit.MILLISECONDS.toNanos(1);
  /** After this long without a line, the writer parks until a line wakes it. */
  private static final long IDLE_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

  /** One hop, copied on the caller's thread so the writer never touches a live {@link Hop}. */
  record Entry(long epochMillis, String client, String method, String url, String kind,
      String destination, String host, String outcome, String error, int status,
      String upstream, String tlsVersion, String tlsCipher, long dnsNanos, long connectNanos,
      long handshakeNanos, long firstByteNanos, long totalNanos, long bytesUpstream,
      long bytesDownstream, String rule, String details, String origin, String peer,
      String identity, String upstreamProxy) {}

  /** Tells the writer thread to finish; compared by identity. */
  private static final Entry STOP = new Entry(0, null, null, null, null, null, null, null, null,
      0, null, null, null, 0, 0, 0, 0, 0, 0, 0, null, null, null, null, null, null);

  private final OutputStream out;
  private final BlockingQueue<Entry> queue;
  private final AtomicLong dropped = new AtomicLong();
  private final AtomicLong written = new AtomicLong();
  private final Thread writer;
  private volatile boolean closed;
  /** Set by the writer before it parks with no timeout; {@link #write} then wakes it. */
  private volatile boolean parked;

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
    wakeWriter();
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
      LockSupport.unpark(writer);
      writer.join(TimeUnit.SECONDS.toMillis(2));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * The writer thread: takes what is queued (up to {@link #BATCH} lines), renders the batch into
   * one buffer and writes (and flushes) it in one call.
   *
   * <p>How it waits matters more than how it renders: {@code System.out} flushes on every write,
   * so a line written alone is a {@code write(2)} of its own, and a writer blocked in {@code
   * take()} makes every {@link #write} on an event loop pay a thread wake-up (a futex call). So
   * once the queue is empty, the writer sleeps {@link #LINGER_NANOS} on its own and looks again,
   * collecting what arrived meanwhile into one write; producers never wake it while it lingers.
   * Only after {@link #IDLE_NANOS} without a line does it park until woken, and then the first
   * {@link #write} wakes it once (see {@link #wakeWriter}). A line waits at most about a
   * millisecond (plus the render) before it is written.
   */
  private void drain() {
    JsonLine line = new JsonLine();
    List<Entry> batch = new ArrayList<>(BATCH);
    long idleSince = System.nanoTime();
    boolean stop = false;
    while (!stop) {
      queue.drainTo(batch, BATCH);
      if (batch.isEmpty()) {
        if (System.nanoTime() - idleSince < IDLE_NANOS) {
          LockSupport.parkNanos(this, LINGER_NANOS);
        } else {
          parked = true;
          // Re-check after publishing the flag: a line offered before it was set woke no one.
          if (queue.isEmpty() && !closed) {
            LockSupport.park(this);
          }
          parked = false;
        }
        if (Thread.interrupted() && closed) {
          break;
        }
        continue;
      }
      idleSince = System.nanoTime();
      line.reset();
      int lines = 0;
      for (Entry e : batch) {
        if (e == STOP) {
          stop = true;
          break;
        }
        render(e, line);
        lines++;
      }
      batch.clear();
      try {
        line.writeTo(out);
        written.addAndGet(lines);
      } catch (IOException ioe) {
        // stdout went away; keep draining so callers stay unblocked, count the loss.
        dropped.addAndGet(lines);
      }
      flush();
    }
  }

  /** Wakes the writer if it parked for good; a lingering writer looks again by itself. */
  private void wakeWriter() {
    if (parked) {
      LockSupport.unpark(writer);
    }
  }

  static Entry entry(Hop hop) {
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
        hop.bytesUpstream, hop.bytesDownstream, d == null ? null : d.ruleName(), details,
        hop.origin == null ? "proxy" : hop.origin, hop.peer, hop.identity, hop.upstreamProxy);
  }

  private void flush() {
    try {
      out.flush();
    } catch (IOException e) {
      // Counted when the next write fails; a flush has no lines of its own.
    }
  }

  /**
   * Appends one line for {@code e}; every key on every line, in this order, except {@code peer},
   * which only a connection whose PROXY header named the client has: a sidecar's line stays as
   * it was.
   */
  static void render(Entry e, JsonLine g) {
    g.begin();
    g.time("time", e.epochMillis());
    g.string("client", e.client());
    if (e.peer() != null) {
      g.string("peer", e.peer());
    }
    if (e.identity() != null) {
      // Gateway mode only: the configured client the request came from, or "unidentified". A
      // sidecar's lines stay exactly as they were.
      g.string("identity", e.identity());
    }
    g.string("method", e.method());
    g.string("url", e.url());
    g.string("kind", e.kind());
    // How the hop reached Egret: the proxy port, plain HTTP inside a CONNECT ("tunnelled"), or
    // a transparent listener fed by an iptables redirect.
    g.string("origin", e.origin());
    g.string("destination", e.destination());
    g.string("host", e.host());
    g.string("outcome", e.outcome());
    g.string("error", e.error());
    g.number("status", e.status());
    g.string("upstream", e.upstream());
    g.string("upstream_proxy", e.upstreamProxy());
    g.string("tls_version", e.tlsVersion());
    g.string("tls_cipher", e.tlsCipher());
    g.millis("dns_ms", e.dnsNanos());
    g.millis("connect_ms", e.connectNanos());
    g.millis("handshake_ms", e.handshakeNanos());
    g.millis("first_byte_ms", e.firstByteNanos());
    g.millis("total_ms", e.totalNanos());
    g.number("bytes_upstream", e.bytesUpstream());
    g.number("bytes_downstream", e.bytesDownstream());
    g.string("rule", e.rule());
    g.string("details", e.details());
    g.end();
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
