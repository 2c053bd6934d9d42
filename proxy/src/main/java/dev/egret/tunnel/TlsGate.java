package dev.egret.tunnel;

import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import dev.egret.policy.HostName;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.NetSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The two directions of one tunnel. Each starts in inspection: bytes are held (bounded by the
 * inspector's 64 KiB) until the hello of that direction is judged, then released and the
 * direction turns into an opaque relay with back-pressure. A refusal cuts both sides at once.
 *
 * <p>Threading: both sockets belong to the client connection's event loop (the upstream was
 * connected from it), so every handler here runs on that one thread and the fields need no
 * locking.
 */
final class TlsGate {
  private final Vertx vertx;
  private final long flushGraceMs;
  private final NetSocket client;
  private final NetSocket server;
  private final String connectHost;
  private final int minVersion;
  private final long startNanos = System.nanoTime();
  private final ClientHelloInspector clientHello = new ClientHelloInspector();
  private final ServerHelloInspector serverHello = new ServerHelloInspector();
  private List<Buffer> heldFromClient = new ArrayList<>();
  private List<Buffer> heldFromServer = new ArrayList<>();
  private long lastActivityNanos = startNanos;
  private long bytesUpstream;
  private long bytesDownstream;
  private String negotiatedVersion;
  private String negotiatedCipher;
  // Timestamps (System.nanoTime) of the handshake as seen from the middle, -1 until they happen.
  private long clientHelloSentNanos = -1;
  private long firstServerByteNanos = -1;
  private long clientFlightNanos = -1;
  private ProxyFailure failure;
  /** A side sent its FIN; it may still have bytes on the way through Vert.x (see start()). */
  private boolean serverEnded;
  private boolean clientEnded;
  /** A side paused because the other side's write queue is full. */
  private boolean serverHeld;
  private boolean clientHeld;
  private boolean closed;
  private Consumer<ProxyFailure> onClose = f -> {};

  /**
   * @param flushGraceMs how long a finished tunnel waits for a slow reader to take the bytes
   *     already written to it before closing regardless
   */
  TlsGate(Vertx vertx, NetSocket client, NetSocket server, String connectHost, int minVersion,
      long flushGraceMs) {
    this.vertx = vertx;
    this.flushGraceMs = flushGraceMs;
    this.client = client;
    this.server = server;
    this.connectHost = connectHost;
    this.minVersion = minVersion;
  }

  void onClose(Consumer<ProxyFailure> onClose) {
    this.onClose = onClose;
  }

  void start() {
    client.handler(this::fromClient);
    server.handler(this::fromServer);
    // The end of either side's stream ends the tunnel, both sides together (half-close is not
    // kept open: TLS ends with close_notify, so no application data needs it), but only once
    // that side's last bytes are relayed. Vert.x 5.0.7 can deliver a paused socket's end ahead
    // of data its connection still holds (the end goes straight to the socket's queue while up
    // to a few hundred KiB wait in the connection's own), so the end is not taken as "no more
    // data": the tunnel closes after a turn of the event loop in which that side, not held back
    // by back-pressure, delivered nothing more.
    client.endHandler(v -> {
      clientEnded = true;
      endWhenQuiet();
    });
    server.endHandler(v -> {
      serverEnded = true;
      endWhenQuiet();
    });
    client.exceptionHandler(e -> closeBoth());
    server.exceptionHandler(e -> closeBoth());
  }

  private void fromClient(Buffer chunk) {
    lastActivityNanos = System.nanoTime();
    if (heldFromClient == null) {
      if (negotiatedCipher != null && heldFromServer == null && clientFlightNanos < 0) {
        // The client's next flight after the server's hello: its side of the handshake is done.
        clientFlightNanos = lastActivityNanos;
      }
      relay(chunk, client, server, true);
      return;
    }
    // The inspector turns any bytes, and any bug of its own, into a verdict; it never throws.
    inspectClient(chunk);
  }

