package dev.egret.listener;

import dev.egret.address.HostName;
import dev.egret.exchange.RequestHead;
import dev.egret.exchange.RequestTarget;
import java.util.Locale;

/**
 * The request-target rules of the proxy port: absolute-form {@code http(s)://authority[path]}
 * for every method but {@code CONNECT}, which takes exactly {@code host:port}. Everything that
 * two parsers could read differently (userinfo, backslashes, percent-encoded or numeric-trick
 * hosts, dot segments, encoded slashes) is refused rather than repaired, so the allowlist
 * judges the same host and path the upstream will see.
 */
public final class RequestTargets {
  private static final String ORIGIN_FORM =
      "origin-form request on the proxy port; set HTTP_PROXY so the client sends absolute-form";

  private RequestTargets() {}

  /**
   * Splits an absolute-form {@code http(s)://} target or a CONNECT {@code host:port} under the
   * rules above, so the proxy port and {@code egret explain} refuse exactly the same targets.
   *
   * @throws dev.egret.failure.ProxyFailure (REQUEST_ERROR) for a target the proxy port refuses
   */
  public static RequestTarget target(String method, String uri) {
    return RequestTarget.of(method, uri, parse(method, uri));
  }

  /** Host and port as written; port -1 when absent. */
  record HostPort(String host, int port) {}

  static RequestHead.Authority parse(String method, String target) {
    if (method.equals("CONNECT")) {
      return connect(target);
    }
    if (target.equals("*")) {
      throw Refusals.badRequest("asterisk-form request (*) on the proxy port");
    }
    if (target.startsWith("/")) {
      throw Refusals.badRequest(ORIGIN_FORM);
    }
    String scheme;
    if (target.regionMatches(true, 0, "http://", 0, 7)) {
      scheme = "http";
    } else if (target.regionMatches(true, 0, "https://", 0, 8)) {
      scheme = "https";
    } else if (target.contains("://")) {
      throw Refusals.badRequest("request target has a scheme other than http:// or https://");
    } else {
      throw Refusals.badRequest(
          "request target is neither absolute-form http(s):// nor, for CONNECT, host:port");
    }
    if (target.indexOf('#') >= 0) {
      throw Refusals.badRequest("request target has a fragment (#)");
    }
    int authorityStart = scheme.length() + 3;
    int authorityEnd = authorityStart;
    while (authorityEnd < target.length()
        && target.charAt(authorityEnd) != '/' && target.charAt(authorityEnd) != '?') {
      authorityEnd++;
    }
    String authority = target.substring(authorityStart, authorityEnd);
    if (authority.isEmpty()) {
      throw Refusals.badRequest("absolute-form request target without a host");
    }
    HostPort hp = hostPort(authority, false);
    checkPathAndQuery(target.substring(authorityEnd));
    int port = hp.port() >= 0 ? hp.port() : defaultPort(scheme);
    return new RequestHead.Authority(scheme, hp.host(), port);
  }

  private static RequestHead.Authority connect(String target) {
    if (target.indexOf('/') >= 0 || target.indexOf('?') >= 0 || target.indexOf('#') >= 0) {
      throw Refusals.badRequest("CONNECT target must be exactly host:port, without a scheme or path");
    }
    HostPort hp = hostPort(target, true);
    return new RequestHead.Authority(null, hp.host(), hp.port());
  }

  /**
   * An origin-form target ({@code /path?query}) for a request whose authority comes from
   * elsewhere: the CONNECT it arrived in, or the Host header on a transparent listener. The same
   * path rules apply as to an absolute-form target.
   */
  static void originForm(String method, String target) {
    if (method.equals("CONNECT")) {
      throw Refusals.badRequest("CONNECT inside a tunnel or on a transparent listener");
    }
    if (!target.startsWith("/")) {
      throw Refusals.badRequest("request target must be origin-form (/path) here, not " + (
          target.contains("://") ? "absolute-form" : "'" + target + "'"));
    }
    if (target.indexOf('#') >= 0) {
      throw Refusals.badRequest("request target has a fragment (#)");
    }
    checkPathAndQuery(target);
  }

  static int defaultPort(String scheme) {
    return scheme.equals("https") ? 443 : 80;
  }

  /**
   * Parses {@code host[:port]} under the strict host rules. With {@code portRequired}, a
   * missing port is refused (the CONNECT case).
   */
  static HostPort hostPort(String authority, boolean portRequired) {
    if (authority.isEmpty()) {
      throw Refusals.badRequest("empty host");
    }
    if (authority.indexOf('@') >= 0) {
      throw Refusals.badRequest("userinfo (user@host) in the request target");
    }
    String host;
    String rest;
    if (authority.charAt(0) == '[') {
      int close = authority.indexOf(']');
      if (close < 0) {
        throw Refusals.badRequest("IPv6 literal without a closing bracket");
      }
      host = authority.substring(0, close + 1);
      checkIpv6(authority.substring(1, close));
      rest = authority.substring(close + 1);
      if (!rest.isEmpty() && rest.charAt(0) != ':') {
        throw Refusals.badRequest("unexpected characters after an IPv6 literal");
      }
    } else {
      int colon = authority.indexOf(':');
      host = colon < 0 ? authority : authority.substring(0, colon);
      rest = colon < 0 ? "" : authority.substring(colon);
      if (rest.indexOf(':', 1) >= 0) {
        throw Refusals.badRequest("an IPv6 literal host must be in brackets");
      }
      checkRegName(host);
    }
    int port = -1;
    if (!rest.isEmpty()) {
      port = port(rest.substring(1));
    } else if (portRequired) {
      throw Refusals.badRequest("CONNECT target must be host:port; the port is missing");
    }
    return new HostPort(host, port);
  }

