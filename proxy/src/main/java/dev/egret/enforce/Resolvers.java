package dev.egret.enforce;

import dev.egret.address.HostName;
import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The {@code nameserver} lines of a resolv.conf: the only addresses apps may send DNS to once the
 * rules are in. Read from the namespace the rules are for, which is why {@code egret iptables}
 * runs inside the pod or task (an init container), not on the node.
 */
public final class Resolvers {
  private static final Pattern LITERAL = Pattern.compile("[0-9A-Fa-f.:]+");

  private Resolvers() {}

  /** Parses {@code file}; a line that is not an IP literal is an error naming it. */
  public static List<InetAddress> read(Path file) throws IOException {
    List<InetAddress> out = new ArrayList<>();
    int lineNo = 0;
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      lineNo++;
      String t = line.strip();
      if (!t.startsWith("nameserver")) {
        continue;
      }
      String[] words = t.split("\\s+");
      if (words.length < 2 || !words[0].equals("nameserver")) {
        continue;
      }
      String address = words[1];
      // A scoped IPv6 resolver (fe80::1%eth0) is written with its zone; the rule needs none.
      int zone = address.indexOf('%');
      String literal = zone >= 0 ? address.substring(0, zone) : address;
      // Only numeric literals: InetAddress parses a bracketed IPv6 literal or a dotted quad
      // without DNS, and anything else must not be resolved here.
      boolean numeric = literal.indexOf(':') >= 0 ? LITERAL.matcher(literal).matches()
          : HostName.isDottedQuad(literal);
      if (!numeric) {
        throw new IOException(file + ":" + lineNo + ": nameserver '" + address
            + "' is not an IP address");
      }
      try {
        out.add(InetAddress.getByName(literal.indexOf(':') >= 0 ? "[" + literal + "]" : literal));
      } catch (UnknownHostException e) {
        throw new IOException(file + ":" + lineNo + ": nameserver '" + address
            + "' is not an IP address");
      }
    }
    return out;
  }

  static boolean belongsTo(InetAddress a, Family family) {
    return (a instanceof Inet6Address) == (family == Family.IPV6);
  }
}
