package dev.egret.policy;

/** Why the allowlist decided as it did; each reason reads as a sentence fragment in logs. */
public enum Reason {
  ALLOWED_BY_RULE("allowed by rule"),
  DENIED_BY_RULE("denied by a deny rule"),
  NO_MATCHING_RULE("no allow rule names this host"),
  PORT_NOT_ALLOWED("port not allowed by the rule"),
  METHOD_NOT_ALLOWED("method not allowed by the rule"),
  PATH_NOT_ALLOWED("path not allowed by the rule"),
  PLAINTEXT_BLOCKED("plaintext http:// is blocked for this host"),
  /**
   * A CONNECT that no rule lets carry TLS, admitted because a rule would upgrade plain
   * {@code http://} to the same host and port: only plain HTTP requests may follow inside it.
   */
  PLAIN_HTTP_ONLY("admitted for plain http:// requests only, which are upgraded"),
  TUNNEL_BYPASSES_HEADERS("a tunnel would bypass the headers the rule injects");

  private final String text;

  Reason(String text) {
    this.text = text;
  }

  public String text() {
    return text;
  }
}
