package dev.egret.listener;

import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import dev.egret.policy.HostName;
import dev.egret.policy.Kind;
import dev.egret.policy.Target;

/**
 * The request-target of a proxied request, split into the parts the later stages need. The
 * strict guard has already refused every malformed form before Vert.x saw the request; this only
 * splits and normalises.
 *
 * @param target what the allowlist judges
 * @param pathAndQuery what goes on the upstream request line ("/" when the target had no path)
 * @param logUrl the URL for the access log, without the query string
 */
public record RequestTarget(Target target, String pathAndQuery, String logUrl) {

  /** Splits an absolute-form {@code http(s)://} target or a CONNECT {@code host:port}. */
  public static RequestTarget parse(String method, String uri) {
    // The strict guard's rules, again: for requests they already passed (cheap string checks),
    // and for `egret explain`, which must refuse what the proxy port refuses.
    RequestTargets.parse(method, uri);
    if (method.equals("CONNECT")) {
      HostAndPort hp = authority(uri, -1);
      Target t = Target.tunnel(hp.host, hp.port);
      return new RequestTarget(t, null, t.describe());
    }
    int sep = uri.indexOf("://");
    if (sep < 0) {
      throw bad("origin-form request on the proxy port; set HTTP_PROXY so the client sends "
          + "absolute-form (http://host/path)");
    }
    String scheme = uri.substring(0, sep).toLowerCase(java.util.Locale.ROOT);
    Kind kind = switch (scheme) {
      case "http" -> Kind.UPGRADE;
      case "https" -> Kind.TLS;
      default -> throw bad("scheme '" + scheme + "' is not proxied; use http:// or https://");
    };
    String rest = uri.substring(sep + 3);
    int end = rest.length();
    for (int i = 0; i < rest.length(); i++) {
      char c = rest.charAt(i);
      if (c == '/' || c == '?') {
        end = i;
        break;
      }
    }
    HostAndPort hp = authority(rest.substring(0, end), kind == Kind.UPGRADE ? 80 : 443);
    String pathAndQuery = rest.substring(end);
    if (pathAndQuery.isEmpty()) {
      pathAndQuery = "/";
    } else if (pathAndQuery.charAt(0) == '?') {
      pathAndQuery = "/" + pathAndQuery;
    }
    int q = pathAndQuery.indexOf('?');
    String path = q < 0 ? pathAndQuery : pathAndQuery.substring(0, q);
    Target t = new Target(kind, hp.host, hp.port, method, path);
    return new RequestTarget(t, pathAndQuery, t.describe());
  }

  private record HostAndPort(String host, int port) {}

  private static HostAndPort authority(String authority, int defaultPort) {
    String host;
    String port = null;
    if (authority.startsWith("[")) {
      int close = authority.indexOf(']');
      if (close < 0) {
        throw bad("unclosed '[' in the host of '" + authority + "'");
      }
      host = authority.substring(0, close + 1);
      String after = authority.substring(close + 1);
      if (after.startsWith(":")) {
        port = after.substring(1);
      } else if (!after.isEmpty()) {
        throw bad("unexpected '" + after + "' after the IPv6 address in '" + authority + "'");
      }
    } else {
      int colon = authority.lastIndexOf(':');
      host = colon < 0 ? authority : authority.substring(0, colon);
      port = colon < 0 ? null : authority.substring(colon + 1);
    }
    int p;
    if (port == null) {
      if (defaultPort < 0) {
        throw bad("CONNECT target '" + authority + "' needs a port, as in host:443");
      }
      p = defaultPort;
    } else {
      if (!port.matches("[0-9]{1,5}") || Integer.parseInt(port) < 1 || Integer.parseInt(port) > 65535) {
        throw bad("port '" + port + "' in '" + authority + "' must be 1 to 65535");
      }
      p = Integer.parseInt(port);
    }
    try {
      return new HostAndPort(HostName.normalize(host), p);
    } catch (IllegalArgumentException e) {
      throw bad("host '" + host + "' is not a valid host name: " + e.getMessage());
    }
  }

  private static ProxyFailure bad(String details) {
    return new ProxyFailure(ErrorKind.REQUEST_ERROR, details);
  }
}
