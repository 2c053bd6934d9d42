package dev.egret.exchange;

import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import dev.egret.address.HostName;
import dev.egret.policy.Kind;
import dev.egret.policy.Target;

/**
 * The request-target of a proxied request, split into the parts the later stages need.
 *
 * @param target what the allowlist judges
 * @param pathAndQuery what goes on the upstream request line ("/" when the target had no path)
 * @param logUrl the URL for the access log, without the query string
 */
public record RequestTarget(Target target, String pathAndQuery, String logUrl) {

  /**
   * The target of a head the strict decoder already read: its authority is taken as parsed (for
   * origin-form, the CONNECT's or the Host header's), never parsed again.
   */
  public static RequestTarget of(RequestHead head) {
    return of(head.method(), head.target(), head.authority());
  }

  /**
   * The target of {@code uri}, whose authority the strict parser already read ({@code
   * listener.RequestTargets}); this adds host normalisation and the split of path and query.
   */
  public static RequestTarget of(String method, String uri, RequestHead.Authority authority) {
    String host;
    try {
      host = HostName.normalize(authority.host());
    } catch (IllegalArgumentException e) {
      throw new ProxyFailure(ErrorKind.REQUEST_ERROR,
          "host '" + authority.host() + "' is not a valid host name: " + e.getMessage());
    }
    if (authority.scheme() == null) {
      Target t = Target.tunnel(host, authority.port());
      return new RequestTarget(t, null, t.describe());
    }
    Kind kind = authority.scheme().equals("http") ? Kind.UPGRADE : Kind.TLS;
    int end = 0;
    if (!uri.startsWith("/")) {
      end = authority.scheme().length() + 3;
      while (end < uri.length() && uri.charAt(end) != '/' && uri.charAt(end) != '?') {
        end++;
      }
    }
    String pathAndQuery = uri.substring(end);
    if (pathAndQuery.isEmpty()) {
      pathAndQuery = "/";
    } else if (pathAndQuery.charAt(0) == '?') {
      pathAndQuery = "/" + pathAndQuery;
    }
    int q = pathAndQuery.indexOf('?');
    String path = q < 0 ? pathAndQuery : pathAndQuery.substring(0, q);
    Target t = new Target(kind, host, authority.port(), method, path);
    return new RequestTarget(t, pathAndQuery, t.describe());
  }
}
