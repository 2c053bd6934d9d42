package dev.egret.tunnel;

import dev.egret.failure.ErrorKind;
import dev.egret.telemetry.Hop;
import dev.egret.telemetry.Telemetry;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A {@link Telemetry} that keeps every finished hop and the tunnel gauge, for tests to await:
 *
 * <pre>
 * Hop hop = telemetry.awaitHop(h -> h.url.equals("api.partner.test:" + port), Duration.ofSeconds(5));
 * assertThat(hop.error).isEqualTo(ErrorKind.TLS_PROTOCOL_ERROR);
 * </pre>
 *
 * <p>Egret calls it from event-loop threads and the test reads from its own; every access holds
 * {@code this}.
 */
final class RecordingTelemetry implements Telemetry {
  private final List<Hop> hops = new ArrayList<>();
  private int tunnelsActive;
  private int maxTunnelsActive;

  @Override
  public synchronized void hopFinished(Hop hop) {
    hops.add(hop);
    notifyAll();
  }

  @Override
  public synchronized void tunnelOpened() {
    tunnelsActive++;
    maxTunnelsActive = Math.max(maxTunnelsActive, tunnelsActive);
    notifyAll();
  }

  @Override
  public synchronized void tunnelClosed() {
    tunnelsActive--;
    notifyAll();
  }

  @Override
  public void configReloadFailed(String reason) {}

  /** The first finished hop that matches, waiting for it up to {@code timeout}. */
  synchronized Hop awaitHop(Predicate<Hop> match, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      for (Hop h : hops) {
        if (match.test(h)) {
          return h;
        }
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("no matching hop within " + timeout + "; hops so far: "
            + describe(hops));
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  /** The hop of the CONNECT to {@code authority} that ended with {@code error} (null: none). */
  Hop awaitTunnelHop(String authority, ErrorKind error, Duration timeout)
      throws InterruptedException {
    return awaitHop(h -> authority.equals(h.url) && h.error == error, timeout);
  }

  /** Waits until no tunnel is open. */
  synchronized void awaitNoTunnels(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (tunnelsActive > 0) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError(tunnelsActive + " tunnels still open after " + timeout);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  synchronized int maxTunnelsActive() {
    return maxTunnelsActive;
  }

  synchronized void resetMax() {
    maxTunnelsActive = tunnelsActive;
  }

  synchronized List<Hop> hops() {
    return List.copyOf(hops);
  }

  private static String describe(List<Hop> hops) {
    StringBuilder b = new StringBuilder();
    for (Hop h : hops) {
      b.append("\n  ").append(h.method).append(' ').append(h.url).append(" status=")
          .append(h.status).append(" error=").append(h.error).append(" (")
          .append(h.errorDetails).append(')');
    }
    return b.toString();
  }
}
