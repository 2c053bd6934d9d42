package dev.egret.policy;


/**
 * The allowlist's answer for one request, made once by {@link Allowlist#decide} and carried with
 * the hop to the upstream, the error response, the access log and the metrics.
 *
 * @param verdict allow, deny, or report (denied but let through by {@code mode: report})
 * @param reason why
 * @param rule the allow rule that matched, or came closest (same host, other port or method);
 *     null when no rule names the host
 * @param target what was asked
 * @param upstreamPort the port Egret connects to (the documented upgrade mapping applied)
 * @param details one sentence for the client and the log
 * @param client the gateway client whose allowlist decided, or null (a sidecar's allowlist)
 * @param route how an admitted hop reaches the destination: direct, or through an upstream
 *     proxy ({@link Routing} chose it); direct for a denial
 */
public record Decision(
    Verdict verdict, Reason reason, Rule rule, Target target, int upstreamPort, String details,
    String client, UpstreamRoute route) {

  /** A decision of the top-level allowlist, for no client, direct until routed. */
  public Decision(Verdict verdict, Reason reason, Rule rule, Target target, int upstreamPort,
      String details) {
    this(verdict, reason, rule, target, upstreamPort, details, null);
  }

  /** A decision for {@code client}, direct; {@link Allowlist} routes it once decided. */
  public Decision(Verdict verdict, Reason reason, Rule rule, Target target, int upstreamPort,
      String details, String client) {
    this(verdict, reason, rule, target, upstreamPort, details, client, UpstreamRoute.DIRECT);
  }

  /** The {@code destination} metric label: the matched rule's host pattern, else "denied". */
  public String destination() {
    return verdict.letsThrough() && rule != null ? rule.host().pattern() : "denied";
  }

  /** The rule's pattern for the error body and log, or null. */
  public String ruleName() {
    return rule == null ? null : rule.host().pattern();
  }

  /**
   * The headers to set and remove on the upstream request: the rule's, when the decision
   * allows. A reported pass (a request the policy would deny) gets none, so a credential is
   * never added to a request its rule does not admit.
   */
  public HeaderRules headers() {
    return verdict == Verdict.ALLOW && rule != null ? rule.headers() : HeaderRules.NONE;
  }

  /** The same decision with the report mode applied: a denial becomes a reported pass. */
  Decision reported() {
    return new Decision(Verdict.REPORT, reason, rule, target, upstreamPort, details, client,
        route);
  }

  /** The same decision with its route. */
  Decision routed(UpstreamRoute route) {
    return new Decision(verdict, reason, rule, target, upstreamPort, details, client, route);
  }
}
