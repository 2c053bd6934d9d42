package dev.egret.telemetry;

import dev.egret.failure.ErrorKind;
import dev.egret.policy.Allowlist;
import dev.egret.policy.HostPattern;
import dev.egret.policy.Kind;
import dev.egret.policy.Mode;
import dev.egret.policy.Plaintext;
import dev.egret.policy.Rule;
import dev.egret.policy.Target;
import java.util.List;
import java.util.Set;

/**
 * Synthetic hops decided by a real allowlist: api.example.com and **.salesforce.com allowed on
 * 443, **.pastebin.com denied.
 */
final class Hops {
  static final Allowlist ALLOWLIST = allowlist(Mode.ENFORCE);

  private Hops() {}

  static Allowlist allowlist(Mode mode) {
    return new Allowlist(
        List.of(HostPattern.compile("**.pastebin.com")),
        List.of(rule("api.example.com", 1), rule("**.salesforce.com", 2)),
        mode);
  }

  private static Rule rule(String host, int line) {
    return new Rule(HostPattern.compile(host), Set.of(443), Set.of(), List.of(),
        Plaintext.UPGRADE, null, List.of(), null, false, line);
  }

  /** A hop for the target as the allowlist decides it, finished with the given duration. */
  static Hop hop(Allowlist allowlist, Target target, ErrorKind error, int status, long totalNanos) {
    Hop hop = new Hop();
    hop.client = "127.0.0.1:50123";
    hop.method = target.method() == null ? "CONNECT" : target.method();
    hop.url = target.describe();
    hop.kind = target.kind();
    hop.decision = allowlist.decide(target);
    hop.error = error;
    hop.errorDetails = error == null ? null : "details of " + error.proxyStatusError();
    hop.status = status;
    hop.finish();
    hop.totalNanos = totalNanos;
    return hop;
  }

  static Hop upgrade(String host, String path) {
    return hop(ALLOWLIST, new Target(Kind.UPGRADE, host, 80, "GET", path), null, 200, 3_000_000);
  }

  static Hop tunnel(String host) {
    return hop(ALLOWLIST, Target.tunnel(host, 443), null, 200, 40_000_000);
  }
}
