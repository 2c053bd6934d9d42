package dev.egret.testing;

import dev.egret.failure.ErrorKind;
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
 * The tests' one {@link Telemetry}: keeps every finished hop, the tunnel gauge and counts of
 * upstream connects and handshakes, so a test can check what Egret reported after the client got
 * its answer, awaiting it rather than sleeping:
 *
 * <pre>
 * RecordingTelemetry seen = new RecordingTelemetry();
 * EgretFixture egret = EgretFixture.builder().hosts(hosts).telemetry(seen).start(dir, yaml);
 * Hop hop = seen.awaitHop(h -> h.url.endsWith("/x"), Duration.ofSeconds(5));
 * assertThat(hop.error).isEqualTo(ErrorKind.TLS_PROTOCOL_ERROR);
 * </pre>
 *
 * <p>Egret calls it from event-loop threads and the test reads from its own; every access holds
 * {@code this}.
 */
public final class RecordingTelemetry implements Telemetry {
  private final List<Hop> hops = new ArrayList<>();
  private int tunnelsActive;
  private int maxTunnelsActive;
  private int handshakes;
  private int connects;

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
  public synchronized void upstreamHandshake(String destination, String host, String version,
      String cipher, HandshakeResult result, Duration took, X509Certificate leaf) {
    handshakes++;
  }

  @Override
  public synchronized void upstreamConnected(String destination, Duration took) {
    connects++;
  }

  /** The first finished hop that matches, waiting for it up to {@code timeout}. */
  public synchronized Hop awaitHop(Predicate<Hop> match, Duration timeout)
      throws InterruptedException {
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
  public Hop awaitTunnelHop(String authority, ErrorKind error, Duration timeout)
      throws InterruptedException {
    return awaitHop(h -> authority.equals(h.url) && h.error == error, timeout);
  }

  /** Waits until no tunnel is open. */
  public synchronized void awaitNoTunnels(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (tunnelsActive > 0) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError(tunnelsActive + " tunnels still open after " + timeout);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  public synchronized int maxTunnelsActive() {
    return maxTunnelsActive;
  }

  public synchronized void resetMax() {
    maxTunnelsActive = tunnelsActive;
  }

  public synchronized List<Hop> hops() {
    return List.copyOf(hops);
  }

  /** Upstream TLS handshakes reported, whatever their result. */
  public synchronized int handshakes() {
    return handshakes;
  }

  /** New upstream TCP connections reported. */
  public synchronized int connects() {
    return connects;
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
