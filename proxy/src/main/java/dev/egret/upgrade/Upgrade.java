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
        .setFollowRedirects(false);
    long start = System.currentTimeMillis();
    Promise<Void> done = Promise.promise();
    upstream.client().request(options).onComplete(ar -> {
      if (ar.failed()) {
        ProxyFailure f = FailureClassifier.classify(ar.cause(), host);
        if (FailureClassifier.isTlsFailure(f)) {
          telemetry.upstreamHandshake(decision.destination(), host, "unknown", "unknown",
              HandshakeResult.of(ar.cause()), (System.currentTimeMillis() - start) / 1000.0, null);
        }
        done.fail(f);
        return;
      }
      HttpClientRequest up = ar.result();
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
      telemetry.upstreamConnected(decision.destination(), setup.connectMillis() / 1000.0);
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
        setup.handshakeMillis() / 1000.0, leaf);
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
    long timer = vertx.setTimer(responseTimeout.toMillis(), id -> up.reset(0,
        new ProxyFailure(ErrorKind.RESPONSE_TIMEOUT, host + " sent no response headers within "
            + responseTimeout.toMillis() + " ms")));
    if (req.headers().contains(HttpHeaders.EXPECT, HttpHeaders.CONTINUE, true)) {
      // The upstream never sees Expect (hop-by-hop here); the client may send its body now.
      req.response().writeContinue();
    }
    Future<HttpClientResponse> response;
    if (length != null || chunked) {
      // Not up.send(req): its pipe ends the upstream request when the client's body fails, so a
      // body cut short (the client left, or the strict guard refused a malformed chunk) would
      // reach the upstream as a complete, truncated request. Reset the upstream request instead.
      req.pipe().endOnFailure(false).to(up).onFailure(e -> {
        up.exceptionHandler(ignored -> { }); // the failure reaches the hop through response()
        up.reset(0, e);
      });
      response = up.response();
    } else {
      response = up.send();
      req.resume(); // no body: let Vert.x read the (empty) rest of the request
    }
    response.onComplete(ar -> {
      vertx.cancelTimer(timer);
      if (ar.failed()) {
        done.fail(FailureClassifier.classify(ar.cause(), host));
        return;
      }
      hop.firstByteNanos = System.nanoTime() - hop.startNanos;
      relay(req, ar.result(), hop, done);
    });
  }

  private void relay(HttpServerRequest req, HttpClientResponse upResp, Hop hop,
      Promise<Void> done) {
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
    if (length != null) {
      resp.putHeader(HttpHeaders.CONTENT_LENGTH, length);
    } else if (!noBody) {
      resp.setChunked(true);
    }
    // Vert.x closes after "Connection: close" only when it is the whole value; RFC 9112 says
    // any "close" token in the list ends the connection after this response.
    boolean close = HopByHop.asksToClose(req.headers());
    if (close) {
      resp.putHeader(HttpHeaders.CONNECTION, "close");
    }
    upResp.pipe().endOnFailure(false).to(resp).onComplete(ar -> {
      if (close) {
        req.connection().close();
      }
      hop.bytesUpstream = req.bytesRead();
      hop.bytesDownstream = resp.bytesWritten();
      if (ar.succeeded()) {
        done.complete();
      } else {
        done.fail(new ProxyFailure(ErrorKind.RESPONSE_INCOMPLETE,
            "the response from upstream broke off: " + ar.cause().getMessage(), ar.cause()));
      }
    });
  }
}
