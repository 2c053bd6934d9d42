package dev.egret.tunnel;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelPipeline;

/**
 * Where a tunnel's downstream socket goes when its first bytes are a plain HTTP request rather than
 * a ClientHello: the listener makes the socket an HTTP connection again, whose requests carry
 * the CONNECT's authority and identity. The one type for that hand-off, from the CONNECT's
 * downstream connection through {@link Tunnel} to the {@link TunnelRelay} that sees the bytes.
 */
@FunctionalInterface
public interface PlainHttpHandOff {
  /** Takes over the downstream's {@code pipeline}; {@code first} is what it sent so far. */
  void start(ChannelPipeline pipeline, ByteBuf first);
}
