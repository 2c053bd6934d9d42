package dev.egret.failure;

/**
 * The one exception every stage raises when a hop cannot go on. It carries what the client
 * will be told; {@link FailureResponse} renders it. Stack traces are not captured: a refusal is
 * an expected outcome, not a bug, and the details string says what happened.
 */
public final class ProxyFailure extends RuntimeException {
  private final ErrorKind kind;
  private final int status;
  private final String details;

  public ProxyFailure(ErrorKind kind, String details) {
    this(kind, kind.status(), details, null);
  }

  public ProxyFailure(ErrorKind kind, String details, Throwable cause) {
    this(kind, kind.status(), details, cause);
  }

  /** For strict-parsing refusals whose status (411, 414, 431, 501, 505) refines the kind's. */
  public ProxyFailure(ErrorKind kind, int status, String details, Throwable cause) {
    super(details, cause, false, false);
    this.kind = kind;
    this.status = status;
    this.details = details;
  }

  public ErrorKind kind() {
    return kind;
  }

  public int status() {
    return status;
  }

  public String details() {
    return details;
  }
}
