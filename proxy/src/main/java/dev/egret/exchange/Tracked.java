package dev.egret.exchange;

/**
 * What the listener knows of each open downstream connection, for the drain: a connection between
 * requests closes at once, one in flight closes when its response ends, and whatever is left at
 * {@code shutdown.deadline} is cut and counted by what it was doing.
 */
public interface Tracked {
  /** Egret is draining: close when idle, and say {@code Connection: close} on the last response. */
  void drain();

  /** The {@code kind} label of the hop in flight ("upgrade", "tls", "tunnel"), or null when idle. */
  String inFlight();
}
