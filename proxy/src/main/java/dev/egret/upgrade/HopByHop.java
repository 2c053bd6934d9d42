package dev.egret.upgrade;

import dev.egret.listener.RequestHead;
import io.vertx.core.MultiMap;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;

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

  /** The client's request headers onto the upstream request. */
  static void copy(List<RequestHead.Header> from, MultiMap to) {
    List<Map.Entry<String, String>> entries = new ArrayList<>(from.size());
    for (RequestHead.Header h : from) {
      entries.add(Map.entry(h.name(), h.value()));
    }
    copy(entries, to::add);
  }

  /** The upstream's response headers onto the client's response. */
  static void copy(MultiMap from, io.netty.handler.codec.http.HttpHeaders to) {
    copy(from, to::add);
  }

  /** An interim response's headers, as Netty decoded them, onto the client's copy. */
  static void copy(io.netty.handler.codec.http.HttpHeaders from,
      io.netty.handler.codec.http.HttpHeaders to) {
    copy(from, to::add);
  }

  private static void copy(Iterable<Map.Entry<String, String>> from,
      BiConsumer<String, String> to) {
    Set<String> named = connectionTokens(from);
    for (var e : from) {
      String name = e.getKey().toLowerCase(Locale.ROOT);
      if (!ALWAYS.contains(name) && !named.contains(name)) {
        to.accept(e.getKey(), e.getValue());
      }
    }
  }

  /** The lower-case tokens of every {@code Connection} header. */
  private static Set<String> connectionTokens(Iterable<Map.Entry<String, String>> headers) {
    Set<String> tokens = new HashSet<>();
    for (var e : headers) {
      if (!e.getKey().equalsIgnoreCase("connection")) {
        continue;
      }
      for (String token : e.getValue().split(",")) {
        String t = token.trim().toLowerCase(Locale.ROOT);
        if (!t.isEmpty()) {
          tokens.add(t);
        }
      }
    }
    return tokens;
  }

  /** True if the request asks for {@code 100 Continue} before sending its body. */
  static boolean expectsContinue(List<RequestHead.Header> headers) {
    for (RequestHead.Header h : headers) {
      if (h.name().equalsIgnoreCase("expect") && h.value().equalsIgnoreCase("100-continue")) {
        return true;
      }
    }
    return false;
  }

  /** The {@code Via} value to send on: the received ones, then Egret's own entry. */
  static String via(List<RequestHead.Header> from, String ours) {
    List<String> received = new ArrayList<>();
    for (RequestHead.Header h : from) {
      if (h.name().equalsIgnoreCase("via")) {
        received.add(h.value());
      }
    }
    return received.isEmpty() ? ours : String.join(", ", received) + ", " + ours;
  }

  static String via(MultiMap from, String ours) {
    String received = String.join(", ", from.getAll("via"));
    return received.isEmpty() ? ours : received + ", " + ours;
  }
}
