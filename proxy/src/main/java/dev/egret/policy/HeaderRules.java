package dev.egret.policy;

import io.vertx.core.MultiMap;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A rule's {@code headers: {set: {NAME: VALUE}, remove: [NAME]}}, compiled: what Egret does to
 * the upstream request's headers where it writes that request itself (an upgraded {@code http://}
 * request, an absolute-form {@code https://} request). Use it as the last word on the headers,
 * after the client's end-to-end headers were copied:
 *
 * <pre>
 * HopByHop.copy(req.headers(), up.headers());
 * decision.headers().apply(up.headers());   // removes, then sets (a set header replaces the client's)
 * </pre>
 *
 * <p>Immutable; the values were resolved ({@code ${env:NAME}}, {@code ${file:PATH}}) when the
 * config was compiled, and a reload compiles new ones. The values are secrets: they leave this
 * object only through {@link #apply} and {@link #addTo}. {@link #toString()}, {@link #describe()} and every message
 * built from this class name the headers and where their values came from, never the values.
 */
public final class HeaderRules {
  /** No headers to set or remove; tunnels allowed. */
  public static final HeaderRules NONE = new HeaderRules(List.of(), List.of(), false);

  private final List<SetHeader> set;
  private final List<String> remove;
  private final boolean tunnelAllowed;

  /**
   * @param set headers to set, in config order (names unique, case-insensitively)
   * @param remove header names to remove
   * @param tunnelAllowed the rule says {@code tunnel: allow}: a CONNECT to it is admitted and
   *     carries the client's own headers, which Egret cannot see
   */
  public HeaderRules(List<SetHeader> set, List<String> remove, boolean tunnelAllowed) {
    this.set = List.copyOf(set);
    this.remove = List.copyOf(remove);
    this.tunnelAllowed = tunnelAllowed;
  }

  /**
   * One header to set.
   *
   * <p>Not a record, so that no generated {@code toString}, {@code equals} or accessor hands out
   * the value.
   */
  public static final class SetHeader {
    private final String name;
    private final String value;
    private final String source;

    /**
     * @param name the header name as written in the config
     * @param value the resolved value (a secret)
     * @param source where the value came from, for people: {@code env:CRM_TOKEN}, {@code
     *     file:secrets/token}, or {@code the config} for a literal
     */
    public SetHeader(String name, String value, String source) {
      this.name = Objects.requireNonNull(name);
      this.value = Objects.requireNonNull(value);
      this.source = Objects.requireNonNull(source);
    }

    public String name() {
      return name;
    }

    /** {@code <set from env:CRM_TOKEN>}: what explain and messages print instead of the value. */
    public String redacted() {
      return source.equals("the config") ? "<set in the config>" : "<set from " + source + ">";
    }

    @Override
    public String toString() {
      return name + ": " + redacted();
    }
  }

  /** True when the rule neither sets nor removes a header. */
  public boolean isEmpty() {
    return set.isEmpty() && remove.isEmpty();
  }

  /**
   * True when a CONNECT to the rule must be refused: it has headers that Egret could not add to
   * (or strip from) a tunnel's encrypted requests, and does not say {@code tunnel: allow}.
   */
  public boolean refusesTunnels() {
    return !isEmpty() && !tunnelAllowed;
  }

  public boolean tunnelAllowed() {
    return tunnelAllowed;
  }

  /** The names of the headers set, then of those removed, as written in the config. */
  public List<String> names() {
    List<String> names = new ArrayList<>();
    set.forEach(h -> names.add(h.name()));
    names.addAll(remove);
    return names;
  }

  /**
   * One line per header, for {@code egret explain}: {@code Authorization: <set from
   * env:CRM_TOKEN>}, {@code Cookie: <removed>}.
   */
  public List<String> describe() {
    List<String> lines = new ArrayList<>();
    set.forEach(h -> lines.add(h.toString()));
    remove.forEach(n -> lines.add(n + ": <removed>"));
    return lines;
  }

  /**
   * Rewrites the upstream request's headers: removes the {@code remove} names and every header
   * the rule sets (whatever its case), then adds the rule's values, so a {@code set} header
   * replaces the one the client sent instead of being sent beside it.
   */
  public void apply(MultiMap upstreamHeaders) {
    for (String name : remove) {
      upstreamHeaders.remove(name);
    }
    for (SetHeader h : set) {
      upstreamHeaders.set(h.name, h.value);
    }
  }

  /**
   * True when the rule removes or sets {@code name} (case-insensitively): a writer that streams
   * the client's headers straight onto the wire leaves such a header out, then calls {@link
   * #addTo}. The same result as {@link #apply}, without a header map in between.
   */
  public boolean replaces(String name) {
    for (int i = 0; i < set.size(); i++) {
      if (set.get(i).name.equalsIgnoreCase(name)) {
        return true;
      }
    }
    for (int i = 0; i < remove.size(); i++) {
      if (remove.get(i).equalsIgnoreCase(name)) {
        return true;
      }
    }
    return false;
  }

  /** Hands each header the rule sets, name and value, to {@code out}, in config order. */
  public void addTo(java.util.function.BiConsumer<String, String> out) {
    for (int i = 0; i < set.size(); i++) {
      out.accept(set.get(i).name, set.get(i).value);
    }
  }

  @Override
  public String toString() {
    return "HeaderRules" + describe() + (tunnelAllowed ? " (tunnel: allow)" : "");
  }
}
