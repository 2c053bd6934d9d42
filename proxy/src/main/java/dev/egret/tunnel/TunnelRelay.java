package dev.egret.tunnel;

import dev.egret.exchange.Tracked;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureClassifier;
import dev.egret.failure.ProxyFailure;
import dev.egret.policy.HostName;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The two directions of one tunnel, on the client connection's event loop (the upstream
 * channel was connected from it, so every handler here runs on one thread and the fields need
 * no locking).
 *
 * <p>Each direction starts in inspection: its bytes are held (bounded by the inspector's 64 KiB)
 * until its hello is judged (the ClientHello's SNI must name the tunnel's host, and carry no
 * encrypted_client_hello unless the rule allows it; the ServerHello's version must be at least
 * {@code tls.minVersion}), then released. For the tunnel's whole life every byte in both
 * directions must also be a well-formed TLS record ({@link TlsRecords}). Bytes are relayed as
 * Netty read them, without copying; a side is read only while the other can take more.
 *
 * <p>A refusal cuts both sides at once. The end of either side's stream ends the tunnel: the
 * other side gets every byte already relayed, then closes (TLS ends with close_notify, so no
 * half-close is kept open).
 */
final class TunnelRelay implements Tracked {
  /** What the first client bytes are for, when they turn out to be plain HTTP. */
  interface PlainHttp {
    /** Takes over the client channel; {@code first} is what the client sent so far. */
    void start(Channel client, ByteBuf first);
  }

  private final Channel client;
  private final Channel server;
  private final String connectHost;
  private final int minVersion;
  private final boolean echAllowed;
  private final boolean tlsAllowed;
  private final PlainHttp plainHttp;
  private final long idleNanos;
  private final long handshakeNanos;
  private final long startNanos = System.nanoTime();
  private final TlsRecords.Handshake hs = new TlsRecords.Handshake();
  private final TlsRecords clientRecords = new TlsRecords(true, hs);
  private final TlsRecords serverRecords = new TlsRecords(false, hs);
  private final ClientHelloInspector clientHello = new ClientHelloInspector();
  private final ServerHelloInspector serverHello = new ServerHelloInspector();
  /** After a HelloRetryRequest, the second ClientHello is judged like the first. */
  private ClientHelloInspector retryHello;
  private CompositeByteBuf heldFromClient;
  private CompositeByteBuf heldFromServer;
  private boolean firstClientByte = true;
  private long lastActivityNanos = startNanos;
  private long bytesUpstream;
  private long bytesDownstream;
  private String negotiatedVersion;
  private String negotiatedCipher;
  private long clientHelloSentNanos = -1;
  private long firstServerByteNanos = -1;
  private long clientFlightNanos = -1;
  private ProxyFailure failure;
  private boolean closed;
  private boolean handedOver;
  private ScheduledFuture<?> timer;
  private Consumer<TunnelRelay> onClose = r -> { };

  /**
   * @param server the connected upstream, or null for a CONNECT admitted for plain HTTP only
   * @param tlsAllowed whether a rule lets this tunnel carry TLS (else only plain HTTP may come)
   * @param plainHttp where plain HTTP requests go, or null where they are refused (transparent)
   */
  TunnelRelay(Channel client, Channel server, String connectHost, int minVersion,
      boolean echAllowed, boolean tlsAllowed, PlainHttp plainHttp, long idleMs, long handshakeMs) {
    this.client = client;
    this.server = server;
    this.connectHost = connectHost;
    this.minVersion = minVersion;
    this.echAllowed = echAllowed;
    this.tlsAllowed = tlsAllowed;
    this.plainHttp = plainHttp;
    this.idleNanos = TimeUnit.MILLISECONDS.toNanos(idleMs);
    this.handshakeNanos = TimeUnit.MILLISECONDS.toNanos(handshakeMs);
    this.heldFromClient = client.alloc().compositeBuffer();
    this.heldFromServer = client.alloc().compositeBuffer();
  }

  void onClose(Consumer<TunnelRelay> onClose) {
    this.onClose = onClose;
  }

  /** Installs both sides' handlers and starts with the bytes already read from the client. */
  void start(ByteBuf early) {
    client.pipeline().addLast("egret-tunnel", new Side(true));
    if (server != null) {
      server.pipeline().addLast("egret-tunnel", new Side(false));
      server.config().setAutoRead(true);
    }
    long period = Math.max(25, Math.min(idleNanos, handshakeNanos) / 4_000_000L);
    timer = client.eventLoop().scheduleAtFixedRate(this::tick, period, period,
        TimeUnit.MILLISECONDS);
    if (early != null && early.isReadable()) {
      fromClient(early);
      if (server != null && !closed && !handedOver) {
        server.flush(); // no read completes for these bytes, which came before the relay
      }
    } else if (early != null) {
      early.release();
    }
    if (!closed && !handedOver) {
      client.config().setAutoRead(true);
      client.read();
    }
  }

  private void tick() {
    long now = System.nanoTime();
    if (!inspected() && now - startNanos > handshakeNanos) {
      cut(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, "no complete TLS handshake hello within "
          + TimeUnit.NANOSECONDS.toMillis(handshakeNanos) + " ms"));
    } else if (now - lastActivityNanos > idleNanos) {
      closeBoth();
    }
  }

  private void fromClient(ByteBuf buf) {
    if (closed) {
      buf.release();
      return;
    }
    lastActivityNanos = System.nanoTime();
    if (firstClientByte) {
      firstClientByte = false;
      int b = buf.getByte(buf.readerIndex()) & 0xff;
      if (b >= 'A' && b <= 'Z' && plainHttp != null) {
        handToHttp(buf);
        return;
      }
      if (!tlsAllowed) {
        buf.release();
        cut(new ProxyFailure(ErrorKind.REQUEST_DENIED, "no rule lets TLS through to "
            + connectHost + "; this tunnel was opened for plain http:// requests only, which "
            + "Egret upgrades itself"));
        return;
      }
    }
    if (heldFromClient == null) {
      String refused = clientRecords.check(buf);
      if (refused != null) {
        buf.release();
        cutNotTls(refused, true);
        return;
      }
      if (negotiatedVersion != null && heldFromServer == null && clientFlightNanos < 0) {
        // The client's next flight after the server's hello: its side of the handshake is done.
        clientFlightNanos = lastActivityNanos;
      }
      relay(buf, server, true);
      return;
    }
    heldFromClient.addComponent(true, buf);
    HelloInspection.OfClient verdict = clientHello.offer(ByteBufUtil.getBytes(buf));
    if (verdict instanceof HelloInspection.Refused r) {
      cut(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, "the client's first bytes in the tunnel "
          + "to " + connectHost + " are not a TLS ClientHello: " + r.reason()));
      return;
    }
    if (verdict instanceof HelloInspection.ClientHello hello) {
      hs.earlyDataOffered = hello.earlyData();
    }
    String refused = clientRecords.check(buf);
    if (refused != null) {
      cutNotTls(refused, true);
      return;
    }
    if (verdict instanceof HelloInspection.ClientHello hello) {
      ProxyFailure refusal = judge(hello);
      if (refusal != null) {
        cut(refusal);
        return;
      }
      CompositeByteBuf held = heldFromClient;
      heldFromClient = null;
      clientHelloSentNanos = System.nanoTime();
      relay(held, server, true);
    }
  }

  private void cutNotTls(String why, boolean client) {
    cut(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, client
        ? "the bytes from the client in the tunnel to " + connectHost + " are not well-formed "
            + "TLS: " + why
        : connectHost + " sent bytes in the tunnel that are not well-formed TLS: " + why));
  }

  /** Null if the hello may go on, else why not. */
  private ProxyFailure judge(HelloInspection.ClientHello hello) {
    String mismatch = sniMismatch(hello.sni());
    if (mismatch != null) {
      return new ProxyFailure(ErrorKind.REQUEST_DENIED, mismatch);
    }
    if (hello.encryptedClientHello() && !echAllowed) {
      return new ProxyFailure(ErrorKind.REQUEST_DENIED, "the ClientHello carries "
          + "encrypted_client_hello, which hides its real destination behind the outer name "
          + connectHost + "; Egret refuses it unless the rule says 'ech: allow'");
    }
    return null;
  }

  /** Null if the SNI fits the tunnel's host, else the reason to cut. */
  private String sniMismatch(String sni) {
    if (sni == null) {
      return HostName.isIpLiteral(connectHost) ? null
          : "the ClientHello names no server (no SNI) but the tunnel is for " + connectHost;
    }
    String normalized;
    try {
      normalized = HostName.normalize(sni);
    } catch (IllegalArgumentException e) {
      return "the ClientHello's SNI '" + sni + "' is not a valid host name";
    }
    return normalized.equals(connectHost) ? null
        : "the ClientHello names " + normalized + " but the tunnel is for " + connectHost;
  }

  private void handToHttp(ByteBuf first) {
    handedOver = true;
    closed = true;
    cancelTimer();
    releaseHeld();
    client.pipeline().remove("egret-tunnel");
    if (server != null) {
      server.close();
    }
    onClose.accept(this);
    plainHttp.start(client, first);
  }

  private void fromServer(ByteBuf buf) {
    if (closed) {
      buf.release();
      return;
    }
    lastActivityNanos = System.nanoTime();
    if (firstServerByteNanos < 0) {
      firstServerByteNanos = lastActivityNanos;
    }
    if (heldFromServer == null) {
      String refused = serverRecords.check(buf);
      if (refused != null) {
        buf.release();
        cutNotTls(refused, false);
        return;
      }
      relay(buf, client, false);
      return;
    }
    heldFromServer.addComponent(true, buf);
    HelloInspection.OfServer verdict = serverHello.offer(ByteBufUtil.getBytes(buf));
    if (verdict instanceof HelloInspection.Refused r) {
      cut(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR,
          connectHost + " did not answer with TLS: " + r.reason()));
      return;
    }
    if (verdict instanceof HelloInspection.ServerHello hello) {
      hs.version = hello.version();
      hs.helloRetryRequest = hello.helloRetryRequest();
      negotiatedVersion = hello.versionName();
      negotiatedCipher = hello.cipherName();
    }
    String refused = serverRecords.check(buf);
    if (refused != null) {
      cutNotTls(refused, false);
      return;
    }
    if (verdict instanceof HelloInspection.Alert alert) {
      if (!alert.fatal()) {
        // A warning alert does not end the handshake: what follows could be any ServerHello,
        // and the inspector's verdict is final, so the version check would be skipped.
        cut(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, connectHost + " sent a warning alert ("
            + alert.descriptionName() + ") before its ServerHello; the version cannot be checked"));
        return;
      }
      // The server refused the handshake itself: pass its alert on so the client sees why, and
      // end the tunnel, since nothing may follow a fatal alert.
      negotiatedVersion = "none";
      releaseServer();
      endBoth();
    } else if (verdict instanceof HelloInspection.ServerHello hello) {
      if (hello.version() < minVersion) {
        cut(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, connectHost + " negotiated "
            + hello.versionName() + ", below tls.minVersion " + TlsVersions.name(minVersion)));
        return;
      }
      if (hello.helloRetryRequest()) {
        watchRetryHello();
      }
      releaseServer();
    }
  }

  /** Judges the ClientHello sent again after a HelloRetryRequest, as the first one was. */
  private void watchRetryHello() {
    retryHello = new ClientHelloInspector();
    clientRecords.listen((buf, index, length) -> {
      HelloInspection.OfClient verdict = retryHello.offer(ByteBufUtil.getBytes(buf, index, length));
      if (verdict.done()) {
        clientRecords.listen(null);
        ProxyFailure refusal = verdict instanceof HelloInspection.ClientHello hello
            ? judge(hello)
            : new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, "the client's second ClientHello "
                + "is malformed: " + ((HelloInspection.Refused) verdict).reason());
        if (refusal != null) {
          client.eventLoop().execute(() -> cut(refusal));
        }
      }
    });
  }

  private void releaseServer() {
    CompositeByteBuf held = heldFromServer;
    heldFromServer = null;
    relay(held, client, false);
  }

  /** Writes one buffer on; stops reading its source while the destination is full. */
  private void relay(ByteBuf buf, Channel to, boolean upstream) {
    if (closed) {
      buf.release();
      return;
    }
    if (upstream) {
      bytesUpstream += buf.readableBytes();
    } else {
      bytesDownstream += buf.readableBytes();
    }
    to.write(buf, to.voidPromise());
    if (!to.isWritable()) {
      (upstream ? client : server).config().setAutoRead(false);
    }
  }

  /** Refuses the tunnel: records why and closes both sides without relaying more. */
  void cut(ProxyFailure why) {
    if (failure == null && !closed) {
      failure = why;
    }
    closeBoth();
  }

  /** Ends the tunnel at once: a cut, a reset, or a tunnel idle too long. */
  void closeBoth() {
    if (closed) {
      return;
    }
    closed = true;
    cancelTimer();
    releaseHeld();
    client.close();
    if (server != null) {
      server.close();
    }
    onClose.accept(this);
  }

  /**
   * Ends the tunnel because one side finished its stream: what it sent is already written to
   * the other side, which closes once those bytes have left (Netty flushes the queued writes
   * before the close that follows them), or when the idle timeout says the reader is gone.
   */
  private void endBoth() {
    if (closed) {
      return;
    }
    closed = true;
    cancelTimer();
    releaseHeld();
    flushThenClose(client);
    if (server != null) {
      flushThenClose(server);
    }
    onClose.accept(this);
  }

  private void flushThenClose(Channel ch) {
    if (!ch.isActive()) {
      return;
    }
    ScheduledFuture<?> giveUp = ch.eventLoop().schedule(() -> {
      ch.close();
    }, TimeUnit.NANOSECONDS.toMillis(idleNanos), TimeUnit.MILLISECONDS);
    ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE)
        .addListener(f -> giveUp.cancel(false));
  }

  private void cancelTimer() {
    if (timer != null) {
      timer.cancel(false);
      timer = null;
    }
  }

  private void releaseHeld() {
    if (heldFromClient != null) {
      heldFromClient.release();
      heldFromClient = null;
    }
    if (heldFromServer != null) {
      heldFromServer.release();
      heldFromServer = null;
    }
  }

  private boolean inspected() {
    return heldFromClient == null && heldFromServer == null;
  }

  @Override
  public void drain() {
    // A tunnel in flight runs on until shutdown.deadline; the listener cuts it then.
  }

  @Override
  public String inFlight() {
    return "tunnel";
  }

  boolean handedOver() {
    return handedOver;
  }

  ProxyFailure failure() {
    return failure;
  }

  long bytesUpstream() {
    return bytesUpstream;
  }

  long bytesDownstream() {
    return bytesDownstream;
  }

  String negotiatedVersion() {
    return negotiatedVersion;
  }

  String negotiatedCipher() {
    return negotiatedCipher;
  }

  long firstServerByteNanos() {
    return firstServerByteNanos;
  }

  /**
   * The handshake as the middle sees it: from forwarding the ClientHello to the client's next
   * flight, which it sends once it has read and verified the server's; -1 if it never completed.
   */
  long handshakeNanos() {
    return clientHelloSentNanos < 0 || clientFlightNanos < 0 ? -1
        : clientFlightNanos - clientHelloSentNanos;
  }

  /** One side's handler: reads go to the relay, the other side's room resumes reading. */
  private final class Side extends ChannelInboundHandlerAdapter {
    private final boolean isClient;

    Side(boolean isClient) {
      this.isClient = isClient;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (!(msg instanceof ByteBuf buf) || !buf.isReadable()) {
        ReferenceCountUtil.release(msg);
        return;
      }
      if (isClient) {
        fromClient(buf);
      } else {
        fromServer(buf);
      }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      Channel other = isClient ? server : client;
      if (other != null && !closed) {
        other.flush();
      }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      Channel source = isClient ? server : client;
      if (ctx.channel().isWritable() && source != null && !closed) {
        source.config().setAutoRead(true);
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      if (!handedOver) {
        endBoth();
      }
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      // A reset or I/O error on either side ends the tunnel. The upstream's is the hop's
      // failure (counted failed, with its error type, as on the upgrade path); a client that
      // resets is a client going away, which many do at the end of every TLS session.
      if (isClient) {
        closeBoth();
      } else {
        cut(FailureClassifier.classify(cause, connectHost).failure());
      }
    }
  }
}
