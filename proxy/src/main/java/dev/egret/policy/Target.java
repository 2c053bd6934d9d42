package dev.egret.policy;

import dev.egret.address.HostName;
/**
 * What a client asked for, after strict parsing and host normalisation: the input of {@link
 * Allowlist#decide}. {@code method} and {@code path} are null for a tunnel, whose contents hide
 * them. {@code port} is the port the client named (80 for a bare {@code http://host}).
 */
public record Target(Kind kind, String host, int port, String method, String path) {

  public static Target tunnel(String host, int port) {
    return new Target(Kind.TUNNEL, host, port, null, null);
  }

  /** How the target reads in logs and messages: a URL, or host:port for a tunnel. */
  public String describe() {
    if (kind == Kind.TUNNEL) {
      return HostName.authority(host, port);
    }
    // One builder rather than nested concatenations: this is every request's log URL.
    boolean tls = kind == Kind.TLS;
    boolean ipv6 = host.indexOf(':') >= 0;
    StringBuilder b = new StringBuilder(host.length() + (path == null ? 4 : path.length()) + 16);
    b.append(tls ? "https://" : "http://");
    if (ipv6) {
      b.append('[').append(host).append(']');
    } else {
      b.append(host);
    }
    if (port != (tls ? 443 : 80)) {
      b.append(':').append(port);
    }
    return b.append(path).toString();
  }

}
