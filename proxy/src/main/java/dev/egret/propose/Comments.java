package dev.egret.propose;

/** Text that goes into a YAML comment: one line of printable ASCII, whatever the log held. */
final class Comments {
  private Comments() {}

  /**
   * {@code s} with every character outside printable ASCII replaced by {@code ?}, and cut to
   * {@code max} characters: a line break in a logged path must never end the comment and start a
   * YAML key (a rule nobody reviewed).
   */
  static String safe(String s, int max) {
    StringBuilder b = new StringBuilder(Math.min(s.length(), max + 3));
    for (int i = 0; i < s.length() && b.length() < max; i++) {
      char c = s.charAt(i);
      b.append(c >= 0x20 && c < 0x7f ? c : '?');
    }
    if (s.length() > max) {
      b.append("...");
    }
    return b.toString();
  }
}
