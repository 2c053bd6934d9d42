package dev.egret.listener;

import dev.egret.config.EgretConfig;
import dev.egret.exchange.DownstreamPeer;
import dev.egret.telemetry.Fatal;
import dev.egret.telemetry.Telemetry;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLPeerUnverifiedException;

/**
 * Sits behind the proxy port's {@link SslHandler} ({@code listen.proxyTls}) until the handshake
 * ends, then leaves the pipeline. A handshake that verified a client certificate records its
 * leaf ({@link DownstreamPeer#certified}), the strongest source of a gateway client's identity. A
 * handshake refused because the client certificate did not verify is counted as {@code
 * certificate}/{@code untrusted}; one that completed without a certificate where {@code
 * clientAuth: required} is closed and counted as {@code certificate}/{@code missing}. Other
 * handshake failures (not TLS at all, no shared version) are not about identity: the
 * connection just closes.
 *
 * <p>Threading: on the channel's event loop, like every handler of the connection.
 */
final class ProxyTlsPeer extends ChannelInboundHandlerAdapter {
  private final Telemetry telemetry;
  private final EgretConfig.ClientAuth clientAuth;

  ProxyTlsPeer(Telemetry telemetry, EgretConfig.ClientAuth clientAuth) {
    this.telemetry = telemetry;
    this.clientAuth = clientAuth;
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (!(evt instanceof SslHandshakeCompletionEvent done)) {
      ctx.fireUserEventTriggered(evt);
      return;
    }
    ctx.pipeline().remove(this);
    if (!done.isSuccess()) {
      if (certificateRefused(done.cause())) {
        telemetry.identityFailure("certificate", "untrusted");
      }
      ctx.close();
      return;
    }
    X509Certificate leaf = leaf(ctx.pipeline().get(SslHandler.class));
    if (leaf != null) {
      DownstreamPeer.certified(ctx.channel(), leaf);
    } else if (clientAuth == EgretConfig.ClientAuth.REQUIRED) {
      telemetry.identityFailure("certificate", "missing");
      ctx.close();
      return;
    }
    ctx.fireUserEventTriggered(evt);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    Fatal.check(cause);
    ctx.fireExceptionCaught(cause);
  }

  private static X509Certificate leaf(SslHandler ssl) {
    if (ssl == null) {
      return null;
    }
    try {
      Certificate[] chain = ssl.engine().getSession().getPeerCertificates();
      return chain.length > 0 && chain[0] instanceof X509Certificate x ? x : null;
    } catch (SSLPeerUnverifiedException e) {
      return null; // no certificate was sent (clientAuth none or optional)
    }
  }

  /** Whether the trust manager refused the client's certificate: classified by type. */
  private static boolean certificateRefused(Throwable cause) {
    for (Throwable t = cause; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof CertificateException) {
        return true;
      }
    }
    return false;
  }
}
