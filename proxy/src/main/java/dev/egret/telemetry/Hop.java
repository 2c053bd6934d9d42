package dev.egret.telemetry;

import dev.egret.failure.ErrorKind;
import dev.egret.policy.Decision;
import dev.egret.policy.Kind;
import dev.egret.policy.Verdict;

/**
 * What one request or tunnel did, filled in stage by stage and handed to {@link
 * Telemetry#hopFinished} once at the end. Confined to the event loop of the downstream connection
 * that created it, so it needs no locking.
 */
public final class Hop {
  public final long startNanos;
  public final long startEpochMillis;
  public String client;
  /**
   * The TCP peer (the load balancer) when a PROXY header named the client; null otherwise, and
   * then the log line has no {@code peer} key.
   */
  public String peer;
  /**
   * Gateway mode: the name of the client the request came from, or {@code unidentified}; null
   * in a sidecar, whose metrics and log have no identity.
   */
  public String identity;
  /** How the request reached Egret when not through the proxy port: "tunnelled", "transparent". */
  public String origin;
  public String method;
  /** The target with the query string and any userinfo dropped. */
  public String url;
  public Kind kind;
  /** Set once the allowlist has decided; null for requests refused before (bad syntax). */
  public Decision decision;
  /** The failure that ended the hop, or null. */
  public ErrorKind error;
  public String errorDetails;
  public int status;
  public String upstreamAddress;
  /** The upstream proxy that carried the hop (its configured name), or null for direct. */
  public String upstreamProxy;
  public String tlsVersion;
  public String tlsCipher;
  public long dnsNanos = -1;
  public long connectNanos = -1;
  public long handshakeNanos = -1;
  public long firstByteNanos = -1;
  public long totalNanos = -1;
  public long bytesUpstream;
  public long bytesDownstream;
  private boolean finished;

  public Hop() {
    this(System.nanoTime(), System.currentTimeMillis());
  }

  /** A hop that started at these instants (the exchange's own). */
  public Hop(long startNanos, long startEpochMillis) {
    this.startNanos = startNanos;
    this.startEpochMillis = startEpochMillis;
  }

  /** The {@code destination} label: the matched rule's pattern, or "denied". */
  public String destination() {
    return decision == null ? "denied" : decision.destination();
  }

  /** The {@code outcome} label: allowed, denied, reported or failed. */
  public String outcome() {
    if (decision == null || !decision.verdict().letsThrough() || (error != null && error.refusal())) {
      return "denied";
    }
    if (error != null) {
      return "failed";
    }
    return decision.verdict() == Verdict.REPORT ? "reported" : "allowed";
  }

  /** The {@code error} label: the Proxy-Status error type, or "none". */
  public String errorLabel() {
    return error == null ? "none" : error.proxyStatusError();
  }

  /** Marks the hop done; returns false if it already was, so telemetry sees each hop once. */
  public boolean finish() {
    if (finished) {
      return false;
    }
    finished = true;
    totalNanos = System.nanoTime() - startNanos;
    return true;
  }
}
