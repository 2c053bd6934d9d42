package dev.egret.listener;

import dev.egret.failure.FailureResponse;
import dev.egret.failure.ProxyFailure;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import java.util.function.Consumer;

/**
 * Sits in front of the HTTP decoder of a connection Egret will not serve (over
 * {@code limits.maxConnections}): answers the first bytes with the refusal and closes, reading
 * nothing further.
 */
final class Refuser extends ChannelInboundHandlerAdapter {
  private final ProxyFailure failure;
  private final Consumer<ProxyFailure> refused;
  private boolean answered;

  Refuser(ProxyFailure failure, Consumer<ProxyFailure> refused) {
    this.failure = failure;
    this.refused = refused;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    ReferenceCountUtil.release(msg);
    if (!answered) {
      answered = true;
      refused.accept(failure);
      ctx.writeAndFlush(FailureResponse.raw(failure, null, null))
          .addListener(ChannelFutureListener.CLOSE);
    }
  }
}
