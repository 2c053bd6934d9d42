package dev.egret.propose;

import com.google.common.net.InternetDomainName;
import dev.egret.policy.HostName;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code --group N}: folds N or more hosts seen under one registrable domain (and port) into one
 * {@code **.domain} rule. The registrable domain comes from the public suffix list that Guava's
 * {@link InternetDomainName} ships and Google keeps current, private registries included, so
 * {@code a.github.io} and {@code b.github.io} stay two rules ({@code github.io} is a public
 * suffix: a {@code **.github.io} rule would admit every GitHub Pages site), and so do hosts under
 * {@code co.uk} or {@code s3.amazonaws.com}.
 */
final class Grouping {
  private Grouping() {}

  /**
   * The registrable domain a host lies strictly under ({@code eu1.crm.example.com} gives {@code
   * example.com}), or null: for an IP literal, a name outside the list's suffixes, or a host that
   * is itself a registrable domain or a public suffix.
   */
  static String parentOf(String host) {
    if (HostName.isIpLiteral(host) || !InternetDomainName.isValid(host)) {
      return null;
    }
    InternetDomainName name = InternetDomainName.from(host);
    if (!name.isUnderPublicSuffix()) {
      return null;
    }
    String parent = name.topPrivateDomain().toString();
    return parent.equals(host) ? null : parent;
  }

  /** Folds the proposed rules; {@code minHosts} is N. Keeps the others as they are. */
  static List<Proposed> fold(List<Proposed> rules, int minHosts) {
    Map<String, List<Proposed>> byParent = new LinkedHashMap<>();
    for (Proposed r : rules) {
      String parent = parentOf(r.host());
      if (parent != null) {
        byParent.computeIfAbsent(parent + " " + r.port(), k -> new ArrayList<>()).add(r);
      }
    }
    List<Proposed> out = new ArrayList<>();
    Map<String, Proposed> folded = new LinkedHashMap<>();
    for (Proposed r : rules) {
      String parent = parentOf(r.host());
      List<Proposed> siblings = parent == null ? null : byParent.get(parent + " " + r.port());
      if (siblings == null || siblings.size() < minHosts) {
        out.add(r);
        continue;
      }
      Proposed group = folded.computeIfAbsent(parent + " " + r.port(), k -> {
        Proposed g = new Proposed("**." + parent, r.port(), new Seen());
        out.add(g);
        return g;
      });
      group.seen().addAll(r.seen());
    }
    return out;
  }
}
