package dev.egret.config;

import dev.egret.policy.UpstreamProxy;
import dev.egret.policy.UpstreamRoute;
import dev.egret.policy.HostPattern;
import dev.egret.policy.Routing;
import dev.egret.tls.TlsProfile;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.regex.Pattern;

/**
 * Compiles {@code upstreamProxies:}, {@code routing:} and a rule's {@code upstreamProxy} into
 * {@link UpstreamProxy} values, the {@link Routing} and each rule's {@link UpstreamRoute}. Kept
 * apart from {@link ConfigCompiler} because the credentials are secrets: every message names
 * the key and the position in the file, never a user name or password.
 */
final class UpstreamProxies {
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,62}");
  private static final Set<String> PROXY_KEYS = keys("url", "trust", "auth");

  private final ConfigErrors errors;
  private final InjectedHeaders secrets;
  /** Builds the TLS profile of an https:// proxy from its entry's {@code trust} key. */
  private final BiFunction<Fields, String, TlsProfile> tls;
  private final Map<String, UpstreamProxy> proxies = new LinkedHashMap<>();
  /** Names that were written but did not compile: a reference to one is not a second error. */
  private final Set<String> broken = new LinkedHashSet<>();

  UpstreamProxies(ConfigErrors errors, InjectedHeaders secrets,
      BiFunction<Fields, String, TlsProfile> tls) {
    this.errors = errors;
    this.secrets = secrets;
    this.tls = tls;
  }

  private static Set<String> keys(String... k) {
    return new LinkedHashSet<>(List.of(k));
  }

  /** Reads {@code upstreamProxies:} (absent: none). */
  void compile(YamlNode node) {
    if (node == null) {
      return;
    }
    if (!(node instanceof YamlNode.Mapping m)) {
      errors.add(node, "upstreamProxies must be a mapping of names to proxies, such as "
          + "{corp: {url: http://proxy.corp.example:3128}}, not " + node.describe());
      return;
    }
    for (YamlNode.Entry e : m.entries().values()) {
      String where = "upstreamProxies." + e.key();
      if (!NAME.matcher(e.key()).matches()) {
        errors.add(e.line(), e.column(), where + ": a proxy name is letters, digits, '.', '_' "
            + "and '-' (up to 63), starting with a letter or digit");
        broken.add(e.key());
        continue;
      }
      if (e.key().equalsIgnoreCase("none")) {
        errors.add(e.line(), e.column(), where + ": 'none' means a direct connection in "
            + "routing.upstreamProxy and a rule's upstreamProxy, so no proxy may be named so");
        broken.add(e.key());
        continue;
      }
      UpstreamProxy p = proxy(e.value(), where, e.key());
      if (p == null) {
        broken.add(e.key());
      } else {
        proxies.put(e.key(), p);
      }
    }
  }

  private UpstreamProxy proxy(YamlNode node, String where, String name) {
    int before = errors.sorted().size();
    Fields f = Fields.of(node, where, PROXY_KEYS, errors);
    if (f == null) {
      return null;
    }
    String text = f.requiredString("url");
    URI url = text == null ? null : url(text, f.get("url"), where);
    boolean https = url != null && url.getScheme().equalsIgnoreCase("https");
    TlsProfile profile = null;
    if (f.get("trust") != null && url != null && !https) {
      errors.add(f.get("trust"), where + ".trust applies to an https:// proxy only; Egret "
          + "speaks plain TCP to " + text + " (its own TLS to the destination goes inside the "
          + "tunnel either way), so leave trust out or write https://");
    } else if (https) {
      profile = tls.apply(f, where);
    }
    String[] auth = auth(f, where);
    if (url == null || errors.sorted().size() > before) {
      return null;
    }
    String host = url.getHost();
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    return new UpstreamProxy(name, host.toLowerCase(Locale.ROOT), url.getPort(), profile,
        auth == null ? null : auth[0], auth == null ? null : auth[1]);
  }

  /** Parses the URL; reports and returns null on any problem. */
  private URI url(String text, YamlNode at, String where) {
    URI u;
    try {
      u = new URI(text);
    } catch (URISyntaxException e) {
      errors.add(at, where + ".url: '" + redacted(text) + "' is not a URL (" + e.getReason()
          + "); write http://HOST:PORT or https://HOST:PORT");
      return null;
    }
    String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
    if (!scheme.equals("http") && !scheme.equals("https")) {
      errors.add(at, where + ".url: the scheme must be http:// or https://, not '"
          + (scheme.isEmpty() ? "(none)" : scheme) + "' (Egret chains with HTTP CONNECT only)");
      return null;
    }
    if (u.getRawUserInfo() != null) {
      // Not repeated in the message: the user info may be a password.
      errors.add(at, where + ".url has a user name or password in it; put them in "
          + where + ".auth: {username: ..., password: \"${file:PATH}\"} instead, which is never "
          + "logged");
      return null;
    }
    if (u.getHost() == null) {
      errors.add(at, where + ".url: '" + text + "' names no host; write " + scheme
          + "://HOST:PORT");
      return null;
    }
    if (u.getPort() < 1 || u.getPort() > 65535) {
      errors.add(at, where + ".url: '" + text + "' names no port; write it, such as " + scheme
          + "://" + u.getHost() + (scheme.equals("http") ? ":3128" : ":8443")
          + " (proxies listen on many ports, so Egret does not guess)");
      return null;
    }
    String path = u.getRawPath();
    if ((path != null && !path.isEmpty() && !path.equals("/")) || u.getRawQuery() != null
        || u.getRawFragment() != null) {
      errors.add(at, where + ".url: '" + text + "' has a path, query or fragment; a proxy is "
          + "only " + scheme + "://HOST:PORT");
      return null;
    }
    return u;
  }

  /** A URL as a message may repeat it: anything before an '@' dropped. */
  private static String redacted(String text) {
    int at = text.lastIndexOf('@');
    return at < 0 ? text : "...@" + text.substring(at + 1);
  }

  /** {@code auth: {username, password}}, resolved; null when absent or wrong (reported). */
  private String[] auth(Fields proxy, String where) {
    YamlNode node = proxy.get("auth");
    if (node == null) {
      return null;
    }
    String at = where + ".auth";
    Fields f = Fields.of(node, at, keys("username", "password"), errors);
    if (f == null) {
      return null;
    }
    String user = credential(f, "username", at);
    String password = credential(f, "password", at);
    if (user != null && user.indexOf(':') >= 0) {
      errors.add(f.get("username"), at + ".username has a ':', which Basic authentication "
          + "cannot carry in a user name (RFC 7617)");
      return null;
    }
    return user == null || password == null ? null : new String[] {user, password};
  }

  /** One credential: text with optional ${env:}/${file:} references; never echoed. */
  private String credential(Fields f, String key, String at) {
    String what = at + "." + key;
    YamlNode n = f.get(key);
    if (n == null) {
      errors.add(f.node(), at + " needs '" + key + "'");
      return null;
    }
    if (!(n instanceof YamlNode.Scalar s) || s.type() != YamlNode.ScalarType.STRING) {
      // Fields.string would quote a scalar's text, which here is a secret.
      errors.add(n, what + " must be text (quote it, or better write \"${file:PATH}\" or "
          + "\"${env:NAME}\")");
      return null;
    }
    InjectedHeaders.Resolved r = secrets.resolve(s.text(), n, what);
    if (r == null) {
      return null;
    }
    String v = r.value();
    String from = r.referenced() ? " from " + r.source() : "";
    if (v.isEmpty()) {
      errors.add(n, what + ": the value" + from + " is empty");
      return null;
    }
    for (int c = 0; c < v.length(); c++) {
      char ch = v.charAt(c);
      if (ch < 0x20 || ch == 0x7f) {
        errors.add(n, what + ": the value" + from + " has "
            + (ch == '\n' || ch == '\r' ? "a line break" : "a control character")
            + " at character " + (c + 1) + " of " + v.length()
            + " (only one trailing newline of a file is dropped)");
        return null;
      }
    }
    return v;
  }

  /** Reads {@code routing:} (absent: direct for everything). */
  Routing routing(YamlNode node) {
    if (node == null) {
      return Routing.DIRECT;
    }
    Fields f = Fields.of(node, "routing", keys("upstreamProxy", "direct"), errors);
    if (f == null) {
      return Routing.DIRECT;
    }
    UpstreamRoute route = route(f, "upstreamProxy", "routing.upstreamProxy");
    List<HostPattern> direct = f.stringList("direct", HostPattern::compile);
    return new Routing(route == null ? UpstreamRoute.DIRECT : route,
        direct == null ? List.of() : direct);
  }

  /** A rule's {@code upstreamProxy}, or null when the rule has none. */
  UpstreamRoute ruleRoute(Fields rule, String where) {
    return route(rule, "upstreamProxy", where + ".upstreamProxy");
  }

  private UpstreamRoute route(Fields f, String key, String what) {
    YamlNode n = f.get(key);
    if (n == null) {
      return null;
    }
    String name = f.string(n, what);
    if (name == null) {
      return null;
    }
    if (name.equalsIgnoreCase("none")) {
      return UpstreamRoute.DIRECT;
    }
    UpstreamProxy p = proxies.get(name);
    if (p != null) {
      return UpstreamRoute.through(p);
    }
    if (!broken.contains(name)) {
      List<String> names = new ArrayList<>(proxies.keySet());
      errors.add(n, what + " is '" + name + "', which upstreamProxies does not define; use "
          + (names.isEmpty() ? "none, or add it under upstreamProxies"
              : "one of: " + String.join(", ", names) + ", none"));
    }
    return null;
  }
}
