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
    String authority = HostName.authority(host, port);
    return switch (kind) {
      case TUNNEL -> authority;
      case UPGRADE -> "http://" + (port == 80 ? bare() : authority) + path;
      case TLS -> "https://" + (port == 443 ? bare() : authority) + path;
    };
  }

  private String bare() {
    return host.indexOf(':') >= 0 ? "[" + host + "]" : host;
  }
}
