package dev.egret.propose;

import dev.egret.listener.RequestTargets;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.egret.failure.ProxyFailure;
import dev.egret.exchange.RequestTarget;
import dev.egret.policy.Kind;
import dev.egret.policy.Target;
import java.io.IOException;
import java.io.Reader;
import java.util.function.Consumer;

/**
 * Reads Egret's JSON access log line by line. A line that is not one of Egret's (another
 * container's output, a stack trace, a truncated or over-long line) is skipped and counted, as
 * is a hop with no destination to propose (a malformed request, a loop). Every URL is parsed
 * again by {@link RequestTarget#parse}, the proxy port's own parser, so a line someone edited to
 * hold a hostile host or path is refused exactly as the proxy would refuse it.
 */
final class AccessLogReader {
  /** Egret's lines are a few hundred bytes; anything this long is not one of them. */
  static final int MAX_LINE_CHARS = 64 * 1024;
  private static final ObjectMapper JSON = new ObjectMapper();

  long lines;
  /** Lines that are not Egret access-log lines. */
  long skipped;
  /** Egret's lines for hops with no destination to propose (malformed, loops). */
  long withoutDestination;
  long hops;

  /** Reads every line of {@code in}, handing each hop to {@code sink}. */
  void read(Reader in, Consumer<Sighting> sink) throws IOException {
    StringBuilder line = new StringBuilder();
    boolean tooLong = false;
    char[] buf = new char[8192];
    int n;
    while ((n = in.read(buf)) > 0) {
      for (int i = 0; i < n; i++) {
        char c = buf[i];
        if (c == '\n') {
          end(line, tooLong, sink);
          line.setLength(0);
          tooLong = false;
        } else if (!tooLong) {
          if (line.length() >= MAX_LINE_CHARS) {
            tooLong = true; // the rest of it is read and dropped, never held
            line.setLength(0);
          } else {
            line.append(c);
          }
        }
      }
    }
    if (line.length() > 0 || tooLong) {
      end(line, tooLong, sink);
    }
  }

  private void end(CharSequence text, boolean tooLong, Consumer<Sighting> sink) {
    String s = text.toString().strip();
    if (s.isEmpty() && !tooLong) {
      return; // blank lines are nobody's
    }
    lines++;
    if (tooLong) {
      skipped++;
      return;
    }
    Sighting sighting = parse(s);
    if (sighting != null) {
      hops++;
      sink.accept(sighting);
    }
  }

  private Sighting parse(String line) {
    JsonNode o;
    try {
      o = line.startsWith("{") ? JSON.readTree(line) : null;
    } catch (JsonProcessingException e) {
      o = null;
    }
    if (o == null || !o.isObject() || !text(o, "kind") || !text(o, "outcome") || !o.has("url")
        || !o.has("time")) {
      skipped++;
      return null;
    }
    String error = text(o, "error") ? o.get("error").asText() : "none";
    String url = o.get("url").asText();
    if (!o.get("url").isTextual() || url.equals("-") || error.equals("proxy_loop_detected")) {
      withoutDestination++;
      return null;
    }
    String kind = o.get("kind").asText();
    String method = text(o, "method") ? o.get("method").asText() : "GET";
    Target t;
    try {
      t = RequestTargets.target(kind.equals(Kind.TUNNEL.label()) ? "CONNECT" : method, url).target();
    } catch (ProxyFailure | IllegalArgumentException e) {
      withoutDestination++;
      return null;
    }
    if (!t.kind().label().equals(kind)) {
      skipped++; // the kind and the URL disagree: not a line Egret wrote
      return null;
    }
    int upstream = t.kind() == Kind.UPGRADE && t.port() == 80 ? 443 : t.port();
    return new Sighting(t, upstream, error);
  }

  private static boolean text(JsonNode o, String field) {
    return o.has(field) && o.get(field).isTextual();
  }
}
