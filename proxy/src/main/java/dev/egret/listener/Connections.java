package dev.egret.listener;

import dev.egret.exchange.Tracked;
import dev.egret.telemetry.Telemetry;
import io.netty.channel.Channel;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntSupplier;

/**
 * Every admitted downstream connection of every listener: the {@code limits.maxConnections} cap,
 * the {@code egret_client_connections} gauge, and the drain. A connection is counted from accept
 * until its channel closes, whatever it became (a tunnel included): the count is given back by
 * the channel's close future, which fires exactly once for every channel. The cap is read at
 * each accept from the config in force, so a reload applies it to the next connection; the ones
 * already open above a lowered cap are not closed.
 */
public final class Connections {
  private final ConcurrentHashMap<Channel, Tracked> open = new ConcurrentHashMap<>();
  private final AtomicInteger count = new AtomicInteger();
  private final Telemetry telemetry;
  private final IntSupplier limit;
  private volatile boolean draining;
  private final Promise<Void> allClosed = Promise.promise();

  /** @param limit {@code limits.maxConnections} of the config in force, read at each accept */
  public Connections(Telemetry telemetry, IntSupplier limit) {
    this.telemetry = telemetry;
    this.limit = limit;
    telemetry.downstreamConnectionsLimit(limit.getAsInt());
  }

  /**
   * Counts an accepted connection under the cap. False when it is over the cap: it is counted as
   * a refusal, not as open, and the caller refuses it at once (a 503, or a close where HTTP means
   * nothing). A refused connection never holds a slot, so what bounds the descriptors refused
   * connections hold is the listener's refusal budget, not this count.
   */
  boolean admit(Channel ch) {
    if (count.incrementAndGet() > limit.getAsInt()) {
      count.decrementAndGet();
      telemetry.downstreamConnectionRefusedAtCap();
      return false;
    }
    telemetry.downstreamConnectionOpened();
    ch.closeFuture().addListener(f -> {
      count.decrementAndGet();
      open.remove(ch);
      telemetry.downstreamConnectionClosed();
      if (draining && count.get() == 0) {
        allClosed.tryComplete();
      }
    });
    return true;
  }

  /** Records what a connection is now (an HTTP connection, a tunnel). */
  public void track(Channel ch, Tracked what) {
    open.put(ch, what);
    if (draining) {
      ch.eventLoop().execute(what::drain);
    }
  }

  /** The cap in force now. */
  public int limit() {
    return limit.getAsInt();
  }

  public int count() {
    return count.get();
  }

  /** Starts the drain; completes when the last connection has closed. */
  public Future<Void> drain() {
    draining = true;
    open.forEach((ch, what) -> ch.eventLoop().execute(what::drain));
    if (count.get() == 0) {
      allClosed.tryComplete();
    }
    return allClosed.future();
  }

  /**
   * Closes every connection left at the drain's deadline; completes with how many hops in
   * flight were cut, by kind.
   */
  public Future<Map<String, Integer>> cutAll() {
    Map<String, Integer> cut = new ConcurrentHashMap<>();
    var closing = new java.util.ArrayList<Future<Void>>();
    open.forEach((ch, what) -> {
      Promise<Void> p = Promise.promise();
      closing.add(p.future());
      ch.eventLoop().execute(() -> {
        String kind = what.inFlight();
        if (kind != null) {
          cut.merge(kind, 1, Integer::sum);
        }
        ch.close().addListener(f -> p.tryComplete());
      });
    });
    return Future.join(closing).map(v -> new HashMap<>(cut));
  }
}
