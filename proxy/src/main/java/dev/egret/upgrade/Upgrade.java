package dev.egret.upgrade;

import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureClassifier;
import dev.egret.failure.ProxyFailure;
import dev.egret.policy.Decision;
import dev.egret.telemetry.HandshakeResult;
import dev.egret.telemetry.Hop;
import dev.egret.telemetry.Telemetry;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.SocketAddress;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.security.cert.X509Certificate;
import java.time.Duration;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * Re-originates an allowed {@code http://} (or absolute-form {@code https://}) request over
 * verified TLS to the checked address, on a pooled keep-alive connection, and streams the answer
 * back. Bodies are piped both ways with back-pressure; nothing is buffered whole.
 *
 * <p>The returned future fails with a {@link ProxyFailure} when the hop fails; the caller turns
 * it into the client's answer (or a reset, once the response has started).
 */
public final class Upgrade {
  private final Vertx vertx;
  private final Telemetry telemetry;
  private final String via;

  /** @param via Egret's own {@code Via} entry, e.g. {@code 1.1 egret-3f9a} */
  public Upgrade(Vertx vertx, Telemetry telemetry, String via) {
    this.vertx = vertx;
    this.telemetry = telemetry;
    this.via = via;
  }

  /**
   * Forwards one request.
   *
   * @param req the client's request, paused since it arrived
   * @param pathAndQuery the upstream request-target
   * @param decision the allowlist's decision (its rule gives the TLS profile)
   * @param address the address the guard checked; the only one Egret connects to
   * @param responseTimeout how long to wait for the upstream's response headers
   */
  public Future<Void> forward(HttpServerRequest req, String pathAndQuery, Decision decision,
      InetAddress address, UpstreamClient upstream, Duration responseTimeout, Hop hop,
      dev.egret.tls.TlsProfile tls) {
    String host = decision.target().host();
    int port = decision.upstreamPort();
    hop.upstreamAddress = new InetSocketAddress(address, port).toString().replaceFirst("^.*/", "");
    RequestOptions options = new RequestOptions()
        .setMethod(req.method())
        .setHost(host)
        .setPort(port)
        .setURI(pathAndQuery)
        .setServer(SocketAddress.inetSocketAddress(new InetSocketAddress(address, port)))
        .setSsl(true)
        .setSslOptions(tls.sslOptions())
        .setFollowRedirects(false)
        .setConnectTimeout(upstream.poolWaitMillis());
    long start = System.currentTimeMillis();
    Promise<Void> done = Promise.promise();
    upstream.client().request(options).onComplete(ar -> {
      if (ar.failed()) {
        FailureClassifier.Classification failed = upstream.acquireFailure(ar.cause(), host);
        if (failed.handshake() != null) {
          telemetry.upstreamHandshake(decision.destination(), host, "unknown", "unknown",
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
      noteConnection(up, upstream, start, decision, host, hop);
      send(req, up, responseTimeout, host, hop, done);
    });
    return done.future();
  }

  private void noteConnection(HttpClientRequest up, UpstreamClient upstream, long start,
      Decision decision, String host, Hop hop) {
    SSLSession session = up.connection().sslSession();
    if (session != null) {
      hop.tlsVersion = session.getProtocol();
      hop.tlsCipher = session.getCipherSuite();
    }
    UpstreamClient.Setup setup = upstream.claim(up.connection(), start);
    if (setup == null) {
      return;
    }
    if (setup.connectMillis() >= 0) {
      hop.connectNanos = setup.connectMillis() * 1_000_000L;
      telemetry.upstreamConnected(decision.destination(), Duration.ofMillis(setup.connectMillis()));
    }
    hop.handshakeNanos = setup.handshakeMillis() * 1_000_000L;
    X509Certificate leaf = null;
    try {
      if (session != null && session.getPeerCertificates().length > 0) {
        leaf = (X509Certificate) session.getPeerCertificates()[0];
      }
    } catch (SSLPeerUnverifiedException e) {
      leaf = null; // cannot happen after a verified handshake; report without expiry
    }
    telemetry.upstreamHandshake(decision.destination(), host,
        session == null ? "unknown" : session.getProtocol(),
        session == null ? "unknown" : session.getCipherSuite(), HandshakeResult.OK,
        Duration.ofMillis(setup.handshakeMillis()), leaf);
  }

  private void send(HttpServerRequest req, HttpClientRequest up, Duration responseTimeout,
      String host, Hop hop, Promise<Void> done) {
    HopByHop.copy(req.headers(), up.headers());
    up.putHeader("Via", HopByHop.via(req.headers(), via));
    String length = req.getHeader(HttpHeaders.CONTENT_LENGTH);
    boolean chunked = req.headers().contains(HttpHeaders.TRANSFER_ENCODING);
    if (length != null) {
      up.putHeader(HttpHeaders.CONTENT_LENGTH, length);
    } else if (chunked) {
      up.setChunked(true);
    }
    ResponseClock clock = new ResponseClock(up, responseTimeout, host, done);
    if (req.headers().contains(HttpHeaders.EXPECT, HttpHeaders.CONTINUE, true)) {
      // The upstream never sees Expect (hop-by-hop here); the client may send its body now.
      req.response().writeContinue();
    }
    if (length != null || chunked) {
      // Not up.send(req): its pipe ends the upstream request when the client's body breaks off,
      // and a chunked request would then reach the upstream as a whole, shorter body. A broken
      // body resets the upstream request instead (for HTTP/1.1: closes that connection). The
      // hop fails before the reset, whose own error says less.
      BodyPump.pump(req, up).onComplete(ar -> {
        if (ar.succeeded()) {
          clock.start();
        } else if (((BodyPump.Broken) ar.cause()).side() == BodyPump.Side.SOURCE) {
          done.tryFail(new ProxyFailure(ErrorKind.CLIENT_ABORTED, "the client's request body "
              + "broke off after " + req.bytesRead() + " bytes (" + ar.cause().getCause()
              + "); the upstream request was reset, not ended", ar.cause()));
          up.reset(0);
        } else if (!clock.answered()) {
          done.tryFail(new ProxyFailure(ErrorKind.DESTINATION_UNAVAILABLE, "sending the request "
              + "body to " + host + " failed: " + ar.cause().getCause().getMessage(), ar.cause()));
          up.reset(0);
        }
        // Otherwise the upstream answered before taking the whole body (a 413, say): the relay
        // carries that answer while the pump reads the rest of the client's body into nothing.
      });
    } else {
      req.resume(); // no body: let Vert.x read the (empty) rest of the request
      up.end().onSuccess(v -> clock.start());
    }
    up.response().onComplete(ar -> {
      if (!clock.stop()) {
        return; // the clock already failed the hop
      }
      if (ar.failed()) {
        done.tryFail(FailureClassifier.classify(ar.cause(), host).failure());
        return;
      }
      hop.firstByteNanos = System.nanoTime() - hop.startNanos;
      relay(req, up, ar.result(), hop, done);
    });
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

  private void relay(HttpServerRequest req, HttpClientRequest up, HttpClientResponse upResp,
      Hop hop, Promise<Void> done) {
    HttpServerResponse resp = req.response();
    resp.setStatusCode(upResp.statusCode());
    if (upResp.statusMessage() != null) {
      resp.setStatusMessage(upResp.statusMessage());
    }
    HopByHop.copy(upResp.headers(), resp.headers());
    resp.putHeader("Via", HopByHop.via(upResp.headers(), via));
    hop.status = upResp.statusCode();
    String length = upResp.getHeader(HttpHeaders.CONTENT_LENGTH);
    boolean noBody = req.method() == HttpMethod.HEAD || upResp.statusCode() == 204
        || upResp.statusCode() == 304 || (upResp.statusCode() >= 100 && upResp.statusCode() < 200);
    // An HTTP/1.0 client cannot read chunked framing: a body of unknown length is ended by
    // closing the connection, as the upstream did.
    boolean closeDelimited = length == null && !noBody && req.version() == HttpVersion.HTTP_1_0;
    if (length != null) {
      resp.putHeader(HttpHeaders.CONTENT_LENGTH, length);
    } else if (!noBody && !closeDelimited) {
      resp.setChunked(true);
    }
    // Vert.x closes after "Connection: close" only when it is the whole value; RFC 9112 says
    // any "close" token in the list ends the connection after this response.
    boolean close = closeDelimited || HopByHop.asksToClose(req.headers());
    if (close) {
      resp.putHeader(HttpHeaders.CONNECTION, "close");
    }
    BodyPump.pump(upResp, resp).onComplete(ar -> {
      if (close) {
        req.connection().close();
      }
      hop.bytesUpstream = req.bytesRead();
      hop.bytesDownstream = resp.bytesWritten();
      if (ar.succeeded()) {
        done.tryComplete();
        return;
      }
      // Either side broke off. Reset the upstream request (closing its connection) rather than
      // let the rest of the body drain into nothing; the caller resets the client's response.
      Throwable why = ar.cause().getCause();
      String details = ((BodyPump.Broken) ar.cause()).side() == BodyPump.Side.DESTINATION
          ? "the client went away after " + resp.bytesWritten() + " bytes of the response ("
              + why + "); the upstream request was reset"
          : "the response from upstream broke off after " + resp.bytesWritten() + " bytes: "
              + why;
      done.tryFail(new ProxyFailure(ErrorKind.RESPONSE_INCOMPLETE, details, ar.cause()));
      up.reset(0);
    });
  }
}
