package dev.egret.tunnel;

/**
 * Raised inside the inspectors when the bytes cannot be a hello; the public {@code offer} turns
 * it into a {@link HelloInspection.Refused} value and never lets it out. No stack trace: hostile
 * input is an expected outcome, and the reason says what was wrong.
 */
final class HelloRejection extends Exception {
  private final boolean notTls;

  private HelloRejection(boolean notTls, String reason) {
    super(reason, null, false, false);
    this.notTls = notTls;
  }

  static HelloRejection notTls(String format, Object... args) {
    return new HelloRejection(true, String.format(format, args));
  }

  static HelloRejection malformed(String format, Object... args) {
    return new HelloRejection(false, String.format(format, args));
  }

  HelloInspection.Refused toResult() {
    return notTls
        ? new HelloInspection.NotTls(getMessage())
        : new HelloInspection.Malformed(getMessage());
  }
}
