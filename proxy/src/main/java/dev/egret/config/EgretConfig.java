package dev.egret.config;

import dev.egret.address.AddressPolicy;
import dev.egret.identity.Clients;
import dev.egret.policy.Allowlist;
import dev.egret.tls.TlsBaseline;
import dev.egret.tls.TlsProfile;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A loaded, validated config: the one immutable value the proxy serves from. A reload compiles
 * a new one and swaps the reference; hops in flight keep the one they started with.
 *
 * @param file where it was read from
 * @param sha256 hex SHA-256 of the file's bytes ({@code egret_config_info})
 * @param inputs every file this config was compiled from, as read: the config file first, then
 *     each file it names; what a reload watches
 * @param clients gateway mode's {@code clients:} and {@code identity:}; {@link Clients#NONE}
 *     for a sidecar
 */
public record EgretConfig(
    Path file,
    String sha256,
    Listen listen,
    Allowlist allowlist,
    AddressPolicy addresses,
    TlsBaseline tlsBaseline,
    TlsProfile defaultTls,
    Timeouts timeouts,
    Limits limits,
    Shutdown shutdown,
    Tracing tracing,
    java.util.List<ConfigFiles.Input> inputs,
    Clients clients) {

  /** A config without {@code clients:}: a sidecar. */
  public EgretConfig(Path file, String sha256, Listen listen, Allowlist allowlist,
      AddressPolicy addresses, TlsBaseline tlsBaseline, TlsProfile defaultTls, Timeouts timeouts,
      Limits limits, Shutdown shutdown, Tracing tracing, List<ConfigFiles.Input> inputs) {
    this(file, sha256, listen, allowlist, addresses, tlsBaseline, defaultTls, timeouts, limits,
        shutdown, tracing, inputs, Clients.NONE);
  }

  /** Every TLS profile of the config, the default first, each once. */
  public java.util.List<TlsProfile> tlsProfiles() {
    java.util.Set<TlsProfile> all = new java.util.LinkedHashSet<>();
    all.add(defaultTls);
    java.util.List<dev.egret.policy.Allowlist> lists = new java.util.ArrayList<>();
    lists.add(allowlist);
    clients.all().forEach(c -> lists.add(c.allowlist()));
    for (dev.egret.policy.Allowlist list : lists) {
      proxyProfile(list.routing().defaultRoute(), all);
      list.rules().forEach(r -> {
        if (r.tls() != null) {
          all.add(r.tls());
        }
        proxyProfile(r.route(), all);
      });
    }
    return java.util.List.copyOf(all);
  }

  /** An https:// upstream proxy's own profile, the one Egret verifies the proxy with. */
  private static void proxyProfile(dev.egret.policy.UpstreamRoute route,
      java.util.Set<TlsProfile> into) {
    if (route != null && !route.direct() && route.proxy().tlsProfile() != null) {
      into.add(route.proxy().tlsProfile());
    }
  }

  /** The files the config names (PEM files, keys, {@code ${file:}} values), in reading order. */
  public java.util.List<Path> referencedFiles() {
    return inputs.stream().skip(1).map(ConfigFiles.Input::path).toList();
  }

  /**
   * True when {@code other} was compiled from the same bytes and the same content of every file
   * it names: reloading one for the other would change nothing.
   */
  public boolean sameSources(EgretConfig other) {
    return inputs.stream().map(ConfigFiles.Input::sha256).toList()
        .equals(other.inputs.stream().map(ConfigFiles.Input::sha256).toList());
  }

  /**
   * {@code listen:}: where the proxy and admin listeners bind, and the optional transparent
   * listeners an iptables redirect sends connections to ({@code egret iptables}).
   */
  public record Listen(HostPort proxy, HostPort admin, List<Transparent> transparent,
      ProxyTls proxyTls, ProxyProtocol proxyProtocol) {
    public Listen {
      transparent = List.copyOf(transparent);
    }

    /** A plain-TCP proxy port with no PROXY header. */
    public Listen(HostPort proxy, HostPort admin, List<Transparent> transparent) {
      this(proxy, admin, transparent, null, null);
    }

    /** No transparent listeners. */
    public Listen(HostPort proxy, HostPort admin) {
      this(proxy, admin, List.of());
    }
  }

  /**
   * {@code listen.proxyProtocol}: every proxy-port connection starts with one PROXY protocol
   * header (v1 or v2) from a load balancer in {@code trustedPeers}, naming the client's address.
   * Null in {@link Listen} when the key is absent: the proxy port reads HTTP from its first byte.
   */
  public record ProxyProtocol(List<dev.egret.address.Cidr> trustedPeers) {
    public ProxyProtocol {
      trustedPeers = List.copyOf(trustedPeers);
    }

    /**
     * True when {@code peer} may send a header. An IPv4 peer on a dual-stack socket shows as
     * {@code ::ffff:a.b.c.d}; it is judged by the IPv4 address, as written in the list.
     */
    public boolean trusts(java.net.InetAddress peer) {
      byte[] b = peer.getAddress();
      if (b.length == 16 && java.util.Arrays.equals(b, 0, 12, V4_MAPPED, 0, 12)) {
        b = java.util.Arrays.copyOfRange(b, 12, 16);
      }
      for (dev.egret.address.Cidr c : trustedPeers) {
        if (c.contains(b)) {
          return true;
        }
      }
      return false;
    }

    private static final byte[] V4_MAPPED =
        {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (byte) 0xff, (byte) 0xff};
  }

  /**
   * {@code listen.proxyTls}: the proxy port speaks TLS (an HTTPS proxy), TLS 1.2 or newer, with
   * Egret's certificate; client certificates are verified against {@code clientCa} as {@code
   * clientAuth} asks, and a verified one is the strongest source of a gateway client's identity.
   * Null when the proxy port is plain TCP.
   */
  public record ProxyTls(io.netty.handler.ssl.SslContext context, ClientAuth clientAuth,
      Duration handshakeTimeout) {}

  /** {@code listen.proxyTls.clientAuth}: whether a client certificate is asked for, or needed. */
  public enum ClientAuth { NONE, OPTIONAL, REQUIRED }

  /**
   * One {@code listen.transparent} entry: connections redirected from destination {@code port}
   * arrive at {@code address}, and {@code protocol} says how Egret finds their destination host.
   *
   * @param port the destination port this listener stands for (what the redirect matches)
   */
  public record Transparent(HostPort address, int port, Protocol protocol) {}

  /** How a transparent listener learns the destination host. */
  public enum Protocol {
    /** From the ClientHello's SNI; then handled as a {@code CONNECT sni:port}. */
    TLS,
    /** From the {@code Host} header of origin-form requests; then upgraded like {@code http://}. */
    HTTP
  }

  public record HostPort(String host, int port) {
    @Override
    public String toString() {
      return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }
  }

  /** {@code timeouts:}. */
  public record Timeouts(Duration connect, Duration handshake, Duration response, Duration idle,
      Duration requestHead) {}

  /** {@code shutdown:}: how long listeners keep accepting, and how long hops may finish. */
  public record Shutdown(Duration grace, Duration deadline) {}

  /**
   * {@code limits:}. {@code maxConnections} caps the proxy and transparent listeners together;
   * {@code maxAdminConnections} caps the admin listener apart from them, so scrapes and probes
   * can never take the proxy's descriptors, nor the proxy's clients the probes' slots.
   */
  public record Limits(int maxConnections, int maxConnectionsPerDestination, int maxHeaderBytes,
      int maxAdminConnections) {}

  /**
   * {@code tracing:}: spans per hop, exported over OTLP/HTTP. {@link #OFF} unless the file says
   * {@code exporter: otlp}.
   *
   * @param endpoint the collector's OTLP/HTTP traces URL
   * @param sampleRatio the share of hops with no sampled parent that are traced, 0 to 1
   * @param xray also read and write {@code X-Amzn-Trace-Id}
   */
  public record Tracing(Exporter exporter, java.net.URI endpoint, double sampleRatio,
      Propagation propagate, boolean xray) {
    public static final java.net.URI DEFAULT_ENDPOINT =
        java.net.URI.create("http://127.0.0.1:4318/v1/traces");
    public static final Tracing OFF =
        new Tracing(Exporter.NONE, DEFAULT_ENDPOINT, 0.0, Propagation.PASSTHROUGH, false);

    public boolean on() {
      return exporter != Exporter.NONE;
    }
  }

  /** Where spans go: nowhere (no SDK is even loaded), or an OTLP/HTTP collector. */
  public enum Exporter { NONE, OTLP }

  /** What the third party sees of the trace (see docs/tracing.md). */
  public enum Propagation {
    /** The client's trace headers, unchanged. */
    PASSTHROUGH,
    /** The client's trace, with Egret's upstream span as the parent. */
    PROPAGATE,
    /** A new trace id, linked from Egret's span: no internal trace id leaves. */
    RESTART
  }
}
