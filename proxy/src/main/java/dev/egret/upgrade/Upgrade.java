package dev.egret.upgrade;

import dev.egret.exchange.Downstream;
import dev.egret.exchange.Exchange;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureClassifier;
import dev.egret.failure.ProxyFailure;
import dev.egret.listener.RequestHead;
import dev.egret.telemetry.HandshakeResult;
import dev.egret.telemetry.Telemetry;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.buffer.BufferInternal;
import io.vertx.core.net.SocketAddress;
import java.security.cert.X509Certificate;
import java.time.Duration;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * Re-originates an admitted {@code http://} request (absolute-form, inside a tunnel, or from a
 * transparent listener) or absolute-form {@code https://} request over verified TLS to the
 * checked address, on a pooled keep-alive connection, and streams the answer back. Bodies flow
 * both ways with back-pressure; nothing is buffered whole.
 *
 * <p>The returned future fails with a {@link ProxyFailure} when the hop fails; the client
 * connection turns it into the client's answer (or a close, once the response has started).
 */
public final class Upgrade {
  private final Vertx vertx;
  private final Telemetry telemetry;
  private final String via;
  /** Go's net/http stops at 5; a long WebDAV call may send a 102 every few seconds. */
  static final int MAX_INTERIM = 32;

  /** @param via Egret's own {@code Via} entry, e.g. {@code 1.1 egret-3f9a} */
  public Upgrade(Vertx vertx, Telemetry telemetry, String via) {
    this.vertx = vertx;
    this.telemetry = telemetry;
    this.via = via;
  }

  /** Forwards the exchange's request and relays the response to {@code down}. */
  public Future<Void> forward(Exchange ex, Downstream down) {
    RequestHead head = ex.head();
    String host = ex.host();
    int port = ex.upstream().getPort();
    UpstreamClient upstream = ex.serving().upstream();
    RequestOptions options = new RequestOptions()
        .setMethod(HttpMethod.valueOf(head.method()))
        .setHost(host)
        .setPort(port)
        .setURI(ex.target().pathAndQuery())
        .setServer(SocketAddress.inetSocketAddress(ex.upstream()))
        .setSsl(true)
        .setSslOptions(ex.tls().sslOptions())
        .setFollowRedirects(false)
        .setConnectTimeout(upstream.poolWaitMillis());
    long start = System.currentTimeMillis();
    if (ex.trace() != null) {
      ex.trace().upstreamStarted();
    }
    Promise<Void> done = Promise.promise();
    upstream.request(options).onComplete(ar -> {
      if (ar.failed()) {
        FailureClassifier.Classification failed = upstream.acquireFailure(ar.cause(), host);
        if (failed.handshake() != null) {
          telemetry.upstreamHandshake(ex.decision().destination(), host, "unknown", "unknown",
              failed.handshake(), Duration.ofMillis(System.currentTimeMillis() - start), null);
        }
        done.fail(failed.failure());
        return;
      }
      HttpClientRequest up = ar.result();
      if (host.indexOf(':') >= 0) {
        // Vert.x writes the Host header as host:port without brackets; an IPv6 literal needs them.
        up.authority(io.vertx.core.net.HostAndPort.create("[" + host + "]", port == 443 ? -1 : port));
      }
      noteConnection(up, upstream, start, ex);
      send(ex, down, up, done);
    });
    return done.future();
  }

  private void noteConnection(HttpClientRequest up, UpstreamClient upstream, long start,
      Exchange ex) {
    SSLSession session = up.connection().sslSession();
    if (session != null) {
      ex.tlsSession(session.getProtocol(), session.getCipherSuite());
    }
    UpstreamClient.Setup setup = upstream.claim(up.connection(), start);
    if (setup == null) {
      return;
    }
    String destination = ex.decision().destination();
    if (setup.connectNanos() >= 0) {
      ex.timings().connect(setup.connectNanos());
      telemetry.upstreamConnected(destination, Duration.ofNanos(setup.connectNanos()));
    }
    ex.timings().handshake(setup.handshakeNanos());
    X509Certificate leaf = null;
    try {
      if (session != null && session.getPeerCertificates().length > 0) {
        leaf = (X509Certificate) session.getPeerCertificates()[0];
      }
    } catch (SSLPeerUnverifiedException e) {
      leaf = null; // cannot happen after a verified handshake; report without expiry
    }
    telemetry.upstreamHandshake(destination, ex.host(),
        session == null ? "unknown" : session.getProtocol(),
        session == null ? "unknown" : session.getCipherSuite(), HandshakeResult.OK,
        Duration.ofNanos(setup.handshakeNanos()), leaf);
  }

  private void send(Exchange ex, Downstream down, HttpClientRequest up, Promise<Void> done) {
    RequestHead head = ex.head();
    String host = ex.host();
    HopByHop.copy(head.headers(), up.headers());
    // The rule's injected headers win over the client's, on every path Egret writes itself:
    // absolute-form http:// and https://, plain HTTP inside a tunnel, transparent http.
    ex.decision().headers().apply(up.headers());
    if (ex.trace() != null) {
      ex.trace().upstreamHeaders(up.headers()::set, up.headers()::remove);
    }
    up.putHeader("Via", HopByHop.via(head.headers(), via));
    RequestHead.Framing framing = head.framing();
    boolean hasBody = framing.type() == RequestHead.Framing.Type.CHUNKED
        || framing.contentLength() > 0;
    if (framing.type() == RequestHead.Framing.Type.CONTENT_LENGTH) {
      up.putHeader(HttpHeaders.CONTENT_LENGTH, Long.toString(framing.contentLength()));
    } else if (framing.type() == RequestHead.Framing.Type.CHUNKED) {
      up.setChunked(true);
    }
    ResponseClock clock = new ResponseClock(up, ex.serving().config().timeouts().response(), host,
        done);
    // The request's own failures (the upstream reset it, or Egret did) also fail its response
    // future or the response's stream, which decide the hop; without a handler Vert.x would log
    // each as SEVERE "Stream reset" (the soak saw 143 in 75 s of faults it caused itself).
    up.exceptionHandler(e -> {
      if (!clock.answered()) {
        done.tryFail(FailureClassifier.classify(e, host).failure());
      }
    });
    long[] sent = {0};
    down.onClientGone(() -> {
      ex.bytes(sent[0], 0); // the access log's bytes_upstream: what was forwarded before the break
      if (done.tryFail(new ProxyFailure(ErrorKind.CLIENT_ABORTED, "the client's request body "
          + "broke off after " + sent[0] + " bytes (the client connection closed or its framing "
          + "broke); the upstream request was reset, not ended"))) {
        up.reset(0);
      }
    });
    if (HopByHop.expectsContinue(head.headers())) {
      // The upstream never sees Expect (hop-by-hop here); the client may send its body now.
      down.interim(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE));
    }
    up.earlyHintsHandler(hints -> relayInterim(down, interim(103, "Early Hints", hints)));
    listenForInterim(ex, down, up, done);
    // Not up.send(stream): a body that breaks off must reset the upstream request rather than
    // end it, or a chunked request would reach the upstream as a whole, shorter body. The
    // client connection calls onClientGone for that, and nothing ends the request then.
    down.body(data -> {
      sent[0] += data.readableBytes();
      up.write(BufferInternal.safeBuffer(data));
      if (up.writeQueueFull()) {
        down.pauseBody();
        up.drainHandler(v -> down.resumeBody());
      }
    }, () -> up.end().onComplete(w -> {
      if (w.succeeded()) {
        clock.start();
      } else if (!clock.answered()) {
        done.tryFail(new ProxyFailure(ErrorKind.DESTINATION_UNAVAILABLE, "sending the request "
            + (hasBody ? "body " : "") + "to " + host + " failed: " + w.cause().getMessage(),
            w.cause()));
      }
    }));
    up.response().onComplete(ar -> {
      if (!clock.stop()) {
        return; // the clock already failed the hop
      }
      if (ar.failed()) {
        done.tryFail(FailureClassifier.classify(ar.cause(), host).failure());
        return;
      }
      ex.timings().firstByte(System.nanoTime() - ex.startNanos());
      relay(ex, down, up, ar.result(), sent, done);
    });
  }

  /**
   * Relays the interim responses Vert.x's client would misread (see {@link InterimResponses}) on
   * the request's own context, in order with the final response, which Vert.x emits there too.
   */
  private void listenForInterim(Exchange ex, Downstream down, HttpClientRequest up,
      Promise<Void> done) {
    ContextInternal context = (ContextInternal) vertx.getOrCreateContext();
    io.netty.channel.Channel channel = UpstreamClient.channelOf(up.connection()).channel();
    boolean head = ex.head().method().equals("HEAD");
    InterimResponses.Listener listener = new InterimResponses.Listener() {
      private int count;

      @Override
      public void interim(HttpResponse head) {
        HttpResponse copy = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, head.status());
        HopByHop.copy(head.headers(), copy.headers());
        context.emit(copy, r -> {
          if (++count > MAX_INTERIM) {
            if (done.tryFail(new ProxyFailure(ErrorKind.UPSTREAM_PROTOCOL_ERROR, ex.host()
                + " sent more than " + MAX_INTERIM + " interim responses before a final one"))) {
              up.reset(0);
            }
          } else {
            relayInterim(down, r);
          }
        });
      }

      @Override
      public boolean head() {
        return head;
      }

      @Override
      public void interimToHead(int status) {
        context.emit(null, v -> {
          if (done.tryFail(new ProxyFailure(ErrorKind.UPSTREAM_PROTOCOL_ERROR, ex.host()
              + " answered a HEAD request with an interim " + status + " response, which "
              + "Egret's upstream HTTP client cannot follow to the final answer "
              + "(netty/netty#9721)"))) {
            up.reset(0);
          }
        });
      }

      @Override
      public void switchedProtocols() {
        context.emit(null, v -> {
          if (done.tryFail(new ProxyFailure(ErrorKind.UPSTREAM_PROTOCOL_ERROR, ex.host()
              + " answered 101 Switching Protocols; Egret does not relay protocol switches "
              + "(it never forwards Upgrade, which is hop-by-hop)"))) {
            up.reset(0);
          }
        });
      }
    };
    InterimResponses.listen(channel, listener);
    done.future().onComplete(v -> InterimResponses.forget(channel, listener));
  }

  /** RFC 9110 section 15.2: no 1xx goes to an HTTP/1.0 client, which cannot read one. */
  private static void relayInterim(Downstream down, HttpResponse response) {
    if (!down.http10()) {
      down.interim(response);
    }
  }

  private static HttpResponse interim(int status, String reason, MultiMap headers) {
    HttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1,
        new HttpResponseStatus(status, reason));
    HopByHop.copy(headers, r.headers());
    return r;
  }

  /**
   * The response timeout: the time from the end of the request (its last body byte written) to
   * the upstream's response headers, as Envoy and nginx count it, so a long upload is not cut
   * for being long. Confined to the request's event loop.
   */
  private final class ResponseClock {
    private final HttpClientRequest up;
    private final Duration timeout;
    private final String host;
    private final Promise<Void> done;
    private long timer = -1;
    private boolean answered;
    private boolean expired;

    ResponseClock(HttpClientRequest up, Duration timeout, String host, Promise<Void> done) {
      this.up = up;
      this.timeout = timeout;
      this.host = host;
      this.done = done;
    }

    /** The request is sent; the upstream's turn starts, unless it already answered. */
    void start() {
      if (answered || expired) {
        return;
      }
      timer = vertx.setTimer(timeout.toMillis(), id -> {
        expired = true;
        // Fail the hop first: the reset completes the response future with a bare reset error.
        done.tryFail(new ProxyFailure(ErrorKind.RESPONSE_TIMEOUT, host
            + " sent no response headers within " + timeout.toMillis()
            + " ms of the request's end (timeouts.response)"));
        up.reset(0);
      });
    }

    boolean answered() {
      return answered;
    }

    /** The response (or its failure) arrived; false if the clock had already expired. */
    boolean stop() {
      answered = true;
      if (timer >= 0) {
        vertx.cancelTimer(timer);
      }
      return !expired;
    }
  }

  private void relay(Exchange ex, Downstream down, HttpClientRequest up,
      HttpClientResponse upResp, long[] sent, Promise<Void> done) {
    int status = upResp.statusCode();
    if (status >= 100 && status < 200) {
      // InterimResponses takes every 1xx Vert.x would read as final before Vert.x sees it; one
      // that gets here anyway is never passed on as the answer.
      up.reset(0);
      done.tryFail(new ProxyFailure(ErrorKind.UPSTREAM_PROTOCOL_ERROR, ex.host()
          + " sent an interim " + status + " response where the final one belongs"));
      return;
    }
    HttpResponse resp = new DefaultHttpResponse(HttpVersion.HTTP_1_1, upResp.statusMessage() == null
        ? HttpResponseStatus.valueOf(status) : new HttpResponseStatus(status, upResp.statusMessage()));
    HopByHop.copy(upResp.headers(), resp.headers());
    resp.headers().set("Via", HopByHop.via(upResp.headers(), via));
    String length = upResp.getHeader(HttpHeaders.CONTENT_LENGTH);
    boolean noBody = ex.head().method().equals("HEAD") || status == 204 || status == 304;
    // An HTTP/1.0 client cannot read chunked framing: a body of unknown length is ended by
    // closing the connection, as the upstream did.
    boolean closeDelimited = length == null && !noBody && down.http10();
    if (length != null) {
      resp.headers().set(HttpHeaders.CONTENT_LENGTH, length);
    } else if (!noBody && !closeDelimited) {
      resp.headers().set(HttpHeaders.TRANSFER_ENCODING, HttpHeaders.CHUNKED);
    }
    if (closeDelimited) {
      resp.headers().set(HttpHeaders.CONNECTION, "close");
    }
    down.head(resp);
    long[] received = {0};
    upResp.handler(chunk -> {
      received[0] += chunk.length();
      down.data(((BufferInternal) chunk).getByteBuf());
      if (!down.writable()) {
        upResp.pause();
        down.whenWritable(upResp::resume);
      }
    });
    upResp.exceptionHandler(e -> {
      ex.bytes(sent[0], received[0]);
      up.reset(0);
      done.tryFail(new ProxyFailure(ErrorKind.RESPONSE_INCOMPLETE, "the response from upstream "
          + "broke off after " + received[0] + " bytes: " + e, e));
    });
    upResp.endHandler(v -> {
      ex.bytes(sent[0], received[0]);
      down.end();
      done.tryComplete();
    });
    down.onClientGone(() -> {
      ex.bytes(sent[0], received[0]);
      if (done.tryFail(new ProxyFailure(ErrorKind.RESPONSE_INCOMPLETE, "the client went away "
          + "after " + received[0] + " bytes of the response; the upstream request was reset"))) {
        up.reset(0);
      }
    });
  }
}
