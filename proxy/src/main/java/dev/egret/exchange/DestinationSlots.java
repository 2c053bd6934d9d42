package dev.egret.exchange;

import java.util.concurrent.ConcurrentHashMap;

/**
 * Counts requests and tunnels in flight per destination (the matched rule's host pattern), so
 * that {@code limits.maxConnectionsPerDestination} caps them on every path. Take a slot before
 * connecting upstream and give it back exactly once when the hop ends.
 *
 * <p>Shared by every event loop, hence the concurrent map; a destination whose count drops to
 * zero is removed, so the map holds only destinations with hops in flight.
 */
final class DestinationSlots {
  private final ConcurrentHashMap<String, Integer> open = new ConcurrentHashMap<>();

  /** Takes a slot if fewer than {@code limit} are taken; false when the cap is reached. */
  boolean tryAcquire(String destination, int limit) {
    Acquire acquire = new Acquire(limit);
    open.compute(destination, acquire);
    return acquire.taken;
  }

  /**
   * One attempt to take a slot, and whether it did: a class rather than a capturing lambda and
   * an array, because under the client compiler a lambda capture is a call into the VM.
   */
  private static final class Acquire
      implements java.util.function.BiFunction<String, Integer, Integer> {
    private final int limit;
    boolean taken;

    Acquire(int limit) {
      this.limit = limit;
    }

    @Override
    public Integer apply(String destination, Integer n) {
      int count = n == null ? 0 : n;
      if (count >= limit) {
        return n;
      }
      taken = true;
      return count + 1;
    }
  }

  void release(String destination) {
    open.computeIfPresent(destination, (d, n) -> n <= 1 ? null : n - 1);
  }
}
