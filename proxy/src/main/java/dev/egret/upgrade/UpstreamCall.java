package dev.egret.upgrade;

import dev.egret.upstream.UpstreamConnection;
import dev.egret.upstream.UpstreamClient;
import dev.egret.upstream.ResponseDecoder;
import dev.egret.upstream.ResponseHead;
import dev.egret.exchange.RelayedHead;
import dev.egret.exchange.Downstream;
import dev.egret.exchange.Exchange;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureClassifier;
import dev.egret.failure.ProxyFailure;
import dev.egret.exchange.RequestHead;
import dev.egret.failure.HandshakeResult;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.handler.codec.DecoderException;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.Promise;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.time.Duration;
import javax.net.ssl.SSLException;

/**
 * One request re-originated upstream, from asking the pool for a connection to the last byte of
 * the answer: writes the request head ({@link RequestWriter}) and streams the client's body with
 * back-pressure, relays interim responses, then the final head and body, again with
 * back-pressure, and gives the connection back when both messages are complete. Every failure
 * ends in {@link #fail} (once); the downstream connection turns it into the client's answer.
 *
 * <p>Confined to the downstream connection's event loop, which is the upstream connection's too.
 */
final class UpstreamCall extends UpstreamClient.Lease {
  private static final ByteBuf CRLF =
      Unpooled.unreleasableBuffer(Unpooled.directBuffer(2).writeBytes(new byte[] {'\r', '\n'}));
  private static final ByteBuf LAST_CHUNK = Unpooled.unreleasableBuffer(
      Unpooled.directBuffer(5).writeBytes(new byte[] {'0', '\r', '\n', '\r', '\n'}));
  private static final ByteBuf CONTINUE = Unpooled.unreleasableBuffer(Unpooled.directBuffer(25)
      .writeBytes("HTTP/1.1 100 Continue\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII)));

  /** A body this small gets room in the head's buffer, to leave with it in one write. */
  private static final int SMALL_BODY = 2048;

  private final Upgrade upgrade;
  private final UpstreamClient client;
  private final io.netty.channel.EventLoop loop;
  private final UpstreamClient.Key key;
  private final Exchange ex;
  private final Downstream down;
  private final RequestHead head;
  private final String host;
  private final boolean isHead;
  private final boolean chunked;
  private final boolean hasBody;
  private final Promise<Void> done = Promise.promise();
  private final long startMillis = System.currentTimeMillis();
  // The hooks handed to the downstream connection, as classes: under the sidecar profile's client
  // compiler each lambda or method-reference capture is a call into the VM, and each request
  // has these.
  private final Runnable downstreamGone = new Runnable() {
    @Override
    public void run() {
      downstreamGone();
    }
  };
  private final java.util.function.Consumer<ByteBuf> bodyData =
      new java.util.function.Consumer<>() {
        @Override
        public void accept(ByteBuf data) {
          bodyData(data);
        }
      };
  private final Runnable bodyEnd = new Runnable() {
    @Override
    public void run() {
      bodyEnd();
    }
  };
  /** Made when the client is first too slow, which most requests never meet. */
  private Runnable resumeRead;

  private UpstreamConnection conn;
  private boolean bodyStarted;
  private boolean bodyPaused;
  private boolean unflushed;
  private boolean requestEnded;
  private long requestEndNanos;
  private boolean retried;
  private boolean reused;
  /** The final response's head arrived (the response clock stopped). */
  private boolean answered;
  /** The final head, kept until its first body bytes prove its framing sound. */
  private RelayedHead pendingHead;
  /** The answer is a 205, whose content is read off the upstream and dropped. */
  private boolean discardBody;
  private int interims;
  private boolean keepAlive;
  private long sent;
  private long received;
  private boolean finished;

  UpstreamCall(Upgrade upgrade, Exchange ex, Downstream down, io.netty.channel.EventLoop loop) {
    this.upgrade = upgrade;
    this.client = ex.serving().upstream();
    this.loop = loop;
    this.ex = ex;
    this.down = down;
    this.head = ex.head();
    this.host = ex.host();
    this.key = new UpstreamClient.Key(host, ex.upstream(), ex.tls(), ex.decision().route());
    this.isHead = head.method().equals("HEAD");
    RequestHead.Framing framing = head.framing();
    this.chunked = framing.type() == RequestHead.Framing.Type.CHUNKED;
    this.hasBody = chunked || framing.contentLength() > 0;
  }

  io.vertx.core.Future<Void> start() {
    down.onDownstreamGone(downstreamGone);
    if (ex.trace() != null) {
      ex.trace().upstreamStarted();
    }
    client.acquire(loop, key, this, false);
    return done.future();
  }

  // --- the connection ---

  @Override
  public dev.egret.telemetry.Telemetry telemetry() {
    return upgrade.telemetry();
  }

  @Override
  public void connected(UpstreamConnection c, UpstreamClient.Setup setup) {
    if (finished) {
      c.unclaim(setup);
      c.release(true);
      return;
    }
    conn = c;
    reused = setup == null;
    ex.tlsSession(c.tlsVersion(), c.tlsCipher());
    if (setup != null) {
      noteSetup(c, setup);
    }
    c.decoder().head(isHead);
    Channel ch = c.channel();
    ch.write(RequestWriter.head(ch.alloc(), head, ex.target().pathAndQuery(),
        c.pool().hostHeader, ex.decision().headers(), ex.trace(), upgrade.via()), ch.voidPromise());
    unflushed = true;
    if (bodyStarted) {
      ch.flush(); // a retry: the body had not started, so it goes to this connection
      unflushed = false;
      return;
    }
    if (HopByHop.expectsContinue(head.headers())) {
      // The upstream never sees Expect (hop-by-hop here); the client may send its body now.
      ch.flush();
      unflushed = false;
      down.interim(CONTINUE.retainedDuplicate());
    }
    bodyStarted = true;
    // Not a bulk copy: a body that breaks off must close the upstream connection rather than
    // end the request, or a chunked request would reach the upstream as a whole, shorter body.
    // The downstream connection calls downstreamGone for that, and nothing ends the request then.
    down.body(bodyData, bodyEnd);
    if (unflushed && conn != null) {
      conn.channel().flush(); // the head, with whatever of the body was already here
      unflushed = false;
    }
  }

  private void noteSetup(UpstreamConnection c, UpstreamClient.Setup setup) {
    String destination = ex.decision().destination();
    if (setup.connectNanos() >= 0) {
      ex.timings().connect(setup.connectNanos());
      upgrade.telemetry().upstreamConnected(destination, Duration.ofNanos(setup.connectNanos()));
    }
    ex.timings().handshake(setup.handshakeNanos());
    upgrade.telemetry().upstreamHandshake(destination, host, c.tlsVersion(), c.tlsCipher(),
        HandshakeResult.OK, Duration.ofNanos(setup.handshakeNanos()), c.leaf());
  }

  @Override
  public void acquireFailed(Throwable cause) {
    if (finished) {
      return;
    }
    FailureClassifier.Classification failed = client.acquireFailure(cause, host);
    if (failed.handshake() != null) {
      upgrade.telemetry().upstreamHandshake(ex.decision().destination(), host, "unknown",
          "unknown", failed.handshake(),
          Duration.ofMillis(System.currentTimeMillis() - startMillis), null);
    }
    fail(failed.failure());
  }

  // --- the request body ---

  private void bodyData(ByteBuf data) {
    UpstreamConnection c = conn;
    if (finished || c == null) {
      data.release();
      return;
    }
    int n = data.readableBytes();
    sent += n;
    Channel ch = c.channel();
    if (chunked) {
      ch.write(RequestWriter.chunkHeader(ch.alloc(), n), ch.voidPromise());
      ch.write(data, ch.voidPromise());
      ch.write(CRLF.duplicate(), ch.voidPromise());
    } else {
      ch.write(data, ch.voidPromise());
    }
    ch.flush();
    unflushed = false;
    c.touch();
    if (!ch.isWritable() && !bodyPaused) {
      bodyPaused = true;
      down.pauseBody();
    }
  }

  private void bodyEnd() {
    UpstreamConnection c = conn;
    if (finished || c == null) {
      return;
    }
    Channel ch = c.channel();
    if (chunked) {
      ch.writeAndFlush(LAST_CHUNK.duplicate(), ch.voidPromise());
      unflushed = false;
    } else if (unflushed) {
      ch.flush();
      unflushed = false;
    }
    requestEnded = true;
    requestEndNanos = System.nanoTime(); // the response clock starts, unless it answered already
  }

  @Override
  public void writable() {
    if (bodyPaused && conn != null && conn.channel().isWritable()) {
      bodyPaused = false;
      down.resumeBody();
    }
  }

  // --- the response ---

  @Override
  public void read(Object msg) {
    if (finished) {
      ReferenceCountUtil.release(msg);
    } else if (msg instanceof ByteBuf data) {
      content(data, false);
    } else if (msg instanceof ResponseDecoder.End end) {
      content(end.content(), true);
    } else if (msg instanceof ResponseHead h) {
      responseHead(h);
    } else if (msg instanceof DecoderException bad) {
      invalid(bad);
    } else {
      ReferenceCountUtil.release(msg);
    }
  }

  /** The upstream's response could not be parsed (or was framed two ways). */
  private void invalid(DecoderException cause) {
    if (answered && pendingHead == null) {
      fail(new ProxyFailure(ErrorKind.UPSTREAM_PROTOCOL_ERROR, "the response from upstream "
          + host + " broke off after " + received + " bytes: its framing is invalid ("
          + cause.getMessage() + ")", cause));
      return;
    }
    fail(FailureClassifier.classify(cause, host).failure());
  }

  private void responseHead(ResponseHead r) {
    int status = r.status();
    if (status < 200) {
      interim(r, status);
      return;
    }
    answered = true;
    ex.timings().firstByte(System.nanoTime() - ex.startNanos());
    keepAlive = r.keepAlive();
    RelayedHead.Framing framing;
    discardBody = status == 205;
    if (r.body() == ResponseHead.Body.NONE || r.contentLength() >= 0 || discardBody) {
      framing = RelayedHead.Framing.AS_DECLARED;
    } else if (down.http10()) {
      // An HTTP/1.0 client cannot read chunked framing: a body of unknown length is ended by
      // closing the connection, as the upstream did.
      framing = RelayedHead.Framing.UNTIL_CLOSE;
    } else {
      framing = RelayedHead.Framing.CHUNKED;
    }
    pendingHead = new RelayedHead(status,
        ResponseWriter.finalHead(conn.channel().alloc(), r, upgrade.viaBytes(), framing,
            r.contentLength() > 0 && r.contentLength() <= SMALL_BODY ? (int) r.contentLength() : 0),
        framing);
  }

  /** {@code MAX_INTERIM}: Go's net/http stops at 5; a long WebDAV call may send many 102s. */
  private void interim(ResponseHead r, int status) {
    if (isHead && status != 101) {
      fail(new ProxyFailure(ErrorKind.UPSTREAM_PROTOCOL_ERROR, host + " answered a HEAD request "
          + "with an interim " + status + " response; Egret refuses that rather than trust the "
          + "framing of what follows (HTTP clients disagree on it)"));
      return;
    }
    if (status == 101) {
      fail(new ProxyFailure(ErrorKind.UPSTREAM_PROTOCOL_ERROR, host + " answered 101 Switching "
          + "Protocols; Egret does not relay protocol switches (it never forwards Upgrade, which "
          + "is hop-by-hop)"));
      return;
    }
    if (++interims > Upgrade.MAX_INTERIM) {
      fail(new ProxyFailure(ErrorKind.UPSTREAM_PROTOCOL_ERROR, host + " sent more than "
          + Upgrade.MAX_INTERIM + " interim responses before a final one"));
      return;
    }
    if (status == 100) {
      return; // Egret answered the client's Expect itself; the upstream never saw one
    }
    // RFC 9110 section 15.2: no 1xx goes to an HTTP/1.0 client, which cannot read one.
    if (!down.http10()) {
      down.interim(ResponseWriter.interim(conn.channel().alloc(), r));
    }
  }

  /** Body bytes; {@code last}: the response's end, with its last bytes (maybe none). */
  private void content(ByteBuf data, boolean last) {
    int n = data.readableBytes();
    if (discardBody && n > 0) {
      // A 205 has no content (RFC 9110 section 15.3.6): read off the upstream, never relayed.
      data.release();
      data = Unpooled.EMPTY_BUFFER;
      n = 0;
    }
    if (pendingHead != null) {
      RelayedHead h = pendingHead;
      pendingHead = null;
      if (last) {
        received += n;
        complete(h, data); // head and body arrived together: one write for the client
        return;
      }
      down.head(h);
    }
    if (n > 0) {
      received += n;
      down.data(data); // the downstream connection releases it
    } else {
      data.release();
    }
    if (last) {
      complete();
    } else if (!down.writable()) {
      conn.channel().config().setAutoRead(false);
      if (resumeRead == null) {
        resumeRead = new Runnable() {
          @Override
          public void run() {
            resumeRead();
          }
        };
      }
      down.whenWritable(resumeRead);
    }
  }

  private void resumeRead() {
    UpstreamConnection c = conn;
    if (c != null && !finished) {
      c.channel().config().setAutoRead(true);
    }
  }

  // --- the end ---

  /** The response is complete: the connection goes back to the pool (if it can be reused). */
  private void complete() {
    complete(null, null);
  }

  /** As {@link #complete()}; with a {@code head}, the whole response goes to the client now. */
  private void complete(RelayedHead head, ByteBuf data) {
    finished = true;
    ex.bytes(sent, received);
    if (head != null) {
      down.whole(head, data);
    } else {
      down.end();
    }
    UpstreamConnection c = conn;
    conn = null;
    if (c != null) {
      // A request whose body had not all been sent leaves the connection out of step.
      c.release(keepAlive && requestEnded);
    }
    done.tryComplete();
  }

  /** Ends the hop with {@code f}; the upstream connection, if any, closes. */
  private void fail(ProxyFailure f) {
    if (finished) {
      return;
    }
    finished = true;
    ex.bytes(sent, received);
    if (pendingHead != null) {
      pendingHead.lines().release(); // never written: the body's framing broke first
      pendingHead = null;
    }
    UpstreamConnection c = conn;
    conn = null;
    if (c != null) {
      c.abandon();
    } else {
      client.forget(loop, key, this);
    }
    done.tryFail(f);
  }

  @Override
  public void closed(Throwable cause) {
    conn = null;
    if (finished) {
      return;
    }
    if (mayRetry(cause)) {
      // A kept-alive connection the upstream closed while it idled (the close crossed this
      // request): nothing of the answer came and the request is safe to send again.
      retried = true;
      client.acquire(loop, key, this, true);
      return;
    }
    if (answered) {
      fail(new ProxyFailure(ErrorKind.RESPONSE_INCOMPLETE, "the response from upstream broke off "
          + "after " + received + " bytes: " + (cause == null ? "the connection closed" : cause),
          cause));
      return;
    }
    fail(FailureClassifier.classify(cause == null ? new ClosedChannelException() : cause, host)
        .failure());
  }

  /**
   * Once, on a reused connection that closed before any of the answer (an interim included)
   * arrived, for a request without a body whose method is idempotent (RFC 9110 section 9.2.2), so
   * the upstream running it twice is harmless; not after a TLS failure, which a retry would not
   * cure.
   */
  private boolean mayRetry(Throwable cause) {
    return reused && !retried && !answered && interims == 0 && !hasBody
        && (cause == null || (cause instanceof IOException && !(cause instanceof SSLException)))
        && idempotent(head.method());
  }

  private static boolean idempotent(String method) {
    return switch (method) {
      case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE" -> true;
      default -> false;
    };
  }

  /** The response timeout, checked on the loop's tick while the connection is in use. */
  @Override
  public void tick(long now) {
    if (requestEnded && !answered && now - requestEndNanos > client.responseNanos) {
      fail(new ProxyFailure(ErrorKind.RESPONSE_TIMEOUT, host + " sent no response headers within "
          + Duration.ofNanos(client.responseNanos).toMillis()
          + " ms of the request's end (timeouts.response)"));
    }
  }

  private void downstreamGone() {
    if (finished) {
      return;
    }
    if (answered) {
      fail(new ProxyFailure(ErrorKind.RESPONSE_INCOMPLETE, "the client went away after "
          + received + " bytes of the response; the upstream request was reset"));
    } else {
      fail(new ProxyFailure(ErrorKind.DOWNSTREAM_ABORTED,
          "the client's request body broke off after "
          + sent + " bytes (the client connection closed or its framing broke); the upstream "
          + "request was reset, not ended"));
    }
  }
}