  private static int port(String digits) {
    if (digits.isEmpty()) {
      throw Refusals.badRequest("empty port after the host's colon");
    }
    if (digits.length() > 5) {
      throw Refusals.badRequest("port must be a number from 1 to 65535");
    }
    int value = 0;
    for (int i = 0; i < digits.length(); i++) {
      char c = digits.charAt(i);
      if (c < '0' || c > '9') {
        throw Refusals.badRequest("port must be a number from 1 to 65535");
      }
      value = value * 10 + (c - '0');
    }
    if (value < 1 || value > 65535) {
      throw Refusals.badRequest("port " + value + " is outside 1-65535");
    }
    return value;
  }

  private static void checkRegName(String host) {
    if (host.isEmpty()) {
      throw Refusals.badRequest("empty host");
    }
    for (int i = 0; i < host.length(); i++) {
      char c = host.charAt(i);
      if (c <= ' ' || c == 0x7f) {
        throw Refusals.badRequest("control character or space in the host");
      }
      if (c == '\\') {
        throw Refusals.badRequest("backslash in the host");
      }
      if (c == '%') {
        throw Refusals.badRequest("percent-encoding in the host");
      }
      boolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || c == '-' || c == '.';
      if (!ok) {
        throw Refusals.badRequest("invalid character '" + c + "' in the host");
      }
    }
    try {
      // The policy's own normalisation decides what a valid name is (empty labels, numeric
      // forms, IDNA), so the guard can never pass a host the allowlist then reads differently.
      HostName.normalize(host);
    } catch (IllegalArgumentException e) {
      throw Refusals.badRequest("malformed host: " + e.getMessage());
    }
  }

  /** RFC 4291 text form: up to eight groups of 1-4 hex digits, one "::", optional IPv4 tail. */
  private static void checkIpv6(String address) {
    if (address.indexOf('%') >= 0) {
      throw Refusals.badRequest("percent-encoding (a zone id) in the host");
    }
    String bad = "IPv6 literal [" + address + "] is malformed";
    for (int i = 0; i < address.length(); i++) {
      char c = Character.toLowerCase(address.charAt(i));
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.')) {
        throw Refusals.badRequest("IPv6 literal in the host has an invalid character");
      }
    }
    int gap = address.indexOf("::");
    if (gap >= 0 && address.indexOf("::", gap + 1) >= 0) {
      throw Refusals.badRequest(bad);
    }
    int count;
    if (gap < 0) {
      count = groups(address, true);
      count = count == 8 ? count : -1;
    } else {
      String tail = address.substring(gap + 2);
      int before = groups(address.substring(0, gap), false);
      int after = groups(tail, true);
      count = before < 0 || after < 0 || before + after > 7 ? -1 : before + after;
    }
    if (count < 0) {
      throw Refusals.badRequest(bad);
    }
  }

  /** Counts the 16-bit groups of one side of "::"; -1 when malformed. */
  private static int groups(String part, boolean lastMayBeIpv4) {
    if (part.isEmpty()) {
      return 0;
    }
    String[] pieces = part.split(":", -1);
    int count = 0;
    for (int i = 0; i < pieces.length; i++) {
      String p = pieces[i];
      if (p.indexOf('.') >= 0) {
        if (!lastMayBeIpv4 || i != pieces.length - 1 || !HostName.isDottedQuad(p)) {
          return -1;
        }
        count += 2;
      } else if (p.isEmpty() || p.length() > 4) {
        return -1;
      } else {
        count++;
      }
    }
    return count;
  }

  private static void checkPathAndQuery(String pathAndQuery) {
    for (int i = 0; i < pathAndQuery.length(); i++) {
      char c = pathAndQuery.charAt(i);
      if (c == '\\') {
        // Some servers read "\" as "/", which would walk around a path rule.
        throw Refusals.badRequest("backslash in the request target");
      }
      if (c == '%') {
        if (i + 2 >= pathAndQuery.length() || !isHex(pathAndQuery.charAt(i + 1))
            || !isHex(pathAndQuery.charAt(i + 2))) {
          throw Refusals.badRequest("malformed percent-encoding in the request target");
        }
      }
    }
    int q = pathAndQuery.indexOf('?');
    String path = q < 0 ? pathAndQuery : pathAndQuery.substring(0, q);
    if (path.indexOf('%') < 0 && path.indexOf('.') < 0) {
      // Nothing below can match: an encoded slash or backslash needs a '%', a dot segment a
      // '.' or "%2e". Most paths end here, without a lower-cased copy and a split.
      return;
    }
    String lower = path.toLowerCase(Locale.ROOT);
    if (lower.contains("%2f")) {
      throw Refusals.badRequest("encoded slash (%2F) in the path");
    }
    if (lower.contains("%5c")) {
      throw Refusals.badRequest("encoded backslash (%5C) in the path");
    }
    for (String segment : lower.split("/", -1)) {
      // "..;x" is ".." to servlet containers, which drop path parameters before resolving.
      int semicolon = segment.indexOf(';');
      String bare = (semicolon < 0 ? segment : segment.substring(0, semicolon))
          .replace("%2e", ".");
      if (bare.equals(".") || bare.equals("..")) {
        throw Refusals.badRequest(
            "dot segment (. or ..) in the path; send the path already resolved");
      }
    }
  }

  private static boolean isHex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }
}
