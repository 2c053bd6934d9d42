package dev.egret.listener;

import dev.egret.config.EgretConfig;
import dev.egret.exchange.DownstreamPeer;
import dev.egret.exchange.Tracked;
import dev.egret.telemetry.Fatal;
import dev.egret.telemetry.Telemetry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.haproxy.HAProxyCommand;
import io.netty.handler.codec.haproxy.HAProxyMessage;
import io.netty.handler.codec.haproxy.HAProxyMessageDecoder;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.haproxy.HAProxyProxiedProtocol;
import io.netty.util.NetUtil;
import io.netty.util.ReferenceCountUtil;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * The PROXY protocol header (v1 or v2) that a load balancer sends first on each proxy-port
 * connection when {@code listen.proxyProtocol} is set. Use:
 *
 * <pre>{@code
 * if (ProxyHeader.refuseUntrusted(ch, proxyProtocol, telemetry)) return;  // closed, counted
 * ProxyHeader.install(ch.pipeline(), requestHead, stages, () -> pipelines.http(...));
 * }</pre>
 *
 * <p>{@link #install} puts two handlers at the very front of the pipeline, ahead of anything
 * else (a TLS handler included: the header comes before TLS on the wire): Netty's {@link
 * HAProxyMessageDecoder} ({@value #DECODER}), behind a check that the first bytes are a PROXY
 * signature at all, and this handler ({@value #NAME}). Once one header is read, the client
 * address it names is recorded ({@link DownstreamPeer#proxiedFrom}), {@code then} builds the HTTP
 * connection behind this handler, the decoder removes itself and hands on the bytes that came
 * behind the header in the same read, and the connection goes on as one without a header would.
 *
 * <p>Every refusal closes the connection without an answer (no HTTP has been spoken yet, and a
 * peer that sends a bad header may not be speaking HTTP at all) and counts {@code
 * egret_identity_failures_total{source="proxy_protocol"}}: {@code untrusted} (a peer outside
 * {@code trustedPeers}, closed at accept before a byte is read), {@code missing} (the first
 * bytes are not a PROXY signature, e.g. a plain {@code CONNECT}), {@code malformed} (a
 * signature, then a header Netty cannot read, or the peer closed inside it), {@code timeout} (no
 * whole header within {@code timeouts.requestHead} of the accept). A peer that closes before
 * sending a byte is not counted: a load balancer's TCP health check does just that.
 *
 * <p>A second header is never read as one: this handler stays in front of the HTTP parser until
 * the first bytes behind the header show whether they are a PROXY signature again, counts {@code
 * repeated} if they are, and passes them on either way, so the strict request parser refuses
 * them as a malformed request (400) and the address stays the first header's. (Where the proxy
 * port speaks TLS, the bytes behind the header are TLS records: a second header inside TLS still
 * meets the parser's 400, uncounted here.)
 *
 * <p>A {@code LOCAL} header (the load balancer's own health check), and a {@code PROXY} header
 * whose family is {@code UNKNOWN} or a UNIX socket, names no IP source: the client address is
 * then the peer's own, as without a header. TLVs of a v2 header are ignored.
 *
 * <p>Not sharable; every method runs on the channel's event loop.
 */
final class ProxyHeader extends ChannelInboundHandlerAdapter implements Tracked {
  static final String DECODER = "egret-proxy-header-decoder";
  static final String NAME = "egret-proxy-header";

  private static final String SOURCE = "proxy_protocol";

  private enum State {
    /** Waiting for the header. */
    HEADER,
    /** Header read; looking at the first bytes behind it for a second signature. */
    AFTER,
    /** Refused and closing. */
    REFUSED
  }

  private final Telemetry telemetry;
  private final Connections connections;
  private final long timeoutNanos;
  private final Runnable then;
  private final SignedDecoder decoder;
  private final Signature after = new Signature();
  private State state = State.HEADER;
  private ScheduledFuture<?> timer;

  private ProxyHeader(Telemetry telemetry, Connections connections, Duration timeout,
      Runnable then, SignedDecoder decoder) {
    this.decoder = decoder;
    this.telemetry = telemetry;
    this.connections = connections;
    this.timeoutNanos = timeout.toNanos();
    this.then = then;
  }

  /**
   * Closes {@code ch} and counts {@code untrusted} when its peer is outside {@code trustedPeers};
   * returns true then. Called when the connection is accepted, before anything is read.
   */
  static boolean refuseUntrusted(Channel ch, EgretConfig.ProxyProtocol config,
      Telemetry telemetry) {
    if (DownstreamPeer.peerAddress(ch) instanceof InetSocketAddress peer
        && peer.getAddress() != null && config.trusts(peer.getAddress())) {
      return false;
    }
    telemetry.identityFailure(SOURCE, "untrusted");
    ch.close();
    return true;
  }

  /**
   * Makes the connection wait for its PROXY header; {@code then} builds the HTTP connection once
   * the header has been read (and never if it is refused).
   *
   * @param timeout {@code timeouts.requestHead}: how long after now the header may take
   */
  static void install(ChannelPipeline p, Duration timeout, Stages stages, Runnable then) {
    SignedDecoder decoder = new SignedDecoder();
    p.addFirst(NAME, new ProxyHeader(stages.telemetry(), stages.connections(), timeout, then,
        decoder));
    p.addFirst(DECODER, decoder);
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    connections.track(ctx.channel(), this);
    timer = ctx.executor().schedule(() -> {
      timer = null;
      if (state == State.HEADER) {
        refuse(ctx, "timeout");
      }
    }, timeoutNanos, TimeUnit.NANOSECONDS);
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    cancelTimer();
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    switch (state) {
      case HEADER -> {
        if (msg instanceof HAProxyMessage header) {
          try {
            accepted(ctx, header);
          } finally {
            header.release();
          }
        } else {
          ReferenceCountUtil.release(msg); // nothing but the header comes before it
        }
      }
      case AFTER -> {
        if (msg instanceof ByteBuf buf) {
          Signature.Match m = after.offer(buf);
          if (m == Signature.Match.YES) {
            telemetry.identityFailure(SOURCE, "repeated");
          }
          if (m != Signature.Match.MORE) {
            ctx.pipeline().remove(this);
          }
        }
        ctx.fireChannelRead(msg); // the HTTP parser has the last word on these bytes
      }
      case REFUSED -> ReferenceCountUtil.release(msg);
    }
  }

  private void accepted(ChannelHandlerContext ctx, HAProxyMessage header) {
    cancelTimer();
    InetSocketAddress source = source(header);
    if (source != null) {
      DownstreamPeer.proxiedFrom(ctx.channel(), source);
    }
    state = State.AFTER;
    then.run();
  }

  /**
   * The client address a header names, or null when it names none: a {@code LOCAL} command, an
   * {@code UNKNOWN} or UNIX family. Netty has checked that the address is an IP literal of the
   * header's family and the port a number from 0 to 65535.
   */
  static InetSocketAddress source(HAProxyMessage header) {
    if (header.command() != HAProxyCommand.PROXY || header.sourceAddress() == null) {
      return null;
    }
    HAProxyProxiedProtocol.AddressFamily family = header.proxiedProtocol().addressFamily();
    if (family != HAProxyProxiedProtocol.AddressFamily.AF_IPv4
        && family != HAProxyProxiedProtocol.AddressFamily.AF_IPv6) {
      return null;
    }
    byte[] ip = NetUtil.createByteArrayFromIpAddressString(header.sourceAddress());
    if (ip == null) {
      return null;
    }
    try {
      return new InetSocketAddress(InetAddress.getByAddress(ip), header.sourcePort());
    } catch (UnknownHostException e) {
      return null; // only for a wrong length, which the parse above rules out
    }
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt == SignedDecoder.NO_SIGNATURE) {
      refuse(ctx, "missing");
      return;
    }
    if (evt == SignedDecoder.NOT_A_HEADER) {
      refuse(ctx, "malformed");
      return;
    }
    ctx.fireUserEventTriggered(evt);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    cancelTimer();
    if (state == State.HEADER) {
      state = State.REFUSED;
      // The peer left inside a header; one that left before its first byte is a health check.
      if (decoder.sawBytes()) {
        telemetry.identityFailure(SOURCE, "malformed");
      }
    }
    ctx.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    Fatal.check(cause);
    // HAProxyProtocolException, or (netty/netty#16866) an IndexOutOfBoundsException from a TLV
    // longer than the header, which ByteToMessageDecoder wraps in a DecoderException.
    if (state == State.HEADER && cause instanceof DecoderException) {
      refuse(ctx, "malformed");
      return;
    }
    if (state == State.AFTER) {
      ctx.fireExceptionCaught(cause); // the HTTP connection behind has its own handling
      return;
    }
    ctx.close(); // a reset or an I/O error before the header: nothing to serve or count
  }

  private void refuse(ChannelHandlerContext ctx, String reason) {
    if (state != State.HEADER) {
      return;
    }
    state = State.REFUSED;
    cancelTimer();
    telemetry.identityFailure(SOURCE, reason);
    ctx.close();
  }

  private void cancelTimer() {
    if (timer != null) {
      timer.cancel(false);
      timer = null;
    }
  }

  /** A connection waiting for its header has had no request: it is served once, as a fresh one. */
  @Override
  public void drain() {}

  @Override
  public String inFlight() {
    return null;
  }

  /**
   * Netty's decoder, told first whether the connection starts with a PROXY signature, and kept
   * clear of the decoder's faults seen in Netty 4.2.9 (the version Vert.x brings; the TLV leaks
   * are fixed upstream by the pull requests named below, and this class can shed its guards once
   * Vert.x brings a Netty with them):
   *
   * <ul>
   *   <li>Netty's decoder reads anything that is not the v2 signature as a v1 line, so a plain
   *       request would come out as a malformed header, and only after 13 bytes; a connection
   *       without a header is told apart here as soon as its first bytes cannot begin either
   *       signature.
   *   <li>A v2 header whose version byte is {@code 0xFF} reads as "version not found yet" and
   *       the decoder buffers without a bound (found by ProxyHeaderFuzzTest): only versions 2 ({@code 0x2X})
   *       pass here, and no more than {@link #MAX_HEADER_BYTES} are ever buffered.
   *   <li>A TLV whose length runs past the header, or nested SSL TLVs, leave slices of the
   *       buffer retained (netty/netty#16866 and #16881): a pooled buffer
   *       would be lost for good. So the decoder buffers into an unpooled heap copy of what it
   *       reads ({@link #cumulate}), which the garbage collector takes back whatever Netty
   *       retained; the socket's pooled buffers are released at once.
   * </ul>
   */
  static final class SignedDecoder extends HAProxyMessageDecoder {
    static final Object NO_SIGNATURE = new Object();
    static final Object NOT_A_HEADER = new Object();
    /** The longest header there is: v2's 16 fixed bytes and a 65535-byte address block. */
    static final int MAX_HEADER_BYTES = 16 + 65535;
    private final Signature signature = new Signature();
    private boolean refused;
    private long received;
    /** The heap buffer this decoder cumulates into; only ever this decoder's own. */
    private ByteBuf heap;

    SignedDecoder() {
      // A header with TLVs is read whole (up to the v2 maximum, 64 KiB) and the TLVs dropped.
      super(true);
      setCumulator((alloc, cumulation, in) -> cumulate(cumulation, in));
    }

    boolean sawBytes() {
      return signature.seen() > 0;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
      if (refused) {
        ReferenceCountUtil.release(msg);
        return;
      }
      if (msg instanceof ByteBuf buf) {
        // Still here after MAX_HEADER_BYTES: no header can be that long.
        boolean tooLong = received >= MAX_HEADER_BYTES;
        received += buf.readableBytes();
        Signature.Match m = signature.offer(buf);
        if (m == Signature.Match.NO || tooLong || !signature.versionTwoOrNotV2()) {
          refused = true;
          buf.release();
          ctx.fireUserEventTriggered(m == Signature.Match.NO ? NO_SIGNATURE : NOT_A_HEADER);
          return;
        }
      }
      super.channelRead(ctx, msg);
    }

    private ByteBuf cumulate(ByteBuf cumulation, ByteBuf in) {
      try {
        if (cumulation == heap && heap.refCnt() == 1) {
          heap.writeBytes(in); // an unpooled heap buffer grows as needed
        } else {
          ByteBuf copy = Unpooled.buffer(cumulation.readableBytes() + in.readableBytes());
          copy.writeBytes(cumulation).writeBytes(in);
          cumulation.release();
          heap = copy;
        }
        return heap;
      } finally {
        in.release();
      }
    }
  }

  /**
   * Whether a byte stream starts with a PROXY signature: {@code "PROXY "} for v1, the 12 bytes
   * {@code \r\n\r\n\0\r\nQUIT\n} for v2. Fed the stream's buffers in order; reads them without
   * consuming them.
   */
  static final class Signature {
    enum Match { YES, NO, MORE }

    private static final byte[] V1 = {'P', 'R', 'O', 'X', 'Y', ' '};
    private static final byte[] V2 =
        {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

    /** The signatures' bytes and, for v2, the version and command byte behind them. */
    private final byte[] first = new byte[V2.length + 1];
    private int seen;
    private Match verdict = Match.MORE;

    int seen() {
      return seen;
    }

    /**
     * False once a v2 signature is followed by a version other than 2; true while that byte has
     * not arrived, and for v1.
     */
    boolean versionTwoOrNotV2() {
      return verdict != Match.YES || seen <= V2.length || !startsLike(V2)
          || (first[V2.length] & 0xF0) == 0x20;
    }

    Match offer(ByteBuf buf) {
      if (seen < first.length) {
        int n = Math.min(first.length - seen, buf.readableBytes());
        buf.getBytes(buf.readerIndex(), first, seen, n);
        seen += n;
      }
      if (verdict != Match.MORE) {
        return verdict;
      }
      boolean v1 = startsLike(V1);
      boolean v2 = startsLike(V2);
      if (!v1 && !v2) {
        verdict = Match.NO;
      } else if ((v1 && seen >= V1.length) || (v2 && seen >= V2.length)) {
        verdict = Match.YES;
      }
      return verdict;
    }

    private boolean startsLike(byte[] sig) {
      for (int i = 0; i < Math.min(seen, sig.length); i++) {
        if (first[i] != sig[i]) {
          return false;
        }
      }
      return true;
    }
  }
}
