package dev.egret.listener;

import dev.egret.Serving;
import dev.egret.address.AddressGuard;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.FailureResponse;
import dev.egret.failure.ProxyFailure;
import dev.egret.policy.Decision;
import dev.egret.policy.Kind;
import dev.egret.telemetry.Hop;
import dev.egret.telemetry.Telemetry;
import dev.egret.tunnel.Tunnel;
import dev.egret.upgrade.Upgrade;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.net.impl.ConnectionBase;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The first stage of every hop on the proxy port. For each request it: splits the target, refuses
 * loops, asks the allowlist, has the address guard resolve and check the host, then hands the
 * request to the {@link Upgrade} (http://, https://) or the {@link Tunnel} (CONNECT). Every
 * refusal and failure comes back here as a {@link ProxyFailure} and leaves through {@link
 * FailureResponse}.
 */
public final class Front implements Handler<HttpServerRequest> {
  private final Supplier<Serving> serving;
  private final AddressGuard guard;
  private final Upgrade upgrade;
  private final Tunnel tunnel;
  private final Telemetry telemetry;
  private final String viaToken;
  private final Supplier<Set<InetSocketAddress>> ownAddresses;

  /**
   * @param viaToken Egret's own {@code Via} pseudonym; a request already carrying it has looped
   * @param ownAddresses the bound proxy and admin sockets; a target that resolves to one loops
   */
  public Front(Supplier<Serving> serving, AddressGuard guard, Upgrade upgrade, Tunnel tunnel,
      Telemetry telemetry, String viaToken, Supplier<Set<InetSocketAddress>> ownAddresses) {
    this.serving = serving;
    this.guard = guard;
    this.upgrade = upgrade;
    this.tunnel = tunnel;
    this.telemetry = telemetry;
    this.viaToken = viaToken;
    this.ownAddresses = ownAddresses;
  }

  @Override
  public void handle(HttpServerRequest req) {
    // Nothing is read from the client until the upstream is ready for it.
    req.pause();
    Serving now = serving.get();
    Hop hop = new Hop();
    hop.client = req.remoteAddress() == null ? null : req.remoteAddress().toString();
    hop.method = req.method().name();
    RequestTarget rt;
    try {
      rt = RequestTarget.parse(req.method().name(), req.uri());
    } catch (ProxyFailure f) {
      hop.url = "-";
      refuse(req, hop, f, null, null, true);
      return;
    }
    hop.url = rt.logUrl();
    hop.kind = rt.target().kind();
    String host = rt.target().host();
    for (String v : req.headers().getAll("Via")) {
      if (v.contains(viaToken)) {
        refuse(req, hop, new ProxyFailure(ErrorKind.LOOP_DETECTED,
            "the request already passed through this Egret (" + viaToken + ")"), host, null, true);
        return;
      }
    }
    Decision decision = now.config().allowlist().decide(rt.target());
    hop.decision = decision;
    if (!decision.verdict().letsThrough()) {
      refuse(req, hop, new ProxyFailure(ErrorKind.REQUEST_DENIED, decision.details()), host,
          decision.ruleName(), closeAfterRefusal(req));
      return;
    }
    long dnsStart = System.nanoTime();
    guard.check(host, decision.rule(), now.config().addresses())
        // Timed whether it resolved or not: a slow failure (a DNS timeout) is worth seeing.
        .andThen(ar -> hop.dnsNanos = System.nanoTime() - dnsStart)
        .compose(address -> dispatch(req, rt, decision, address, now, hop))
        .onComplete(ar -> {
          if (ar.succeeded()) {
            finish(hop, null);
          } else {
            ProxyFailure f =
                dev.egret.failure.FailureClassifier.classify(ar.cause(), host).failure();
            refuse(req, hop, f, host, decision.ruleName(), closeAfterRefusal(req));
          }
        });
  }

  private Future<Void> dispatch(HttpServerRequest req, RequestTarget rt, Decision decision,
      InetAddress address, Serving now, Hop hop) {
    if (!((ConnectionBase) req.connection()).channel().isActive()) {
      // The client left, or the strict guard refused what followed this head and closed, while
      // the host was being resolved: nobody waits for an answer, so nothing goes upstream.
      return Future.failedFuture(new ProxyFailure(ErrorKind.REQUEST_ERROR,
          "the client connection closed before the request was forwarded"));
    }
    InetSocketAddress upstream = new InetSocketAddress(address, decision.upstreamPort());
    for (InetSocketAddress own : ownAddresses.get()) {
      boolean samePort = own.getPort() == upstream.getPort();
      boolean sameHost = own.getAddress().isAnyLocalAddress()
          ? address.isLoopbackAddress() || address.isAnyLocalAddress()
          : own.getAddress().equals(address);
      if (samePort && sameHost) {
        return Future.failedFuture(new ProxyFailure(ErrorKind.LOOP_DETECTED,
            rt.target().describe() + " is Egret's own listener"));
      }
    }
    var tls = decision.rule() != null ? decision.rule().tls() : now.config().defaultTls();
    if (rt.target().kind() == Kind.TUNNEL) {
      return tunnel.open(req, decision, address, now.config(), hop);
    }
    return upgrade.forward(req, rt.pathAndQuery(), decision, address, now.upstream(),
        now.config().timeouts().response(), hop, tls);
  }

  /**
   * True when the client connection cannot be kept after a refusal: a body was sent and not
   * read, or the request was a CONNECT, after which the strict guard passes bytes through
   * unparsed (they were meant for the tunnel) and must never see another request.
   */
  private static boolean closeAfterRefusal(HttpServerRequest req) {
    return req.method() == io.vertx.core.http.HttpMethod.CONNECT || hasBody(req);
  }

  private static boolean hasBody(HttpServerRequest req) {
    String length = req.getHeader(HttpHeaders.CONTENT_LENGTH);
    return (length != null && !length.equals("0"))
        || req.headers().contains(HttpHeaders.TRANSFER_ENCODING);
  }

  /**
   * Answers a refusal or failure. {@code close} closes the client connection afterwards: after
   * malformed input, and after a refused request whose body was never read (draining an unknown
   * body to keep the connection is not worth it).
   */
  private void refuse(HttpServerRequest req, Hop hop, ProxyFailure f, String host, String rule,
      boolean close) {
    hop.status = req.response().headWritten() ? hop.status : f.status();
    FailureResponse.send(req, f, host, rule, close);
    if (!close) {
      req.resume(); // a body-less request: let Vert.x finish reading it and go on to the next
    }
    finish(hop, f);
  }

  private void finish(Hop hop, ProxyFailure f) {
    if (f != null) {
      hop.error = f.kind();
      hop.errorDetails = f.details();
    }
    if (hop.finish()) {
      telemetry.hopFinished(hop);
    }
  }
}
