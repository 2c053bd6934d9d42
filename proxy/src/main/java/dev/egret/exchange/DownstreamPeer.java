package dev.egret.exchange;

import io.netty.channel.Channel;
import io.netty.util.AttributeKey;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.security.cert.X509Certificate;

/**
 * What a downstream connection knows of who is on the other end, before any request: the TCP peer,
 * the source address (the PROXY header's source when a trusted load balancer sent one, else the
 * peer), and the client certificate the proxy port's TLS verified. Kept as channel attributes so
 * that a tunnel and the plain HTTP inside it, which take over the same channel, see the same
 * values as the CONNECT that opened them.
 */
public final class DownstreamPeer {
  private static final AttributeKey<InetSocketAddress> SOURCE_ADDRESS =
      AttributeKey.valueOf("egret.sourceAddress");
  private static final AttributeKey<X509Certificate> CLIENT_CERTIFICATE =
      AttributeKey.valueOf("egret.clientCertificate");

  private DownstreamPeer() {}

  /** The TCP peer: the downstream itself, or the load balancer in front of Egret. */
  public static SocketAddress peerAddress(Channel ch) {
    return ch.remoteAddress();
  }

  /**
   * The downstream's source address: the source a trusted PROXY header named, else the TCP peer.
   * What address identity matches and what the access log calls the client.
   */
  public static SocketAddress sourceAddress(Channel ch) {
    InetSocketAddress proxied = ch.attr(SOURCE_ADDRESS).get();
    return proxied != null ? proxied : ch.remoteAddress();
  }

  /** True when a PROXY header named the source: the peer is a load balancer, not the downstream. */
  public static boolean proxied(Channel ch) {
    return ch.attr(SOURCE_ADDRESS).get() != null;
  }

  /** Records the source address a trusted PROXY header named. */
  public static void proxiedFrom(Channel ch, InetSocketAddress source) {
    ch.attr(SOURCE_ADDRESS).set(source);
  }

  /** The verified client certificate (the leaf) of the proxy port's TLS, or null. */
  public static X509Certificate certificate(Channel ch) {
    return ch.attr(CLIENT_CERTIFICATE).get();
  }

  /** Records the leaf of a client certificate chain the proxy port's TLS verified. */
  public static void certified(Channel ch, X509Certificate leaf) {
    ch.attr(CLIENT_CERTIFICATE).set(leaf);
  }
}
