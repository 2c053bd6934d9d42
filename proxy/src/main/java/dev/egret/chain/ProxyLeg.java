package dev.egret.chain;

import dev.egret.policy.UpstreamProxy;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureClassifier;
import dev.egret.failure.ProxyFailure;
import dev.egret.failure.UpstreamProxyFailure;
import dev.egret.telemetry.Telemetry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The leg from Egret to an {@link UpstreamProxy}, as the first handlers of the channel that dials
 * it. Usage, from a stage that would otherwise dial the destination:
 *
 * <pre>{@code
 * ProxyLeg leg = ProxyLeg.open(proxy, host, port, timeouts.connect(), telemetry, listener);
 * bootstrap.resolver(vertxResolverGroup)
 *     .handler(init(ch -> leg.install(ch)))              // [proxy TLS], this
 *     .connect(leg.address())
 *     .addListener(f -> { if (!f.isSuccess()) leg.connectFailed(f.cause()); });
 * // listener.established(ch): add the destination's handlers after this one (Egret's own TLS
 * // for an upgrade, the relay for a tunnel); listener.failed(f): f.failure() is the answer.
 * }</pre>
 *
 * <p>Once connected (and, for an {@code https://} proxy, once TLS with it is verified), it
 * writes {@code CONNECT host:port HTTP/1.1} with {@code Host} and, when configured, {@code
 * Proxy-Authorization}, and nothing else: no request ever goes to the proxy in plaintext or in
 * absolute form. It reads the answer's head strictly (status line and header lines ending in
 * CRLF, no folding, at most {@value #MAX_HEAD} bytes): a 2xx opens the tunnel (RFC 9110 section
 * 9.3.6; its framing headers are ignored, as the RFC says), anything else fails the leg, and the
 * proxy's answer is never relayed to the client. Bytes the proxy sent after its head belong to
 * the destination: they are handed to the handlers after this one at the next read, so a TLS
 * record that arrived in the same segment as the head is not lost.
 *
 * <p>Every way the leg fails ends in one {@link Listener#failed} call with an {@link
 * UpstreamProxyFailure} that names the proxy, and one count of {@code
 * egret_upstream_proxy_failures_total}. Confined to the channel's event loop.
 */
public final class ProxyLeg extends ChannelDuplexHandler {
  /** An answer head longer than this is not a proxy's answer to CONNECT. */
  static final int MAX_HEAD = 16 * 1024;
  /** How much of the proxy's reason phrase an error detail repeats. */
  private static final int MAX_REASON = 64;

  /** What the stage that dialled learns; both calls run on the channel's event loop. */
  public interface Listener {
    /**
     * The proxy answered 2xx: the channel now leads to the destination. Add the next handlers
     * after this one before returning; the proxy's extra bytes, if any, reach them next.
     */
    void established(Channel channel);

    /** The leg failed (the channel is closing); called at most once, never after established. */
    void failed(UpstreamProxyFailure failure);
  }

  private enum State {
    /** Dialling, or TLS with the proxy under way. */
    CONNECTING,
    /** CONNECT written; reading the answer's head. */
    AWAITING_ANSWER,
    /** 2xx read; bytes after it are held for the next read of the handlers behind. */
    ESTABLISHED,
    FAILED
  }

  private final UpstreamProxy proxy;
  private final String authority;
  private final long answerTimeoutMillis;
  private final Telemetry telemetry;
  private final Listener listener;
  private final long startNanos = System.nanoTime();
  private State state = State.CONNECTING;
  /** The answer so far, then (once established) what came after its head. */
  private ByteBuf buffered;
  private ScheduledFuture<?> answerTimer;
  private SslHandler proxyTls;

  private ProxyLeg(UpstreamProxy proxy, String host, int port, Duration answerTimeout,
      Telemetry telemetry, Listener listener) {
    this.proxy = proxy;
    this.authority = (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    this.answerTimeoutMillis = Math.max(1, answerTimeout.toMillis());
    this.telemetry = telemetry;
    this.listener = listener;
  }

  /**
   * A leg to {@code host:port} (the destination's name, as the client named it and the allowlist
   * admitted it) through {@code proxy}.
   *
   * @param answerTimeout how long the proxy may take to answer CONNECT ({@code timeouts.connect}:
   *     in that time it connects to the destination itself)
   */
  public static ProxyLeg open(UpstreamProxy proxy, String host, int port, Duration answerTimeout,
      Telemetry telemetry, Listener listener) {
    return new ProxyLeg(proxy, host, port, answerTimeout, telemetry, listener);
  }

  /** Where to dial: the proxy, unresolved (the dialler's resolver looks it up). */
  public InetSocketAddress address() {
    return proxy.address();
  }

  public UpstreamProxy proxy() {
    return proxy;
  }

  /** Adds the leg's handlers at the end of a new channel's pipeline: [proxy TLS], this. */
  public void install(Channel ch) {
    if (proxy.tls()) {
      proxyTls = proxy.newTlsHandler(ch.alloc());
      ch.pipeline().addLast("egret-proxy-tls", proxyTls);
    }
    ch.pipeline().addLast("egret-proxy-connect", this);
  }

  /** The TCP connect to the proxy failed: the leg fails with that, in the proxy's name. */
  public void connectFailed(Throwable cause) {
    fail(classified(cause), null);
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    if (proxyTls == null) {
      sendConnect(ctx);
    } else {
      proxyTls.handshakeFuture().addListener(f -> {
        if (f.isSuccess()) {
          sendConnect(ctx);
        } else {
          fail(classified(f.cause()), ctx);
        }
      });
    }
    ctx.fireChannelActive();
  }

  private void sendConnect(ChannelHandlerContext ctx) {
    if (state != State.CONNECTING) {
      return;
    }
    state = State.AWAITING_ANSWER;
    StringBuilder head = new StringBuilder(160).append("CONNECT ").append(authority)
        .append(" HTTP/1.1\r\nHost: ").append(authority).append("\r\n");
    if (proxy.authorization() != null) {
      head.append("Proxy-Authorization: ").append(proxy.authorization()).append("\r\n");
    }
    head.append("\r\n");
    ctx.writeAndFlush(Unpooled.copiedBuffer(head, StandardCharsets.ISO_8859_1));
    answerTimer = ctx.executor().schedule(() -> fail(new UpstreamProxyFailure(new ProxyFailure(
        ErrorKind.CONNECTION_TIMEOUT, proxy.describe() + " did not answer CONNECT " + authority
            + " within " + answerTimeoutMillis + " ms (timeouts.connect)"), "timeout"), ctx),
        answerTimeoutMillis, TimeUnit.MILLISECONDS);
    if (!ctx.channel().config().isAutoRead()) {
      ctx.read();
    }
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (state == State.FAILED || !(msg instanceof ByteBuf in)) {
      if (state != State.ESTABLISHED) {
        ReferenceCountUtil.release(msg);
      } else {
        ctx.fireChannelRead(msg);
      }
      return;
    }
    if (state == State.ESTABLISHED) {
      buffered = buffered == null ? in : Unpooled.wrappedBuffer(buffered, in);
      return;
    }
    if (state == State.CONNECTING) {
      // Nothing may come before Egret asked: a proxy that speaks first is not one.
      in.release();
      fail(malformed("it sent bytes before Egret's CONNECT"), ctx);
      return;
    }
    if (buffered == null) {
      buffered = ctx.alloc().buffer(Math.min(MAX_HEAD, Math.max(256, in.readableBytes())));
    }
    int room = MAX_HEAD + 1 - buffered.readableBytes();
    buffered.writeBytes(in, in.readerIndex(), Math.min(room, in.readableBytes()));
    ByteBuf rest = in.readableBytes() > room ? in.retainedSlice(in.readerIndex() + room,
        in.readableBytes() - room) : null;
    in.release();
    answer(ctx, rest);
  }

  /** Reads what is buffered of the answer; {@code rest} is what did not fit (after a head). */
  private void answer(ChannelHandlerContext ctx, ByteBuf rest) {
    Head head;
    try {
      head = Head.parse(buffered);
    } catch (IllegalArgumentException e) {
      release(rest);
      fail(malformed(e.getMessage()), ctx);
      return;
    }
    if (head == null) {
      release(rest);
      if (buffered.readableBytes() > MAX_HEAD) {
        fail(malformed("its answer's head is longer than " + MAX_HEAD + " bytes"), ctx);
      }
      return; // more to come; channelReadComplete asks for it
    }
    if (head.status() < 200 || head.status() > 299) {
      release(rest);
      fail(refused(head), ctx);
      return;
    }
    if (!head.complete()) {
      release(rest);
      return;
    }
    buffered.skipBytes(head.length());
    if (rest != null) {
      buffered = Unpooled.wrappedBuffer(buffered, rest);
    }
    established(ctx);
  }

  private void established(ChannelHandlerContext ctx) {
    state = State.ESTABLISHED;
    answerTimer.cancel(false);
    telemetry.upstreamProxyConnected(proxy.name(), Duration.ofNanos(System.nanoTime() - startNanos));
    listener.established(ctx.channel());
    if (buffered == null) {
      return; // the handlers behind already read (a relay starts reading at once)
    }
    if (!buffered.isReadable()) {
      buffered.release();
      buffered = null;
      ctx.pipeline().remove(this);
    } else if (ctx.channel().config().isAutoRead()) {
      handOn(ctx);
    }
    // Otherwise (a tunnel reads only on demand) the bytes wait for the relay's first read.
  }

  /** Gives the bytes after the answer to the handlers behind, then leaves the pipeline. */
  private void handOn(ChannelHandlerContext ctx) {
    ByteBuf early = buffered;
    buffered = null;
    ctx.pipeline().remove(this);
    if (early != null && early.isReadable()) {
      ctx.fireChannelRead(early);
      ctx.fireChannelReadComplete();
    } else {
      release(early);
    }
  }

  @Override
  public void read(ChannelHandlerContext ctx) {
    if (state == State.ESTABLISHED && buffered != null) {
      handOn(ctx);
    }
    ctx.read();
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    if (state == State.ESTABLISHED) {
      ctx.fireChannelReadComplete();
    } else if (state == State.AWAITING_ANSWER && !ctx.channel().config().isAutoRead()) {
      ctx.read();
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (state == State.ESTABLISHED) {
      ctx.fireExceptionCaught(cause);
    } else {
      fail(classified(cause), ctx);
    }
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (state == State.ESTABLISHED) {
      ctx.fireUserEventTriggered(evt);
    } else {
      ReferenceCountUtil.release(evt); // the proxy TLS handshake's events: handled above
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (state == State.CONNECTING || state == State.AWAITING_ANSWER) {
      fail(new UpstreamProxyFailure(new ProxyFailure(ErrorKind.DESTINATION_UNAVAILABLE,
          proxy.describe() + " closed the connection before answering CONNECT " + authority),
          "closed"), null);
    }
    ctx.fireChannelInactive();
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    release(buffered);
    buffered = null;
    if (answerTimer != null) {
      answerTimer.cancel(false);
    }
  }

  private void fail(UpstreamProxyFailure failure, ChannelHandlerContext ctx) {
    if (state == State.FAILED || state == State.ESTABLISHED) {
      return;
    }
    state = State.FAILED;
    if (answerTimer != null) {
      answerTimer.cancel(false);
    }
    release(buffered);
    buffered = null;
    telemetry.upstreamProxyFailed(proxy.name(), failure.status());
    listener.failed(failure);
    if (ctx != null) {
      ctx.close();
    }
  }

  /** A failure of the TCP connect or of TLS with the proxy, sorted as any upstream's would be. */
  private UpstreamProxyFailure classified(Throwable cause) {
    ProxyFailure f = FailureClassifier.classify(cause, proxy.describe()).failure();
    String status = switch (f.kind()) {
      case CONNECTION_TIMEOUT -> "timeout";
      case TLS_CERTIFICATE_ERROR, TLS_PROTOCOL_ERROR -> "tls_error";
      case CONNECTION_REFUSED, DNS_ERROR -> "connect_failed";
      case DESTINATION_UNAVAILABLE -> "closed";
      default -> "malformed";
    };
    return new UpstreamProxyFailure(f, status);
  }

  private UpstreamProxyFailure malformed(String why) {
    return new UpstreamProxyFailure(new ProxyFailure(ErrorKind.UPSTREAM_PROTOCOL_ERROR,
        proxy.describe() + " did not answer CONNECT " + authority + " with a valid HTTP/1.1 "
            + "response: " + why), "malformed");
  }

  private UpstreamProxyFailure refused(Head head) {
    int s = head.status();
    String hint = s == 407 ? (proxy.authenticates()
        ? "; it refused the credentials in upstreamProxies." + proxy.name() + ".auth"
        : "; it wants credentials: set upstreamProxies." + proxy.name() + ".auth")
        : s == 403 ? "; the proxy's own policy refuses this destination" : "";
    if (s < 200) {
      return malformed("it sent an interim " + s + " response, which a CONNECT never asks for");
    }
    if (s > 599) {
      return malformed("its status " + s + " is not an HTTP status (100 to 599)");
    }
    return new UpstreamProxyFailure(new ProxyFailure(ErrorKind.DESTINATION_UNAVAILABLE,
        proxy.describe() + " answered " + s + (head.reason().isEmpty() ? "" : " " + head.reason())
            + " to CONNECT " + authority + hint), Integer.toString(s));
  }

  private static void release(ByteBuf b) {
    if (b != null && b.refCnt() > 0) {
      b.release();
    }
  }

  /**
   * The answer's head as far as it is read: the status (once the status line is whole) and,
   * once the empty line arrived, its length. Strict: lines end in CRLF, no bare CR or LF, no
   * control characters, no folded header lines, header names are tokens.
   */
  record Head(int status, String reason, int length) {
    boolean complete() {
      return length > 0;
    }

    /** Null while the status line is not whole yet. */
    static Head parse(ByteBuf b) {
      int start = b.readerIndex();
      int end = b.writerIndex();
      int lineEnd = lineEnd(b, start, end);
      if (lineEnd < 0) {
        if (end - start >= 8 && !startsWithVersion(b, start)) {
          throw new IllegalArgumentException("it does not start with HTTP/1.x ("
              + printable(b, start, Math.min(end, start + 16)) + ")");
        }
        return null;
      }
      String line = b.toString(start, lineEnd - start, StandardCharsets.ISO_8859_1);
      if (!line.matches("HTTP/1\\.[01] [0-9]{3}( [\\t\\x20-\\x7e\\x80-\\xff]*)?")) {
        throw new IllegalArgumentException("its status line '" + printable(b, start,
            Math.min(lineEnd, start + 40)) + "' is not 'HTTP/1.1 NNN reason'");
      }
      int status = Integer.parseInt(line.substring(9, 12));
      String reason = line.length() > 13 ? line.substring(13) : "";
      reason = reason.replaceAll("[^\\x20-\\x7e]", "?");
      if (reason.length() > MAX_REASON) {
        reason = reason.substring(0, MAX_REASON) + "...";
      }
      int i = lineEnd + 2;
      while (true) {
        int next = lineEnd(b, i, end);
        if (next < 0) {
          return new Head(status, reason, -1);
        }
        if (next == i) {
          return new Head(status, reason, next + 2 - start);
        }
        header(b, i, next);
        i = next + 2;
      }
    }

    private static boolean startsWithVersion(ByteBuf b, int at) {
      return b.toString(at, 7, StandardCharsets.ISO_8859_1).equals("HTTP/1.");
    }

    /** The index of the CR of the next CRLF from {@code from}, or -1; refuses bare CR or LF. */
    private static int lineEnd(ByteBuf b, int from, int end) {
      for (int i = from; i < end; i++) {
        byte c = b.getByte(i);
        if (c == '\n') {
          throw new IllegalArgumentException("a line ends in a bare LF");
        }
        if (c == '\r') {
          if (i + 1 == end) {
            return -1;
          }
          if (b.getByte(i + 1) != '\n') {
            throw new IllegalArgumentException("a bare CR inside a line");
          }
          return i;
        }
      }
      return -1;
    }

    private static void header(ByteBuf b, int from, int to) {
      byte first = b.getByte(from);
      if (first == ' ' || first == '\t') {
        throw new IllegalArgumentException("a folded header line (obsolete line folding)");
      }
      int colon = -1;
      for (int i = from; i < to; i++) {
        int c = b.getByte(i) & 0xff;
        if (colon < 0) {
          if (c == ':') {
            colon = i;
          } else if (!token(c)) {
            throw new IllegalArgumentException("a header name with the character 0x"
                + Integer.toHexString(c));
          }
        } else if (c < 0x20 && c != '\t' || c == 0x7f) {
          throw new IllegalArgumentException("a control character in a header value");
        }
      }
      if (colon <= from) {
        throw new IllegalArgumentException("a header line without a name and colon");
      }
    }

    private static boolean token(int c) {
      return c > 0x20 && c < 0x7f && "\"(),/:;<=>?@[\\]{}".indexOf(c) < 0;
    }

    private static String printable(ByteBuf b, int from, int to) {
      StringBuilder s = new StringBuilder();
      for (int i = from; i < to; i++) {
        int c = b.getByte(i) & 0xff;
        s.append(c >= 0x20 && c < 0x7f ? (char) c : '?');
      }
      return s.toString();
    }
  }
}
