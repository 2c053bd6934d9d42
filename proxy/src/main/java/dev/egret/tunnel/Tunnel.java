package dev.egret.tunnel;

import dev.egret.config.EgretConfig;
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
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.net.ConnectOptions;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.SocketAddress;
import io.vertx.core.net.impl.ConnectionBase;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;

/**
 * A {@code CONNECT} tunnel that can only carry TLS. It connects to the checked address first and
 * answers {@code 200 Connection Established} only once the upstream is up. Then it reads the
 * client's first bytes until a whole ClientHello is in (nothing reaches the upstream before),
 * requires its SNI to name the CONNECT host, forwards it, and reads the server's first bytes
 * until the ServerHello's version is known (nothing reaches the client before), refusing
 * anything below {@code tls.minVersion}. After that it relays both ways opaquely, with
 * back-pressure, counting bytes per chunk.
 *
 * <p>A refusal inside the tunnel cannot be an HTTP answer any more (the 200 went out): both
 * sides are closed, and the hop is logged and counted with its reason.
 *
 * <p>{@code limits.maxConnectionsPerDestination} caps the tunnels open at once to one destination
 * (the matched rule's host pattern); one over the cap is answered {@code 503
 * connection_limit_reached} before anything is connected. The upgrade path's pools have their own
 * cap of the same size, so a destination may hold that many of each.
 */
public final class Tunnel {
  private final Vertx vertx;
  private final Telemetry telemetry;
  private final NetClient client;
  private final DestinationSlots slots = new DestinationSlots();

  public Tunnel(Vertx vertx, Telemetry telemetry) {
    this.vertx = vertx;
    this.telemetry = telemetry;
    this.client = vertx.createNetClient(new NetClientOptions().setTcpNoDelay(true));
  }

  /**
   * Opens the tunnel. Fails with a {@link ProxyFailure} only before the 200 is sent; afterwards
   * the returned future completes when both sides are closed, with the hop's error set if the
   * tunnel was cut.
   */
  public Future<Void> open(HttpServerRequest req, Decision decision, InetAddress address,
      EgretConfig config, Hop hop) {
    // A report-mode tunnel that no rule matched has destination "denied"; counting all of those
    // together would let report mode cap unrelated hosts, so each such host counts alone.
    String destination = decision.rule() == null
        ? "host " + decision.target().host() : decision.destination();
    int limit = config.limits().maxConnectionsPerDestination();
    if (!slots.tryAcquire(destination, limit)) {
      return Future.failedFuture(new ProxyFailure(ErrorKind.CONNECTION_LIMIT_REACHED,
          destination + " already has " + limit
              + " tunnels open (limits.maxConnectionsPerDestination)"));
    }
    // The slot is given back when the tunnel has closed, or when it never opened.
    return connectAndRelay(req, decision, address, config, hop)
        .onComplete(ar -> slots.release(destination));
  }

  private Future<Void> connectAndRelay(HttpServerRequest req, Decision decision,
      InetAddress address, EgretConfig config, Hop hop) {
    String host = decision.target().host();
    int port = decision.upstreamPort();
    hop.upstreamAddress = address.getHostAddress() + ":" + port;
    long connectStart = System.nanoTime();
    ConnectOptions options = new ConnectOptions()
        .setRemoteAddress(SocketAddress.inetSocketAddress(new InetSocketAddress(address, port)))
        .setTimeout((int) config.timeouts().connect().toMillis());
    return client.connect(options)
        .recover(e -> Future.failedFuture(FailureClassifier.classify(e, host).failure()))
        .compose(upstream -> {
          hop.connectNanos = System.nanoTime() - connectStart;
          telemetry.upstreamConnected(decision.destination(), Duration.ofNanos(hop.connectNanos));
          hop.status = 200;
          ((ConnectionBase) req.connection()).channel().pipeline()
              .addAfter("httpEncoder", ConnectEstablished.NAME, new ConnectEstablished());
          return req.toNetSocket()
              .recover(e -> {
                upstream.close();
                return Future.failedFuture(e);
              })
              .compose(downstream -> relay(downstream, upstream, decision, config, hop));
        });
  }

  private Future<Void> relay(NetSocket downstream, NetSocket upstream, Decision decision,
      EgretConfig config, Hop hop) {
    Promise<Void> closed = Promise.promise();
    telemetry.tunnelOpened();
    long idleMs = config.timeouts().idle().toMillis();
    TlsGate gate = new TlsGate(vertx, downstream, upstream, decision.target().host(),
        config.tlsBaseline().minWireVersion(), idleMs);
    long handshakeMs = config.timeouts().handshake().toMillis();
    // One timer per tunnel, not per chunk: it cuts a tunnel whose TLS handshake has not shown
    // both hellos within the handshake timeout, or that carried nothing for the idle timeout.
    long timer = vertx.setPeriodic(Math.max(25, Math.min(idleMs, handshakeMs) / 4), id -> {
      long now = System.nanoTime();
      if (!gate.inspected() && now - gate.startNanos() > handshakeMs * 1_000_000L) {
        gate.cut(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR,
            "no complete TLS handshake hello within " + handshakeMs + " ms"));
      } else if (now - gate.lastActivityNanos() > idleMs * 1_000_000L) {
        gate.closeBoth();
      }
    });
    gate.onClose(failure -> {
      vertx.cancelTimer(timer);
      if (failure != null && hop.error == null) {
        hop.error = failure.kind();
        hop.errorDetails = failure.details();
      }
      hop.bytesUpstream = gate.bytesUpstream();
      hop.bytesDownstream = gate.bytesDownstream();
      hop.tlsVersion = gate.negotiatedVersion();
      hop.tlsCipher = gate.negotiatedCipher();
      hop.handshakeNanos = gate.handshakeNanos();
      if (gate.firstServerByteNanos() >= 0) {
        hop.firstByteNanos = gate.firstServerByteNanos() - hop.startNanos;
      }
      reportHandshake(gate, decision, failure);
      telemetry.tunnelClosed();
      closed.complete();
    });
    gate.start();
    return closed.future();
  }

  /**
   * Counts the TLS session the tunnel carried in the handshake metrics, from what the gate saw
   * in the ServerHello, so the version and cipher mix covers tunnels too. The certificate is the
   * client's to verify inside a tunnel, so no expiry is recorded for it.
   */
  private void reportHandshake(TlsGate gate, Decision decision, ProxyFailure failure) {
    String version = gate.negotiatedVersion();
    if (version == null || version.equals("none")) {
      return;
    }
    boolean versionCut = failure != null && failure.kind() == ErrorKind.TLS_PROTOCOL_ERROR;
    String cipher = gate.negotiatedCipher() == null ? "unknown" : gate.negotiatedCipher();
    Duration took = Duration.ofNanos(Math.max(0, gate.handshakeNanos()));
    telemetry.upstreamHandshake(decision.destination(), decision.target().host(), version, cipher,
        versionCut ? HandshakeResult.PROTOCOL_ERROR : HandshakeResult.OK, took, null);
  }

  public Future<Void> close() {
    return client.close();
  }
}
