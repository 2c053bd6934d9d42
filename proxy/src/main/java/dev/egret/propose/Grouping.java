package dev.egret.propose;

import com.google.common.net.InternetDomainName;
import dev.egret.address.HostName;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code --group N}: folds N or more hosts (on one port) into one {@code **.parent} rule, where
 * the parent is the deepest one that holds N of them: {@code x.api.example.com}, {@code
 * y.api.example.com} and {@code z.api.example.com} give {@code **.api.example.com}, not {@code
 * **.example.com}, which would also admit {@code www.example.com} and everything else there.
 *
 * <p>The fold goes bottom-up: a parent folds the hosts under it that no deeper parent folded,
 * once they are N or more; hosts left over stay rules of their own. A parent is never above the
 * host's registrable domain, which comes from the public suffix list that Guava's {@link
 * InternetDomainName} ships and Google keeps current, private registries included, so {@code
 * a.github.io} and {@code b.github.io} stay two rules ({@code github.io} is a public suffix: a
 * {@code **.github.io} rule would admit every GitHub Pages site), and so do hosts under {@code
 * co.uk} or {@code s3.amazonaws.com}.
 */
final class Grouping {
  private Grouping() {}

  /**
   * The registrable domain a host lies strictly under ({@code eu1.crm.example.com} gives {@code
   * example.com}), or null: for an IP literal, a name outside the list's suffixes, or a host that
   * is itself a registrable domain or a public suffix.
   */
  static String registrableParentOf(String host) {
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

  /**
   * Folds the proposed rules; {@code minHosts} is N. {@code rules} are in {@link
   * Propose#byLabels} order, so the hosts under any parent (on one port) are next to each other;
   * a folded rule takes the place of its first host. Keeps the others as they are.
   */
  static List<Proposed> fold(List<Proposed> rules, int minHosts) {
    // The parent each rule is folded into, by index; null: a rule of its own.
    String[] into = new String[rules.size()];
    Map<Integer, List<Integer>> byPort = new LinkedHashMap<>();
    for (int i = 0; i < rules.size(); i++) {
      byPort.computeIfAbsent(rules.get(i).port(), k -> new ArrayList<>()).add(i);
    }
    for (List<Integer> port : byPort.values()) {
      // By registrable domain, not by name: under amazonaws.com lie the public suffix
      // s3.amazonaws.com and its buckets, each a registrable domain of its own.
      Map<String, List<Integer>> byDomain = new LinkedHashMap<>();
      for (int i : port) {
        String domain = registrableParentOf(rules.get(i).host());
        if (domain != null) {
          byDomain.computeIfAbsent(domain, k -> new ArrayList<>()).add(i);
        }
      }
      byDomain.forEach((domain, members) -> {
        String[] hosts = members.stream().map(i -> rules.get(i).host()).toArray(String[]::new);
        String[] parents = new String[hosts.length];
        new Fold(hosts, parents, minHosts).under(domain, 0, hosts.length);
        for (int j = 0; j < hosts.length; j++) {
          into[members.get(j)] = parents[j];
        }
      });
    }
    List<Proposed> out = new ArrayList<>();
    Map<String, Proposed> folded = new LinkedHashMap<>();
    for (int i = 0; i < rules.size(); i++) {
      Proposed r = rules.get(i);
      if (into[i] == null) {
        out.add(r);
        continue;
      }
      Proposed group = folded.computeIfAbsent(into[i] + " " + r.port(), k -> {
        Proposed g = new Proposed("**." + k.substring(0, k.indexOf(' ')), r.port(), new Seen());
        out.add(g);
        return g;
      });
      group.seen().fold(r.host(), r.seen());
    }
    return out;
  }

  /** {@code host} lies strictly under {@code parent}. */
  static boolean under(String host, String parent) {
    return host.length() > parent.length() + 1 && host.endsWith(parent)
        && host.charAt(host.length() - parent.length() - 1) == '.';
  }

  /**
   * The hosts of one registrable domain, sorted by labels. No parent between them and the domain
   * is a public suffix: that suffix would have made a deeper registrable domain of theirs.
   */
  private record Fold(String[] hosts, String[] parents, int minHosts) {
    /**
     * Folds what can be folded in {@code [from, to)}, every host strictly under {@code parent};
     * returns how many hosts there are left unfolded.
     */
    int under(String parent, int from, int to) {
      int left = 0;
      int i = from;
      while (i < to) {
        String child = childOf(hosts[i], parent);
        int end = i;
        if (hosts[end].equals(child)) {
          end++; // the child itself: never under a "**." of its own, left to the parent
          left++;
        }
        int deeper = end;
        while (end < to && Grouping.under(hosts[end], child)) {
          end++;
        }
        if (end > deeper) {
          left += under(child, deeper, end);
        }
        i = end;
      }
      if (left >= minHosts) {
        for (int j = from; j < to; j++) {
          if (parents[j] == null) {
            parents[j] = parent;
          }
        }
        return 0;
      }
      return left;
    }

    /** {@code a.b.example.com} under {@code example.com} is in {@code b.example.com}. */
    private static String childOf(String host, String parent) {
      int dot = host.lastIndexOf('.', host.length() - parent.length() - 2);
      return host.substring(dot + 1);
    }
  }
}
