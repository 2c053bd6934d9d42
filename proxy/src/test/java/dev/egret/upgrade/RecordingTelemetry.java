package dev.egret.upgrade;

import dev.egret.failure.HandshakeResult;
import dev.egret.telemetry.Hop;
import dev.egret.telemetry.Telemetry;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * Keeps every finished hop and counts upstream handshakes, so a test can check what Egret
 * reported about a request after the client got its answer:
 *
 * <pre>
 * RecordingTelemetry seen = new RecordingTelemetry();
 * ProxyFixture egret = ProxyFixture.start(dir, yaml, hosts, seen);
 * Hop hop = seen.awaitHop(h -> h.url.endsWith("/x"), Duration.ofSeconds(5));
 * </pre>
 */
final class RecordingTelemetry implements Telemetry {
  private final List<Hop> hops = new ArrayList<>();
  private int handshakes;
  private int connects;

  @Override
  public synchronized void hopFinished(Hop hop) {
    hops.add(hop);
    notifyAll();
  }

  /** Waits for a finished hop that matches; fails with the hops so far at the deadline. */
  synchronized Hop awaitHop(Predicate<Hop> match, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      for (Hop hop : hops) {
        if (match.test(hop)) {
          return hop;
        }
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("no matching hop within " + timeout + "; finished: "
            + hops.stream().map(h -> h.method + " " + h.url + " " + h.status + " " + h.error)
                .toList());
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  /** Upstream TLS handshakes reported, whatever their result. */
  synchronized int handshakes() {
    return handshakes;
  }

  /** New upstream TCP connections reported. */
  synchronized int connects() {
    return connects;
  }

  @Override
  public synchronized void upstreamHandshake(String destination, String host, String version,
      String cipher, HandshakeResult result, java.time.Duration took, X509Certificate leaf) {
    handshakes++;
  }

  @Override
  public synchronized void upstreamConnected(String destination, java.time.Duration took) {
    connects++;
  }

  @Override public void tunnelOpened() {}

  @Override public void tunnelClosed() {}

  @Override public void configLoaded(String sha256) {}

  @Override public void configReloadFailed(String reason) {}
}
