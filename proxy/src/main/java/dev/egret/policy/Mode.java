package dev.egret.policy;

/** {@code mode:} in the config. */
public enum Mode {
  ENFORCE,
  /**
   * Allowlist denials are logged and counted (outcome {@code reported}) and let through. The
   * address guard and the TLS checks still hold: report mode is for rolling out an allowlist,
   * not for opening the metadata service.
   */
  REPORT
}
