package dev.egret.policy;

import dev.egret.address.HostName;
import java.util.Arrays;

/**
 * A compiled allowlist host pattern. Forms: an exact name or IP literal; {@code *} standing for
 * exactly one label in any position ({@code ec2.*.amazonaws.com}); a leading {@code **.} standing
 * for one or more labels ({@code **.salesforce.com} matches {@code na1.salesforce.com} and
 * {@code a.b.salesforce.com}, never the apex). Labels are compared whole: {@code api*.x.com} is
 * refused when the config is compiled, because partial-label wildcards are how allowlists leak.
 */
public final class HostPattern {
  private final String pattern;
  private final boolean anyPrefix;
  private final String[] labels;
  /** The details of a decision this pattern's rule allows, built once rather than per hop. */
  private final String allowedDetails;

  private HostPattern(String pattern, boolean anyPrefix, String[] labels) {
    this.pattern = pattern;
    this.anyPrefix = anyPrefix;
    this.labels = labels;
    this.allowedDetails = "allowed by rule '" + pattern + "'";
  }

  /**
   * Compiles a pattern as written in the config.
   *
   * @throws IllegalArgumentException with a message that says how to write it instead
   */
  public static HostPattern compile(String written) {
    String p = written.trim();
    if (p.isEmpty()) {
      throw new IllegalArgumentException("host pattern is empty");
    }
    // The request side's own normalisation (HostName), so a pattern and a host are read alike:
    // case, trailing dot, IDNA separators, punycode and empty labels.
    String[] labels = HostName.labels(p, true);
    String last = labels[labels.length - 1];
    if (last.equals("*") || last.equals("**")) {
      throw new IllegalArgumentException("host pattern '" + p + "' ends in a wildcard label, so "
          + "it would match every top-level domain; name the domain, e.g. *.example.com or "
          + "**.example.com");
    }
    boolean anyPrefix = labels[0].equals("**");
    for (int i = anyPrefix ? 1 : 0; i < labels.length; i++) {
      if (labels[i].equals("**")) {
        throw new IllegalArgumentException(
            "'**' may only stand as the first label ('**.example.com'), not in '" + p + "'");
      }
    }
    String[] rest = anyPrefix ? Arrays.copyOfRange(labels, 1, labels.length) : labels;
    boolean wildcard = anyPrefix || Arrays.asList(rest).contains("*");
    if (!wildcard) {
      return new HostPattern(p, false, new String[] {String.join(".", rest)});
    }
    return new HostPattern(p, anyPrefix, rest);
  }

  /** The pattern as written: the {@code destination} metric label and the rule's name. */
  public String pattern() {
    return pattern;
  }

  /** "allowed by rule 'PATTERN'": the details of a decision its rule allows. */
  String allowedDetails() {
    return allowedDetails;
  }

  /** True if the pattern names exactly one host (no wildcard). */
  public boolean isExact() {
    return !anyPrefix && labels.length == 1 && !labels[0].equals("*");
  }

  /** Matches a host already normalised by {@link HostName#normalize}. */
  public boolean matches(String host) {
    return matches(host, labelsOf(host));
  }

  /**
   * As {@link #matches(String)}, with the host's labels split once by the caller ({@link
   * #labelsOf}), so an allowlist of many wildcard rules splits each request's host only once.
   */
  boolean matches(String host, String[] hostLabels) {
    if (isExact()) {
      return labels[0].equals(host);
    }
    if (hostLabels == null) {
      return false; // an IP literal: wildcards name DNS labels, never address ranges
    }
    int extra = hostLabels.length - labels.length;
    if (anyPrefix ? extra < 1 : extra != 0) {
      return false;
    }
    for (int i = 0; i < labels.length; i++) {
      String want = labels[i];
      if (!want.equals("*") && !want.equals(hostLabels[extra + i])) {
        return false;
      }
    }
    return true;
  }

  /** The DNS labels of a normalised host, or null for an IP literal. */
  static String[] labelsOf(String host) {
    return HostName.isIpLiteral(host) ? null : host.split("\\.", -1);
  }

  @Override
  public String toString() {
    return pattern;
  }
}
