package dev.egret.upgrade;

import dev.egret.exchange.RequestHead;
import dev.egret.upstream.ResponseHead;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
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

  /** HOP_LENGTHS[n]: some name in {@link #ALWAYS} is n characters long. */
  private static final boolean[] HOP_LENGTHS =
      new boolean[ALWAYS.stream().mapToInt(String::length).max().orElse(0) + 1];

  static {
    for (String name : ALWAYS) {
      HOP_LENGTHS[name.length()] = true;
    }
  }

  private HopByHop() {}

  /** {@link #ALWAYS} as an array, for a scan without a lower-cased copy of the name. */
  private static final String[] ALWAYS_NAMES = ALWAYS.toArray(String[]::new);

  /**
   * Whether a header stops at this hop. Nearly every message has no {@code Connection} tokens,
   * and most names are not of a fixed-set name's length; one that is is compared with the names
   * of the set, ignoring case, without a lower-cased copy.
   */
  static boolean dropped(String name, Set<String> named) {
    int n = name.length();
    if (n < HOP_LENGTHS.length && HOP_LENGTHS[n]) {
      for (String hop : ALWAYS_NAMES) {
        if (hop.length() == n && hop.equalsIgnoreCase(name)) {
          return true;
        }
      }
    }
    return !named.isEmpty() && named.contains(name.toLowerCase(Locale.ROOT));
  }

  /**
   * {@code tokens} plus the lower-case tokens of one {@code Connection} header value, leaving
   * out those the fixed set drops anyway: the usual {@code keep-alive} or {@code close} adds
   * nothing and allocates nothing.
   */
  private static Set<String> withTokens(Set<String> tokens, String value) {
    Set<String> all = tokens;
    int start = 0;
    while (start <= value.length()) {
      int comma = value.indexOf(',', start);
      int end = comma < 0 ? value.length() : comma;
      String t = value.substring(start, end).trim().toLowerCase(Locale.ROOT);
      if (!t.isEmpty() && !ALWAYS.contains(t) && !all.contains(t)) {
        if (all == tokens) {
          all = new HashSet<>(tokens);
        }
        all.add(t);
      }
      start = end + 1;
    }
    return all;
  }

  /** The header names the client's {@code Connection} headers make hop-by-hop (usually none). */
  static Set<String> connectionTokens(List<RequestHead.Header> headers) {
    Set<String> named = Set.of();
    for (int i = 0; i < headers.size(); i++) {
      RequestHead.Header h = headers.get(i);
      if (h.name().equalsIgnoreCase("connection")) {
        named = withTokens(named, h.value());
      }
    }
    return named;
  }

  /**
   * {@link #ALWAYS} but {@code content-length} (the response keeps its length), as lower-case
   * bytes indexed by length, for {@link #droppedFromResponse}.
   */
  private static final byte[][][] RESPONSE_DROPPED = new byte[HOP_LENGTHS.length][][];
  private static final byte[] CONTENT_LENGTH =
      "content-length".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

  static {
    for (String name : ALWAYS) {
      if (!name.equals("content-length")) {
        byte[][] same = RESPONSE_DROPPED[name.length()];
        same = same == null ? new byte[1][] : java.util.Arrays.copyOf(same, same.length + 1);
        same[same.length - 1] = name.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        RESPONSE_DROPPED[name.length()] = same;
      }
    }
  }

  /**
   * Whether header line {@code line} of a response stops at this hop: a name of the fixed set
   * but {@code Content-Length}, or one the response's {@code Connection} headers name. Compared
   * on the head's bytes, without a string per name. {@code Content-Length} stays even when
   * {@code Connection} names it: the relay frames the body by it, and a body relayed without its
   * length on a kept-alive client connection would run into the next response.
   */
  static boolean droppedFromResponse(ResponseHead head, int line) {
    int n = head.nameLength(line);
    if (n < RESPONSE_DROPPED.length && RESPONSE_DROPPED[n] != null) {
      for (byte[] name : RESPONSE_DROPPED[n]) {
        if (head.nameIs(line, name)) {
          return true;
        }
      }
    }
    List<String> named = head.connectionOptions();
    if (named.isEmpty() || (n == 14 && head.nameIs(line, CONTENT_LENGTH))) {
      return false;
    }
    for (int i = 0; i < named.size(); i++) {
      if (head.nameIs(line, named.get(i))) {
        return true;
      }
    }
    return false;
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
}
