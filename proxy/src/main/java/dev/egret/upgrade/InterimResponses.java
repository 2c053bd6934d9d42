package dev.egret.upgrade;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.AttributeKey;
import io.netty.util.ReferenceCountUtil;

/**
 * Takes the interim responses Vert.x's HTTP client cannot read off an upstream connection, before
 * its handler sees them, and hands them to the request in flight.
 *
 * <p>Vert.x 5.0.7 reads only 100 and 103 as interim ({@code Http1xClientConnection
 * .handleResponseBegin}, whose comment asks "How can we handle future undefined 1xx informational
 * response codes?"; no upstream issue tracks it): any other 1xx, a {@code 102 Processing} say,
 * becomes the final response, and the real one after it is read as a response to nothing. RFC
 * 9110 section 15.2 asks a proxy to forward 1xx responses, and a client may always get more than
 * one before the final answer. So this handler, placed between Netty's {@code HttpClientCodec}
 * and Vert.x's handler, passes 100 and 103 through (Vert.x relays those) and takes every other
 * 1xx, with the empty end Netty's decoder emits after it, to the {@link Listener} the request set
 * on the channel. A {@code 101} is taken too: Egret never asks to switch protocols (Upgrade is
 * hop-by-hop and stripped), so one that arrives ends the request with a detail that says so.
 *
 * <p>One request at a time uses a connection (HTTP/1.1 without pipelining), so the channel
 * attribute names the request in flight. Runs on the upstream connection's event loop.
 */
final class InterimResponses extends ChannelInboundHandlerAdapter {
  static final String NAME = "egret-interim";
  private static final AttributeKey<Listener> LISTENER =
      AttributeKey.valueOf(InterimResponses.class, "listener");

  /** What the request in flight does with an interim response Vert.x would misread. */
  interface Listener {
    /** An interim 1xx other than 100, 101 and 103; the final response follows. */
    void interim(HttpResponse head);

    /** The upstream answered 101 Switching Protocols; the connection closes after this. */
    void switchedProtocols();

    /** True when the request in flight is a HEAD (see {@link #interimToHead}). */
    boolean head();

    /** A 1xx answered a HEAD, which Netty's decoder cannot follow; the connection closes. */
    void interimToHead(int status);
  }

  private boolean dropEnd;

  /** Names the request that is about to use {@code channel}. */
  static void listen(Channel channel, Listener listener) {
    channel.attr(LISTENER).set(listener);
  }

  /** Forgets {@code listener} once its request has ended, unless the next request has come. */
  static void forget(Channel channel, Listener listener) {
    channel.attr(LISTENER).compareAndSet(listener, null);
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (dropEnd && msg instanceof LastHttpContent) {
      dropEnd = false;
      ReferenceCountUtil.release(msg);
      return;
    }
    if (!(msg instanceof HttpResponse response)) {
      ctx.fireChannelRead(msg);
      return;
    }
    int status = response.status().code();
    if (status < 100 || status >= 200) {
      ctx.fireChannelRead(msg);
      return;
    }
    Listener listener = ctx.channel().attr(LISTENER).get();
    if (listener == null) {
      ctx.fireChannelRead(msg); // no request in flight: Vert.x fails the connection, as before
      return;
    }
    if (listener.head() && status != 101) {
      // Netty's HttpClientCodec pairs each response with a request method and uses up the
      // HEAD's turn on a 1xx (Decoder.isContentAlwaysEmpty polls its method queue before it
      // looks at the status, since netty/netty#9721), so the final answer's Content-Length would
      // be read as a body that never comes. Such a HEAD ends here, and so does the connection.
      ReferenceCountUtil.release(msg);
      listener.interimToHead(status);
      ctx.close();
      return;
    }
    if (status == 100 || status == 103) {
      ctx.fireChannelRead(msg); // Vert.x relays these itself
      return;
    }
    ReferenceCountUtil.release(msg); // a head holds no buffer; a full response's body is empty
    if (status == 101) {
      // Netty's decoder passes whatever follows a 101 on as raw bytes; nothing more is read.
      listener.switchedProtocols();
      ctx.close();
      return;
    }
    dropEnd = !(msg instanceof LastHttpContent);
    listener.interim(response);
  }
}
