package dev.egret.listener;

import dev.egret.exchange.Exchange;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.http.HttpResponseEncoder;
import io.netty.handler.timeout.IdleStateHandler;
import io.vertx.core.internal.ContextInternal;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The handlers of an HTTP client connection, in one place: idle timer, {@link
 * StrictRequestDecoder} (the only request parser), Netty's response encoder, and the {@link
 * ClientConnection} that runs each request through the stages. The proxy port, plain HTTP
 * inside a tunnel and the transparent {@code http} listener differ only in how the decoder reads
 * the request-target.
 */
public final class Pipelines {
  static final String IDLE = "egret-idle";
  static final String DECODER = "egret-decoder";
  static final String ENCODER = "egret-encoder";
  static final String HANDLER = "egret-connection";

  private final Stages stages;
  private final StrictHeadParser parser;
  private final Duration headTimeout;
  private final Duration idle;

  Pipelines(Stages stages, StrictHeadParser parser, Duration headTimeout, Duration idle) {
    this.stages = stages;
    this.parser = parser;
    this.headTimeout = headTimeout;
    this.idle = idle;
  }

  /** Makes {@code p} an HTTP connection reading targets as {@code form} says. */
  void http(ChannelPipeline p, ContextInternal context, StrictHeadParser.TargetForm form,
      Exchange.Origin origin) {
    p.addLast(IDLE, new IdleStateHandler(0, 0, idle.toMillis(), TimeUnit.MILLISECONDS));
    p.addLast(DECODER, new StrictRequestDecoder(parser, form, headTimeout));
    p.addLast(ENCODER, new HttpResponseEncoder());
    p.addLast(HANDLER, new ClientConnection(stages, this, context, origin));
  }

  /**
   * Plain HTTP inside a CONNECT tunnel to {@code authority}: the connection becomes an HTTP
   * connection again, its requests in origin-form with the CONNECT's authority, and the bytes
   * already read from the tunnel are its first input.
   */
  public void plainHttpInTunnel(ChannelPipeline p, ContextInternal context,
      RequestHead.Authority authority, ByteBuf first) {
    http(p, context, new StrictHeadParser.TargetForm.Origin(
        new RequestHead.Authority("http", authority.host(), authority.port()), authority.port()),
        Exchange.Origin.TUNNELLED);
    p.channel().config().setAutoRead(true);
    p.fireChannelRead(first);
  }
}
