package dev.egret.upstream;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import java.nio.channels.ClosedChannelException;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * One upstream TLS connection of a {@link UpstreamClient} pool, and the last handler of its
 * pipeline ({@code SslHandler}, {@link ResponseDecoder}, this): it hands what it reads to the
 * request using it, and tells the pool when it is ready, free or closed. It also notes how long
 * the TCP connect and the TLS handshake took, which the first request to use it reports.
 * Confined to its pool's event loop.
 */
public final class UpstreamConnection extends ChannelInboundHandlerAdapter {
  private final UpstreamClient.Pool pool;
  private final int maxHeaderSize;
  private final long dialStart = System.nanoTime();
  private Channel channel;
  private ResponseDecoder decoder;
  private UpstreamClient.Lease dialler;
  private UpstreamClient.Lease user;
  private long activeAt = -1;
  private UpstreamClient.Setup setup;
  private String tlsVersion;
  private String tlsCipher;
  private X509Certificate leaf;
  private boolean ready;
  private boolean dialOver;
  private boolean idle;
  private long idleSince;
  private long lastActivity;
  private Throwable cause;

  UpstreamConnection(UpstreamClient.Pool pool, UpstreamClient.Lease dialler, int maxHeaderSize) {
    this.pool = pool;
    this.dialler = dialler;
    this.maxHeaderSize = maxHeaderSize;
  }

  void init(Channel ch, SslHandler tls) {
    this.channel = ch;
    this.decoder = new ResponseDecoder(maxHeaderSize);
    ch.pipeline().addLast("tls", tls).addLast("http", decoder).addLast("egret", this);
    tls.handshakeFuture().addListener(f -> {
      if (f.isSuccess()) {
        handshaken(tls);
      } else {
        dialFailed(f.cause());
      }
    });
  }

  /**
   * A connection through an upstream proxy: the leg's handlers first, this last; the TLS and
   * HTTP handlers go between them once the proxy answered ({@link #tunnelled}).
   */
  void initThroughProxy(Channel ch, dev.egret.chain.ProxyLeg leg) {
    this.channel = ch;
    leg.install(ch);
    ch.pipeline().addLast("egret", this);
  }

  /**
   * The upstream proxy answered CONNECT: Egret's own TLS with the destination starts inside the
   * tunnel. The time so far (TCP, TLS with the proxy, the proxy's connect) counts as the
   * connect; the handshake is timed from here.
   */
  void tunnelled(SslHandler tls) {
    activeAt = System.nanoTime();
    this.decoder = new ResponseDecoder(maxHeaderSize);
    channel.pipeline().addBefore("egret", "tls", tls).addBefore("egret", "http", decoder);
    tls.handshakeFuture().addListener(f -> {
      if (f.isSuccess()) {
        handshaken(tls);
      } else {
        dialFailed(f.cause());
      }
    });
  }

  public Channel channel() {
    return channel;
  }

  public ResponseDecoder decoder() {
    return decoder;
  }

  public UpstreamClient.Pool pool() {
    return pool;
  }

  public String tlsVersion() {
    return tlsVersion;
  }

  public String tlsCipher() {
    return tlsCipher;
  }

  /** The verified leaf certificate, or null. */
  public X509Certificate leaf() {
    return leaf;
  }

  private void handshaken(SslHandler tls) {
    if (dialOver) {
      return;
    }
    dialOver = true;
    long now = System.nanoTime();
    SSLSession session = tls.engine().getSession();
    tlsVersion = session.getProtocol();
    tlsCipher = session.getCipherSuite();
    try {
      Certificate[] certs = session.getPeerCertificates();
      leaf = certs.length > 0 && certs[0] instanceof X509Certificate x ? x : null;
    } catch (SSLPeerUnverifiedException e) {
      leaf = null; // cannot happen after a verified handshake; reported without expiry
    }
    long connect = activeAt < 0 ? -1 : activeAt - dialStart;
    setup = new UpstreamClient.Setup(connect, now - (activeAt < 0 ? dialStart : activeAt));
    ready = true;
    // A fresh clock, not the tick's: a loop busy for longer than timeouts.idle (the first
    // handshakes of a cold start) leaves the tick's clock that old, and the next tick would take
    // the connection for inactive before its first request.
    lastActivity = now;
    UpstreamClient.Lease d = dialler;
    dialler = null;
    pool.ready(this, d);
  }

  /** The TCP connect or the handshake failed: the dialler learns why; the pool forgets this. */
  void dialFailed(Throwable why) {
    if (dialOver) {
      return;
    }
    dialOver = true;
    UpstreamClient.Lease d = dialler;
    dialler = null;
    if (channel != null) {
      channel.close();
    }
    pool.closed(this);
    if (d != null) {
      d.acquireFailed(why);
    }
  }

  /** True while the connection can carry another request, and nothing stray is unread on it. */
  public boolean reusable() {
    return ready && cause == null && channel.isActive() && decoder.atRest();
  }

  void lease(UpstreamClient.Lease l) {
    user = l;
    idle = false;
    lastActivity = System.nanoTime(); // fresh, as in handshaken
  }

  /** The request is done with it; {@code reuse} false closes it. */
  public void release(boolean reuse) {
    user = null;
    channel.config().setAutoRead(true);
    pool.release(this, reuse);
  }

  /** The request gives up on it: it closes, and tells the request nothing more. */
  public void abandon() {
    user = null;
    channel.close();
  }

  /** The setup timings, once: for the first request that uses the connection. */
  public UpstreamClient.Setup claimSetup() {
    UpstreamClient.Setup s = setup;
    setup = null;
    return s;
  }

  /** Gives back timings claimed by a request that then did not use the connection. */
  public void unclaim(UpstreamClient.Setup s) {
    if (s != null && setup == null) {
      setup = s;
    }
  }

  void idle(long now) {
    idle = true;
    idleSince = now;
  }

  /** Counts as activity for the idle timeout of a connection in use. */
  public void touch() {
    lastActivity = pool.loop.now;
  }

  /**
   * The loop's tick: an idle connection closes after {@code timeouts.idle}; one in use closes
   * after as long without a byte either way (as an idle timeout on the socket would), and
   * otherwise its request checks the response timeout.
   */
  void tick(long now, long idleNanos) {
    if (idle) {
      if (now - idleSince > idleNanos) {
        channel.close();
      }
    } else if (user != null) {
      if (now - lastActivity > idleNanos) {
        channel.close();
      } else {
        user.tick(now);
      }
    }
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    // Through a proxy, the connect ends when the proxy answers (tunnelled), not at TCP.
    if (decoder != null) {
      activeAt = System.nanoTime();
    }
    ctx.fireChannelActive();
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    lastActivity = pool.loop.now;
    UpstreamClient.Lease u = user;
    if (u != null) {
      u.read(msg);
    } else {
      // Nothing is asked on an idle connection: whatever arrives is out of step, so it closes.
      ReferenceCountUtil.release(msg);
      ctx.close();
    }
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    UpstreamClient.Lease u = user;
    if (u != null) {
      u.writable();
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable e) {
    if (cause == null) {
      cause = e;
    }
    ctx.close();
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    ReferenceCountUtil.release(evt); // TLS handshake and close_notify events: handled above
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (!dialOver) {
      dialFailed(cause != null ? cause : new ClosedChannelException());
    }
    pool.closed(this);
    UpstreamClient.Lease u = user;
    user = null;
    if (u != null) {
      u.closed(cause);
    }
  }
}
