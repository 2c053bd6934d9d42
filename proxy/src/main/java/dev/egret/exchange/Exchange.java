package dev.egret.exchange;

import dev.egret.failure.ProxyFailure;
import dev.egret.identity.Clients;
import dev.egret.identity.Credentials;
import dev.egret.identity.Identified;
import dev.egret.policy.Decision;
import dev.egret.policy.Kind;
import dev.egret.telemetry.Hop;
import dev.egret.tls.TlsProfile;
import dev.egret.trace.HopTrace;
import java.net.InetSocketAddress;
import java.util.Objects;

/**
 * One hop, from the request head to the last byte: what vertx-http-proxy calls the proxy
 * context. The listener creates it with the config snapshot the hop keeps to its end; each
 * stage adds what it settled and hands the exchange on (stages return futures of it):
 *
 * <pre>{@code
 * Exchange ex = Exchange.start(serving, client, Origin.PROXY);
 * ex.request(head, target);          // the strict decoder's head, split once
 * ex.from(credentials);              // gateway mode: what the request presents as identity
 * ex.identified(identified);         // gateway mode: the client, or the refusal
 * ex.decided(decision);              // the allowlist's value, with the TLS profile it implies
 * ex.routed(upstreamAddress);        // the address the guard checked: the only one dialled
 * ... upgrade or tunnel record timings and byte counts ...
 * ex.finish(failureOrNull) -> Hop    // the one snapshot telemetry sees
 * }</pre>
 *
 * <p>Each setter may be called once, in that order; the values it takes are immutable. Confined
 * to the event loop of the downstream connection that created it, so it needs no locking.
 */
public final class Exchange {
  /** How the request reached Egret; the access log tells them apart. */
  public enum Origin {
    /** The proxy port: absolute-form requests and CONNECT. */
    PROXY,
    /** Plain HTTP sent inside a CONNECT tunnel, upgraded like an absolute-form http:// request. */
    TUNNELLED,
    /** A transparent listener fed by an iptables redirect. */
    TRANSPARENT
  }

  private final Serving serving;
  private final String client;
  /** The load balancer when a PROXY header named the client, else null. */
  private final String peer;
  private final Origin origin;
  private final long startNanos = System.nanoTime();
  private final long startEpochMillis = System.currentTimeMillis();
  private RequestHead head;
  private RequestTarget target;
  /** Gateway mode: what the request presented, and who the identity stage found. */
  private Credentials credentials;
  private Identified identified;
  private Decision decision;
  private TlsProfile tls;
  private InetSocketAddress upstream;
  /** {@code upstream} as the access log writes it ({@code address:port}). */
  private String upstreamText;
  /** The slot taken under limits.maxConnectionsPerDestination, given back by {@link #finish}. */
  private Runnable releaseSlot;
  private final Timings timings = new Timings();
  private int status;
  private String tlsVersion;
  private String tlsCipher;
  private long bytesUpstream;
  private long bytesDownstream;
  private Hop finished;
  /** The hop's spans; null unless tracing is on. */
  private HopTrace trace;

  private Exchange(Serving serving, String client, String peer, Origin origin) {
    this.serving = Objects.requireNonNull(serving, "serving");
    this.client = client;
    this.peer = peer;
    this.origin = origin;
  }

  /** A socket address as the access log shows it: {@code host:port}, no leading slash. */
  public static String address(java.net.SocketAddress a) {
    if (a instanceof InetSocketAddress i && i.getAddress() != null) {
      return i.getAddress().getHostAddress() + ":" + i.getPort();
    }
    return a == null ? null : a.toString();
  }

  public static Exchange start(Serving serving, String client, Origin origin) {
    return new Exchange(serving, client, null, origin);
  }

  /**
   * A hop whose client a PROXY header named: {@code client} is the header's source, {@code peer}
   * the load balancer that sent it (null when no header named the client).
   */
  public static Exchange start(Serving serving, String client, String peer, Origin origin) {
    return new Exchange(serving, client, peer, origin);
  }

  public Exchange request(RequestHead head, RequestTarget target) {
    this.head = head;
    this.target = target;
    if (serving.tracing().on()) {
      this.trace = serving.tracing().hop(head.method(), name -> head.header(name).orElse(null));
    }
    return this;
  }

  /** The hop's trace, or null when tracing is off. */
  public HopTrace trace() {
    return trace;
  }

  /** What the request presents as its identity (gateway mode; the listener gathers it). */
  public Exchange from(Credentials credentials) {
    this.credentials = credentials;
    return this;
  }

  /** The identity stage's answer (gateway mode). */
  public Exchange identified(Identified identified) {
    this.identified = identified;
    return this;
  }

  /** What the request presented, or null (a sidecar, or nothing gathered). */
  public Credentials credentials() {
    return credentials;
  }

  /** The identity stage's answer, or null before it ran (and always in a sidecar). */
  public Identified identified() {
    return identified;
  }

