package dev.egret.telemetry;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.util.ByteArrayBuilder;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.time.Instant;
import java.util.concurrent.TimeUnit;

/**
 * What one access-log line costs, on the caller's thread (the event loop: {@link AccessLog#write})
 * and on the writer thread (rendering and writing the JSON). Not a unit test (surefire's default
 * includes skip it): run it by hand after {@code mvn test-compile}.
 *
 * <pre>
 * mvn -B -o -q -pl proxy test-compile dependency:build-classpath -Dmdep.outputFile=/tmp/egret.cp
 * java -cp proxy/target/test-classes:proxy/target/classes:$(cat /tmp/egret.cp) \
 *     dev.egret.telemetry.AccessLogBenchmark [lines per round, default 200000] [rounds, default 8]
 * </pre>
 *
 * <p>Each round writes the same mix of lines (an upgrade with every timing, a tunnel, a denial
 * with details, a failure whose details hold quotes, a newline and non-ASCII text) into a log
 * whose queue holds the whole round, into a stream that counts bytes and discards them, and
 * reports the caller's ns per {@code write} and the writer's ns per line (from the first write
 * to the last line written, divided by the lines). Then it renders the same entries on one thread
 * three ways, without the queue: Jackson with a generator per line (what the access log did
 * before {@link JsonLine}), Jackson with one generator reused over a byte builder, and {@link
 * JsonLine}. The first rounds warm the JIT; read the last.
 */
public final class AccessLogBenchmark {
  public static void main(String[] args) throws Exception {
    int lines = args.length > 0 ? Integer.parseInt(args[0]) : 200_000;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 8;
    Hop[] mix = mix();
    for (int round = 1; round <= rounds; round++) {
      CountingStream out = new CountingStream();
      AccessLog log = new AccessLog(out, lines);
      long start = System.nanoTime();
      for (int i = 0; i < lines; i++) {
        if (!log.write(mix[i % mix.length])) {
          throw new IllegalStateException("line " + i + " dropped");
        }
      }
      long queued = System.nanoTime();
      long deadline = queued + TimeUnit.SECONDS.toNanos(120);
      while (log.written() < lines) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("writer did not finish: " + log.written());
        }
        Thread.onSpinWait();
      }
      long done = System.nanoTime();
      log.close();
      System.out.printf("round %d: caller %.0f ns/write, writer %.0f ns/line, %.0f bytes/line%n",
          round, (queued - start) / (double) lines, (done - start) / (double) lines,
          out.bytes / (double) lines);
    }
    AccessLog.Entry[] entries = new AccessLog.Entry[mix.length];
    for (int i = 0; i < mix.length; i++) {
      entries[i] = AccessLog.entry(mix[i]);
    }
    for (int round = 1; round <= rounds; round++) {
      long sink = 0;
      long t0 = cpu();
      ByteArrayOutputStream perLine = new ByteArrayOutputStream(512);
      for (int i = 0; i < lines; i++) {
        perLine.reset();
        jacksonPerLine(entries[i % entries.length], perLine);
        sink += perLine.size();
      }
      long t1 = cpu();
      ByteArrayBuilder reusedOut = new ByteArrayBuilder(64 * 1024);
      JsonGenerator reused = JSON.createGenerator(reusedOut, JsonEncoding.UTF8);
      for (int i = 0; i < lines; i++) {
        jacksonReused(entries[i % entries.length], reused);
        if (i % 256 == 255) {
          reused.flush();
          sink += reusedOut.size();
          reusedOut.reset();
        }
      }
      reused.flush();
      long t2 = cpu();
      JsonLine line = new JsonLine();
      for (int i = 0; i < lines; i++) {
        AccessLog.render(entries[i % entries.length], line);
        if (i % 256 == 255) {
          sink += line.length();
          line.reset();
        }
      }
      long t3 = cpu();
      System.out.printf("render round %d: jackson per line %.0f ns, jackson reused %.0f ns,"
              + " JsonLine %.0f ns (CPU per line; %d)%n", round, (t1 - t0) / (double) lines,
          (t2 - t1) / (double) lines, (t3 - t2) / (double) lines, sink % 10);
    }
  }

  private static final JsonFactory JSON = new JsonFactory();

  /** This thread's CPU time: on a shared machine, wall time mostly measures the neighbours. */
  private static long cpu() {
    return java.lang.management.ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime();
  }

  /** The access log's renderer before JsonLine: a generator per line. */
  private static void jacksonPerLine(AccessLog.Entry e, OutputStream sink) throws IOException {
    try (JsonGenerator g = JSON.createGenerator(sink, JsonEncoding.UTF8)) {
      fields(e, g);
    }
    sink.write('\n');
  }

  private static void jacksonReused(AccessLog.Entry e, JsonGenerator g) throws IOException {
    fields(e, g);
    g.writeRaw('\n');
  }

  private static void fields(AccessLog.Entry e, JsonGenerator g) throws IOException {
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
  }

  private static void millis(JsonGenerator g, String field, long nanos) throws IOException {
    if (nanos < 0) {
      g.writeNullField(field);
    } else {
      g.writeNumberField(field, Math.round(nanos / 1_000.0) / 1_000.0);
    }
  }

  private static Hop[] mix() {
    return AccessLogLoad.mix();
  }

  private static final class CountingStream extends OutputStream {
    long bytes;

    @Override
    public void write(int b) {
      bytes++;
    }

    @Override
    public void write(byte[] b, int off, int len) {
      bytes += len;
    }
  }
}
