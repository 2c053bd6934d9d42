package dev.egret.listener;

import dev.egret.exchange.RequestHead;
import dev.egret.config.EgretConfig;
import dev.egret.exchange.Exchange;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.http.HttpResponseEncoder;
import io.vertx.core.Context;

/**
 * The handlers of an HTTP downstream connection, in one place: {@link StrictRequestDecoder} (the
 * only request parser), Netty's response encoder, and the {@link DownstreamConnection} that runs
 * each request through the stages and keeps the idle timer. Every handler on this path costs
 * each read, write and flush of every request a hop through it, so there are no more. The proxy port, plain HTTP
 * inside a tunnel and the transparent {@code http} listener differ only in how the decoder reads
 * the request-target.
 *
 * <p>The connection's limits ({@code timeouts.idle}, {@code timeouts.requestHead}, {@code
 * limits.maxHeaderBytes}) are read here, when the connection becomes an HTTP connection, from
 * the config in force: a reload applies them to every connection set up after it, and a
 * connection keeps the ones it started with.
 */
public final class Pipelines {
  static final String DECODER = "egret-decoder";
  static final String ENCODER = "egret-encoder";
  static final String HANDLER = "egret-connection";
  /**
   * The proxy port's TLS ({@code listen.proxyTls}), first in the pipeline; a decoder that must
   * read bytes before TLS (a PROXY protocol header) goes in front of it.
   */
  public static final String PROXY_TLS = "egret-proxy-tls";
  static final String PROXY_TLS_PEER = "egret-proxy-tls-peer";

  private final Stages stages;
  /**
   * The parser for the header limit in force; built again only when a reload changed the limit.
   * Any event loop may replace it; a stale read only builds one parser more.
   */
  private volatile StrictHeadParser parser;

  Pipelines(Stages stages) {
    this.stages = stages;
  }

  /** Makes {@code p} an HTTP connection reading targets as {@code form} says. */
  void http(ChannelPipeline p, Context context, StrictHeadParser.TargetForm form,
      Exchange.Origin origin) {
    EgretConfig config = stages.serving().get().config();
    p.addLast(DECODER, new StrictRequestDecoder(parser(config.limits().maxHeaderBytes()), form,
        config.timeouts().requestHead()));
    p.addLast(ENCODER, new HttpResponseEncoder());
    p.addLast(HANDLER, new DownstreamConnection(stages, this, context, origin,
        config.timeouts().idle().toNanos()));
  }

  /**
   * Makes {@code p} speak TLS as the server ({@code listen.proxyTls}): the handshake runs before
   * any HTTP byte, and a verified client certificate becomes the connection's {@link
   * DownstreamPeer#certificate}. Call before {@link #http}.
   */
  void proxyTls(ChannelPipeline p, EgretConfig.ProxyTls tls) {
    io.netty.handler.ssl.SslHandler ssl = tls.context().newHandler(p.channel().alloc());
    ssl.setHandshakeTimeoutMillis(Math.max(1, tls.handshakeTimeout().toMillis()));
    p.addLast(PROXY_TLS, ssl);
    p.addLast(PROXY_TLS_PEER, new ProxyTlsPeer(stages.telemetry(), tls.clientAuth()));
  }

  private StrictHeadParser parser(int maxHeaderBytes) {
    StrictHeadParser p = parser;
    if (p == null || p.maxHeaderBytes() != maxHeaderBytes) {
      p = new StrictHeadParser(StrictHeadParser.DEFAULT_MAX_REQUEST_LINE_BYTES, maxHeaderBytes,
          StrictHeadParser.DEFAULT_MAX_HEADER_COUNT);
      parser = p;
    }
    return p;
  }

  /**
   * Plain HTTP inside a CONNECT tunnel to {@code authority}: the connection becomes an HTTP
   * connection again, its requests in origin-form with the CONNECT's authority, and the bytes
   * already read from the tunnel are its first input.
   */
  public void plainHttpInTunnel(ChannelPipeline p, Context context,
      RequestHead.Authority authority, ByteBuf first) {
    http(p, context, new StrictHeadParser.TargetForm.Origin(
        new RequestHead.Authority("http", authority.host(), authority.port()), authority.port()),
        Exchange.Origin.TUNNELLED);
    p.channel().config().setAutoRead(true);
    p.fireChannelRead(first);
  }
}
