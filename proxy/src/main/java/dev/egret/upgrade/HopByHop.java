package dev.egret.upgrade;

import io.vertx.core.MultiMap;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;

/**
 * Copies end-to-end headers from one message to the next hop, dropping the hop-by-hop ones
 * (RFC 9110 section 7.6.1): {@code Connection} and every header it names, plus the fixed set
 * below. Framing headers are dropped too, because each side frames its own message.
 */
final class HopByHop {
  private static final Set<String> ALWAYS = Set.of(
      "connection", "proxy-connection", "keep-alive", "te", "trailer", "transfer-encoding",
      "upgrade", "proxy-authorization", "proxy-authenticate", "host", "content-length",
      "expect", "via");

  private HopByHop() {}

  static void copy(MultiMap from, MultiMap to) {
    Set<String> named = connectionTokens(from);
    for (var e : from) {
      String name = e.getKey().toLowerCase(Locale.ROOT);
      if (!ALWAYS.contains(name) && !named.contains(name)) {
        to.add(e.getKey(), e.getValue());
      }
    }
  }

  /** The lower-case tokens of every {@code Connection} header. */
  private static Set<String> connectionTokens(MultiMap headers) {
    Set<String> tokens = new HashSet<>();
    for (String value : headers.getAll("connection")) {
      for (String token : value.split(",")) {
        String t = token.trim().toLowerCase(Locale.ROOT);
        if (!t.isEmpty()) {
          tokens.add(t);
        }
      }
    }
    return tokens;
  }

  /** True if a {@code Connection} header lists {@code close}. */
  static boolean asksToClose(MultiMap headers) {
    return connectionTokens(headers).contains("close");
  }

  /** The {@code Via} value to send on: the received ones, then Egret's own entry. */
  static String via(MultiMap from, String ours) {
    String received = String.join(", ", from.getAll("via"));
    return received.isEmpty() ? ours : received + ", " + ours;
  }
}
