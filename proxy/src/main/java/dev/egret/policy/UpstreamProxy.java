package dev.egret.policy;

import dev.egret.tls.TlsProfile;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.SslHandler;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Objects;

/**
 * One entry of {@code upstreamProxies:}, compiled: where the proxy listens, whether Egret speaks
 * TLS to it (and with which trust), and the {@code Proxy-Authorization} it sends. Immutable;
 * built by the config compiler, chosen per hop by {@link UpstreamRoute}.
 *
 * <p>The credentials never leave this class except on the wire to the proxy: {@link #toString}
 * and {@link #describe} name the proxy and its URL, never the user name or password, so a log
 * line, {@code egret explain} or an error detail cannot carry them.
 */
public final class UpstreamProxy {
  private final String name;
  private final boolean tls;
  private final String host;
  private final int port;
  private final TlsProfile tlsProfile;
  private final String authorization;

  /**
   * @param name the key under {@code upstreamProxies} (the {@code proxy} metric label)
   * @param host the proxy's host name or IP literal (IPv6 without brackets)
   * @param tlsProfile how Egret verifies an {@code https://} proxy, or null for {@code http://}
   * @param username null when the proxy takes no credentials
   */
  public UpstreamProxy(String name, String host, int port, TlsProfile tlsProfile,
      String username, String password) {
    this.name = Objects.requireNonNull(name, "name");
    this.host = Objects.requireNonNull(host, "host");
    this.port = port;
    this.tls = tlsProfile != null;
    this.tlsProfile = tlsProfile;
    this.authorization = username == null ? null : "Basic " + Base64.getEncoder().encodeToString(
        (username + ":" + (password == null ? "" : password)).getBytes(StandardCharsets.UTF_8));
  }

  public String name() {
    return name;
  }

  /** {@code http://host:port} or {@code https://host:port}: what the config says, no credentials. */
  public String url() {
    return (tls ? "https://" : "http://") + (host.indexOf(':') >= 0 ? "[" + host + "]" : host)
        + ":" + port;
  }

  public boolean tls() {
    return tls;
  }

  /** True when Egret sends {@code Proxy-Authorization} to this proxy. */
  public boolean authenticates() {
    return authorization != null;
  }

  /** How messages name it: {@code upstream proxy 'corp' (https://proxy.corp.example:8443)}. */
  public String describe() {
    return "upstream proxy '" + name + "' (" + url() + ")";
  }

  @Override
  public String toString() {
    return describe();
  }

  /**
   * The proxy's address, not resolved: it is the operator's own host, dialled through Vert.x's
   * resolver, and not judged by the address guard (which guards destinations clients name).
   */
  public InetSocketAddress address() {
    return InetSocketAddress.createUnresolved(host, port);
  }

  public String host() {
    return host;
  }

  public int port() {
    return port;
  }

  /** The {@code Proxy-Authorization} value, or null. Secret: only ever written to the proxy. */
  public String authorization() {
    return authorization;
  }

  /**
   * How Egret verifies an {@code https://} proxy, or null for {@code http://}. Built off the event
   * loops like every profile ({@code TlsProfile#prepare}); a dial waits for it.
   */
  public TlsProfile tlsProfile() {
    return tlsProfile;
  }

  /** A TLS engine for one connection to the proxy, verifying the proxy's own certificate. */
  public SslHandler newTlsHandler(ByteBufAllocator alloc) {
    return tlsProfile.newHandler(alloc, host, port);
  }
}