  /** The allowlist's decision; the TLS profile follows from its rule, chosen here only. */
  public Exchange decided(Decision decision) {
    this.decision = decision;
    this.tls = decision.rule() != null ? decision.rule().tls() : serving.config().defaultTls();
    return this;
  }

  public Exchange routed(InetSocketAddress upstream, Runnable releaseSlot) {
    return routed(upstream, upstreamText(upstream), releaseSlot);
  }

  /**
   * As {@link #routed(InetSocketAddress, Runnable)}, with {@code upstreamText} already what
   * {@link #upstreamText} makes of {@code upstream} (the route keeps the last one made).
   */
  public Exchange routed(InetSocketAddress upstream, String upstreamText, Runnable releaseSlot) {
    this.upstream = upstream;
    this.upstreamText = upstreamText;
    this.releaseSlot = releaseSlot;
    return this;
  }

  /** The upstream address as the access log writes it: {@code address:port}. */
  public static String upstreamText(InetSocketAddress upstream) {
    return upstream.getAddress().getHostAddress() + ":" + upstream.getPort();
  }

  public Serving serving() {
    return serving;
  }

  public String client() {
    return client;
  }

  public Origin origin() {
    return origin;
  }

  /** The parsed head; null for a connection refused before a head was read. */
  public RequestHead head() {
    return head;
  }

  public RequestTarget target() {
    return target;
  }

  public Decision decision() {
    return decision;
  }

  public TlsProfile tls() {
    return tls;
  }

  /** The checked upstream address and port. */
  public InetSocketAddress upstream() {
    return upstream;
  }

  /** The upstream host name (for SNI, the certificate check and Host), after normalisation. */
  public String host() {
    return target == null ? null : target.target().host();
  }

  public Kind kind() {
    return target == null ? null : target.target().kind();
  }

  public long startNanos() {
    return startNanos;
  }

  public long startEpochMillis() {
    return startEpochMillis;
  }

  public Timings timings() {
    return timings;
  }

  public void status(int status) {
    this.status = status;
  }

  public int status() {
    return status;
  }

  public void tlsSession(String version, String cipher) {
    this.tlsVersion = version;
    this.tlsCipher = cipher;
  }

  public void bytes(long upstreamBytes, long downstreamBytes) {
    this.bytesUpstream = upstreamBytes;
    this.bytesDownstream = downstreamBytes;
  }

  public boolean finished() {
    return finished != null;
  }

  /**
   * Ends the hop: gives back its destination slot and returns the snapshot for telemetry, or
   * null if it had already finished (each hop is reported once).
   */
  public Hop finish(ProxyFailure failure) {
    if (finished != null) {
      return null;
    }
    if (releaseSlot != null) {
      releaseSlot.run();
      releaseSlot = null;
    }
    Hop hop = new Hop(startNanos, startEpochMillis);
    hop.client = client;
    hop.peer = peer;
    if (serving.config().clients().gateway()) {
      hop.identity = identified != null && identified.client() != null
          ? identified.client().name() : Clients.UNIDENTIFIED;
    }
    hop.method = head == null ? null : head.method();
    hop.url = target == null ? "-" : target.logUrl();
    hop.kind = kind();
    hop.decision = decision;
    hop.origin = origin == Origin.PROXY ? null : origin.name().toLowerCase(java.util.Locale.ROOT);
    if (failure != null) {
      hop.error = failure.kind();
      hop.errorDetails = failure.details();
      if (status == 0) {
        status = failure.status();
      }
    }
    hop.status = status;
    hop.upstreamAddress = upstream == null ? null : upstreamText;
    hop.upstreamProxy = upstream == null || decision.route().direct() ? null
        : decision.route().name();
    hop.tlsVersion = tlsVersion;
    hop.tlsCipher = tlsCipher;
    hop.dnsNanos = timings.dnsNanos;
    hop.connectNanos = timings.connectNanos;
    hop.handshakeNanos = timings.handshakeNanos;
    hop.firstByteNanos = timings.firstByteNanos;
    hop.bytesUpstream = bytesUpstream;
    hop.bytesDownstream = bytesDownstream;
    hop.finish();
    finished = hop;
    if (trace != null) {
      trace.end(hop, target == null ? null : target.target(), upstream);
    }
    return hop;
  }

  /** Durations of the hop's phases in nanoseconds, -1 for a phase that did not happen. */
  public static final class Timings {
    private long dnsNanos = -1;
    private long connectNanos = -1;
    private long handshakeNanos = -1;
    private long firstByteNanos = -1;

    public void dns(long nanos) {
      dnsNanos = nanos;
    }

    public void connect(long nanos) {
      connectNanos = nanos;
    }

    public void handshake(long nanos) {
      handshakeNanos = nanos;
    }

    /** Marks the first response byte from upstream, measured from the hop's start. */
    public void firstByte(long sinceStartNanos) {
      if (firstByteNanos < 0) {
        firstByteNanos = sinceStartNanos;
      }
    }
  }
}
