package dev.egret.tunnel;

/**
 * What one tunnel carried, for its log line and metrics: bytes each way, and when the handshake
 * went through the middle. Written by the relay on the tunnel's event loop, read once it closed.
 */
final class TunnelStats {
  private long bytesUpstream;
  private long bytesDownstream;
  private long clientHelloSentNanos = -1;
  private long firstUpstreamByteNanos = -1;
  private long clientFlightNanos = -1;

  /**
   * The downstream's bytes went upstream; {@code serverHelloPassed}: the server's hello is through.
   */
  void upstream(int bytes, boolean serverHelloPassed, long now) {
    if (clientHelloSentNanos < 0) {
      clientHelloSentNanos = now; // the first bytes that pass hold the ClientHello
    } else if (serverHelloPassed && clientFlightNanos < 0) {
      // The client's next flight after the server's hello: its side of the handshake is done.
      clientFlightNanos = now;
    }
    bytesUpstream += bytes;
  }

  void downstream(int bytes) {
    bytesDownstream += bytes;
  }

  /** The upstream sent its first byte (whether or not it passed). */
  void upstreamByte(long now) {
    if (firstUpstreamByteNanos < 0) {
      firstUpstreamByteNanos = now;
    }
  }

  long bytesUpstream() {
    return bytesUpstream;
  }

  long bytesDownstream() {
    return bytesDownstream;
  }

  long firstUpstreamByteNanos() {
    return firstUpstreamByteNanos;
  }

  /**
   * The handshake as the middle sees it: from forwarding the ClientHello to the client's next
   * flight, which it sends once it has read and verified the server's; -1 if it never completed.
   */
  long handshakeNanos() {
    return clientHelloSentNanos < 0 || clientFlightNanos < 0 ? -1
        : clientFlightNanos - clientHelloSentNanos;
  }
}
