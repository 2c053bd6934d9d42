package dev.egret.policy;

/** What to do with an {@code http://} request to an allowed host. Nothing is ever sent in plaintext. */
public enum Plaintext {
  /** Re-originate it over TLS to the same host. */
  UPGRADE,
  /** Refuse it with 403. */
  BLOCK
}
