package dev.egret.policy;

import java.util.regex.Pattern;

/**
 * A compiled path pattern: {@code *} matches within one segment, {@code **} across segments,
 * everything else literally. Matched against the request path without its query, as sent (no
 * percent-decoding: strict parsing has already refused dot segments and encoded slashes).
 */
public final class PathPattern {
  private final String written;
  private final Pattern regex;

  private PathPattern(String written, Pattern regex) {
    this.written = written;
    this.regex = regex;
  }

  public static PathPattern compile(String written) {
    if (!written.startsWith("/")) {
      throw new IllegalArgumentException("path pattern '" + written + "' must start with '/'");
    }
    StringBuilder re = new StringBuilder();
    int i = 0;
    while (i < written.length()) {
      char c = written.charAt(i);
      if (c == '*') {
        if (i + 1 < written.length() && written.charAt(i + 1) == '*') {
          re.append(".*");
          i += 2;
        } else {
          re.append("[^/]*");
          i++;
        }
      } else {
        int next = written.indexOf('*', i);
        int end = next < 0 ? written.length() : next;
        re.append(Pattern.quote(written.substring(i, end)));
        i = end;
      }
    }
    return new PathPattern(written, Pattern.compile(re.toString()));
  }

  public boolean matches(String path) {
    return regex.matcher(path).matches();
  }

  @Override
  public String toString() {
    return written;
  }
}
