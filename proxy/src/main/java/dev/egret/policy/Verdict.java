package dev.egret.policy;

/** The outcome of the allowlist for one request. */
public enum Verdict {
  ALLOW,
  DENY,
  /** Would be denied, but {@code mode: report} lets it through and counts it. */
  REPORT;

  public boolean letsThrough() {
    return this != DENY;
  }
}
