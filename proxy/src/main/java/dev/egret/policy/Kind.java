package dev.egret.policy;

/** What kind of hop a request is; also the {@code kind} metric label. */
public enum Kind {
  /** An absolute-form {@code http://} request, re-originated over TLS. */
  UPGRADE("upgrade"),
  /** A {@code CONNECT} tunnel that must carry TLS. */
  TUNNEL("tunnel"),
  /** An absolute-form {@code https://} request, originated over TLS by Egret. */
  TLS("tls");

  private final String label;

  Kind(String label) {
    this.label = label;
  }

  public String label() {
    return label;
  }
}
