package dev.egret.telemetry;

import dev.egret.failure.ErrorKind;
import dev.egret.policy.Kind;
import dev.egret.policy.Target;
import java.io.BufferedOutputStream;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.concurrent.TimeUnit;

/**
 * The access log under a steady request rate, as a sidecar sees it: lines arrive one at a time
 * from a producer thread (the event loop) at a fixed rate, and go to a stream built like {@code
 * System.out} (a {@code PrintStream} that flushes on every write) on {@code /dev/null}. Reports
 * the producer's CPU per {@link AccessLog#write} and the writer thread's CPU per line. Uses only
 * the public API, so the same class measures an older {@link AccessLog}. Not a unit test: run it
 * by hand after {@code mvn test-compile}.
 *
 * <pre>
 * java -cp proxy/target/test-classes:proxy/target/classes:$(cat /tmp/egret.cp) \
 *     dev.egret.telemetry.AccessLogLoad [lines per second, default 20000] [seconds, default 3] \
 *     [rounds, default 4]
 * </pre>
 */
public final class AccessLogLoad {
  public static void main(String[] args) throws Exception {
    int rate = args.length > 0 ? Integer.parseInt(args[0]) : 20_000;
    int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 4;
    ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    Hop[] mix = mix();
    long gapNanos = TimeUnit.SECONDS.toNanos(1) / rate;
    for (int round = 1; round <= rounds; round++) {
      PrintStream out = new PrintStream(
          new BufferedOutputStream(new FileOutputStream("/dev/null"), 128), true);
      AccessLog log = new AccessLog(out, AccessLog.DEFAULT_CAPACITY);
      Thread writer = Thread.getAllStackTraces().keySet().stream()
          .filter(t -> t.getName().equals("egret-access-log") && t.isAlive())
          .reduce((a, b) -> a.getId() > b.getId() ? a : b).orElseThrow();
      long writerCpu0 = threads.getThreadCpuTime(writer.getId());
      int lines = rate * seconds;
      long callerCpu = 0;
      long next = System.nanoTime();
      for (int i = 0; i < lines; i++) {
        while (System.nanoTime() < next) {
          Thread.onSpinWait();
        }
        next += gapNanos;
        long c0 = threads.getCurrentThreadCpuTime();
        log.write(mix[i % mix.length]);
        callerCpu += threads.getCurrentThreadCpuTime() - c0;
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (log.written() + log.dropped() < lines && System.nanoTime() < deadline) {
        Thread.onSpinWait();
      }
      long writerCpu = threads.getThreadCpuTime(writer.getId()) - writerCpu0;
      log.close();
      System.out.printf("round %d at %d lines/s: caller %.0f ns CPU/write (incl. ~the clock read),"
              + " writer %.0f ns CPU/line, written %d, dropped %d%n", round, rate,
          callerCpu / (double) lines, writerCpu / (double) lines, log.written(), log.dropped());
    }
  }

  static Hop[] mix() {
    Hop upgrade = Hops.upgrade("api.example.com", "/v1/items/12345");
    upgrade.upstreamAddress = "203.0.113.7:443";
    upgrade.tlsVersion = "TLSv1.3";
    upgrade.tlsCipher = "TLS_AES_128_GCM_SHA256";
    upgrade.dnsNanos = 1_234_567;
    upgrade.connectNanos = 2_000_000;
    upgrade.handshakeNanos = 9_500_000;
    upgrade.firstByteNanos = 25_000_001;
    upgrade.bytesUpstream = 321;
    upgrade.bytesDownstream = 4096;
    Hop reused = Hops.upgrade("api.example.com", "/v1/items");
    reused.upstreamAddress = "203.0.113.7:443";
    reused.tlsVersion = "TLSv1.3";
    reused.tlsCipher = "TLS_AES_128_GCM_SHA256";
    reused.firstByteNanos = 812_345;
    reused.bytesDownstream = 100;
    Hop tunnel = Hops.tunnel("na1.salesforce.com");
    tunnel.upstreamAddress = "198.51.100.20:443";
    tunnel.tlsVersion = "TLSv1.2";
    tunnel.tlsCipher = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";
    tunnel.bytesUpstream = 1_048_576;
    tunnel.bytesDownstream = 52_428_800;
    Hop denied = Hops.hop(Hops.ALLOWLIST, new Target(Kind.TLS, "evil.example.net", 443, "GET",
        "/"), ErrorKind.REQUEST_DENIED, 403, 150_000);
    denied.errorDetails = null;
    Hop failed = Hops.hop(Hops.ALLOWLIST, new Target(Kind.TLS, "api.example.com", 443, "GET",
        "/"), ErrorKind.DESTINATION_UNAVAILABLE, 502, 1_000);
    failed.errorDetails = "upstream said \"bye\"\nüber-host \\ 名前";
    return new Hop[] {upgrade, reused, reused, reused, tunnel, denied, failed, reused};
  }
}