  private void inspectClient(Buffer chunk) {
    heldFromClient.add(chunk);
    HelloInspection.OfClient verdict = clientHello.offer(chunk.getBytes());
    if (verdict instanceof HelloInspection.Refused r) {
      cut(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, "the client's first bytes in the tunnel to "
          + connectHost + " are not a TLS ClientHello: " + r.reason()));
    } else if (verdict instanceof HelloInspection.ClientHello hello) {
      String mismatch = sniMismatch(hello.sni());
      if (mismatch != null) {
        cut(new ProxyFailure(ErrorKind.REQUEST_DENIED, mismatch));
        return;
      }
      List<Buffer> held = heldFromClient;
      heldFromClient = null;
      clientHelloSentNanos = System.nanoTime();
      for (Buffer b : held) {
        relay(b, client, server, true);
      }
    }
  }

  /** Null if the SNI fits the CONNECT host, else the reason to cut. */
  private String sniMismatch(String sni) {
    if (sni == null) {
      return HostName.isIpLiteral(connectHost) ? null
          : "the ClientHello names no server (no SNI) but CONNECT named " + connectHost;
    }
    String normalized;
    try {
      normalized = HostName.normalize(sni);
    } catch (IllegalArgumentException e) {
      return "the ClientHello's SNI '" + sni + "' is not a valid host name";
    }
    return normalized.equals(connectHost) ? null
        : "the ClientHello names " + normalized + " but CONNECT named " + connectHost;
  }

  private void fromServer(Buffer chunk) {
    lastActivityNanos = System.nanoTime();
    if (firstServerByteNanos < 0) {
      firstServerByteNanos = lastActivityNanos;
    }
    if (heldFromServer == null) {
      relay(chunk, server, client, false);
      return;
    }
    inspectServer(chunk);
  }

  private void inspectServer(Buffer chunk) {
    heldFromServer.add(chunk);
    HelloInspection.OfServer verdict = serverHello.offer(chunk.getBytes());
    if (verdict instanceof HelloInspection.Refused r) {
      cut(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR,
          connectHost + " did not answer with TLS: " + r.reason()));
    } else if (verdict instanceof HelloInspection.Alert alert) {
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
      release();
      endBoth();
    } else if (verdict instanceof HelloInspection.ServerHello hello) {
      negotiatedVersion = hello.versionName();
      negotiatedCipher = hello.cipherName();
      if (hello.version() < minVersion) {
        cut(new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, connectHost + " negotiated "
            + hello.versionName() + ", below tls.minVersion " + TlsVersions.name(minVersion)));
        return;
      }
      release();
    }
  }

  private void release() {
    List<Buffer> held = heldFromServer;
    heldFromServer = null;
    for (Buffer b : held) {
      relay(b, server, client, false);
    }
  }

  /** Writes one chunk on, pausing the source while the destination's queue is full. */
  private void relay(Buffer chunk, NetSocket from, NetSocket to, boolean upstream) {
    if (closed) {
      return;
    }
    if (upstream) {
      bytesUpstream += chunk.length();
    } else {
      bytesDownstream += chunk.length();
    }
    to.write(chunk);
    if (to.writeQueueFull()) {
      from.pause();
      if (upstream) {
        clientHeld = true;
      } else {
        serverHeld = true;
      }
      to.drainHandler(v -> {
        if (upstream) {
          clientHeld = false;
        } else {
          serverHeld = false;
        }
        from.resume();
        endWhenQuiet();
      });
    }
  }

  /**
   * Ends the tunnel once a side that ended has nothing more to deliver: checked a turn later,
   * and again after each turn that still brought bytes from it. A side held back by
   * back-pressure is checked again when the other side drains.
   */
  private void endWhenQuiet() {
    if (closed || !((serverEnded && !serverHeld) || (clientEnded && !clientHeld))) {
      return;
    }
    long seen = endedSideBytes();
    vertx.runOnContext(v -> {
      if (closed || (serverEnded && serverHeld) || (clientEnded && clientHeld)) {
        return; // the drain handler checks again
      }
      if (endedSideBytes() == seen) {
        endBoth();
      } else {
        endWhenQuiet();
      }
    });
  }

  /** Bytes received so far from the side(s) that ended. */
  private long endedSideBytes() {
    return (serverEnded ? bytesDownstream : 0) + (clientEnded ? bytesUpstream : 0);
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
    heldFromClient = null;
    heldFromServer = null;
    client.close();
    server.close();
    onClose.accept(failure);
  }

  /**
   * Ends the tunnel because one side finished its stream: what it sent before is already
   * written to the other side, and each socket closes once those bytes have left.
   */
  private void endBoth() {
    if (closed) {
      return;
    }
    closed = true;
    heldFromClient = null;
    heldFromServer = null;
    FlushThenClose.close(vertx, client, flushGraceMs);
    FlushThenClose.close(vertx, server, flushGraceMs);
    onClose.accept(failure);
  }

  boolean inspected() {
    return heldFromClient == null && heldFromServer == null;
  }

  long startNanos() {
    return startNanos;
  }

  long lastActivityNanos() {
    return lastActivityNanos;
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

  /** The suite the ServerHello chose, or null if none was seen. */
  String negotiatedCipher() {
    return negotiatedCipher;
  }

  /** When the upstream's first byte arrived (System.nanoTime), or -1. */
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
}
