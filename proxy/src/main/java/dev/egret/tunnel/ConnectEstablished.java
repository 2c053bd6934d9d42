package dev.egret.tunnel;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;

/**
 * Gives the CONNECT answer its customary reason phrase, {@code 200 Connection Established}.
 * Vert.x's {@code toNetSocket()} writes a fresh {@code 200 OK} whatever status message was set;
 * clients ignore the phrase, but people reading a capture or {@code curl -v} expect this one.
 * Added to the client connection's pipeline just before the switch to a raw socket, it rewrites
 * the one response and removes itself.
 */
final class ConnectEstablished extends ChannelOutboundHandlerAdapter {
  static final String NAME = "egret-connect-established";
  static final HttpResponseStatus STATUS = new HttpResponseStatus(200, "Connection Established");

  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
    if (msg instanceof HttpResponse response) {
      if (response.status().code() == 200) {
        response.setStatus(STATUS);
      }
      ctx.pipeline().remove(this);
    }
    super.write(ctx, msg, promise);
  }
}
