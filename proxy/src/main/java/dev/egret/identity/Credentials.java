package dev.egret.identity;

import io.netty.channel.Channel;
import io.netty.util.AttributeKey;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.security.cert.X509Certificate;
import java.util.List;

/**
 * What one request presents to the identity stage, gathered by the listener:
 *
 * <pre>{@code
 * Credentials.request(DownstreamPeer.certificate(ch), DownstreamPeer.sourceAddress(ch), proxyAuth)
 * Credentials.tunnelled(Credentials.remembered(ch), DownstreamPeer.sourceAddress(ch))
 * Credentials.addressOnly(DownstreamPeer.sourceAddress(ch))        // transparent listeners
 * }</pre>
 *
 * @param certificate the verified client-certificate leaf of the proxy port's TLS, or null
 * @param address the client address (after a trusted PROXY header), or null
 * @param authorization every {@code Proxy-Authorization} value the request carried, in order
 * @param tunnel the identity of the CONNECT whose tunnel this request travels in, or null
 * @param transparent a transparent listener's connection, which cannot answer a 407
 */
public record Credentials(X509Certificate certificate, InetAddress address,
    List<String> authorization, Remembered tunnel, boolean transparent) {
  private static final AttributeKey<Remembered> TUNNEL_IDENTITY =
      AttributeKey.valueOf("egret.tunnelIdentity");

  public Credentials {
    authorization = List.copyOf(authorization);
  }

  /**
   * The identity a CONNECT resolved, kept on its channel for the plain HTTP that may follow
   * inside the tunnel.
   *
   * @param client the client's name
   * @param source the source that named it (certificate, token, address, or onMissing)
   */
  public record Remembered(String client, String source) {}

  /** A request on the proxy port. */
  public static Credentials request(X509Certificate certificate, SocketAddress address,
      List<String> authorization) {
    return new Credentials(certificate, inet(address), authorization, null, false);
  }

  /** A request inside a CONNECT tunnel: it is the CONNECT's client, whatever it carries. */
  public static Credentials tunnelled(Remembered tunnel, SocketAddress address) {
    return new Credentials(null, inet(address), List.of(), tunnel, false);
  }

  /** A transparent listener's connection: only the address is known. */
  public static Credentials addressOnly(SocketAddress address) {
    return new Credentials(null, inet(address), List.of(), null, true);
  }

  /** Keeps the CONNECT's identity on its channel; the tunnel and what it carries see it. */
  public static void remember(Channel ch, Identified identified) {
    if (identified != null && identified.client() != null) {
      ch.attr(TUNNEL_IDENTITY).set(new Remembered(identified.client().name(),
          identified.source()));
    }
  }

  /** The identity {@link #remember} kept on this channel, or null. */
  public static Remembered remembered(Channel ch) {
    return ch.attr(TUNNEL_IDENTITY).get();
  }

  private static InetAddress inet(SocketAddress a) {
    return a instanceof InetSocketAddress i ? i.getAddress() : null;
  }
}
