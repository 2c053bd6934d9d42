package dev.egret.enforce;

import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigException;
import dev.egret.config.EgretConfig;
import dev.egret.enforce.IptablesRules.Endpoint;
import dev.egret.address.HostName;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * {@code egret iptables --config FILE [--uid UID] [--ipv6] [--allow-endpoint IP:PORT]...}: prints
 * the rules for the namespace it runs in (it reads that namespace's /etc/resolv.conf). Pipe it
 * into {@code iptables-restore} (or {@code ip6tables-restore} with {@code --ipv6}).
 */
public final class IptablesCommand {
  private static final Path RESOLV_CONF = Path.of("/etc/resolv.conf");

  private IptablesCommand() {}

  /** Thrown for a bad argument; the launcher prints it with the usage text and exits 2. */
  public static final class BadArgument extends RuntimeException {
    BadArgument(String message) {
      super(message);
    }
  }

  /**
   * Runs the command; returns the exit code.
   *
   * @throws BadArgument for arguments the usage text should follow
   * @throws ConfigException for a config that does not load
   */
  public static int run(Deque<String> a, PrintStream out, PrintStream err) throws ConfigException {
    String config = null;
    int uid = IptablesRules.DEFAULT_UID;
    Family family = Family.IPV4;
    List<Endpoint> endpoints = new ArrayList<>();
    while (!a.isEmpty()) {
      String arg = a.pop();
      switch (arg) {
        case "--config" -> config = next(a, "--config needs a file");
        case "--uid" -> uid = uid(next(a, "--uid needs Egret's numeric uid, such as 10001"));
        case "--ipv6" -> family = Family.IPV6;
        case "--allow-endpoint" -> endpoints.add(endpoint(next(a,
            "--allow-endpoint needs IP:PORT, such as 169.254.170.2:80")));
        default -> throw new BadArgument("unexpected argument '" + arg + "'");
      }
    }
    if (config == null) {
      throw new BadArgument("iptables needs --config FILE");
    }
    EgretConfig c = ConfigCompiler.load(Path.of(config));
    if (c.listen().transparent().isEmpty()) {
      err.println("egret: " + config + " has no listen.transparent entries, so nothing would take"
          + " the redirected connections; add them under listen:, for example\n"
          + "  transparent:\n"
          + "    - {address: 127.0.0.1:3129, port: 443, protocol: tls}\n"
          + "    - {address: 127.0.0.1:3130, port: 80, protocol: http}");
      return 2;
    }
    List<InetAddress> resolvers;
    try {
      resolvers = Resolvers.read(RESOLV_CONF);
    } catch (IOException e) {
      err.println("egret: cannot read the resolvers: " + e.getMessage());
      return 1;
    }
    try {
      out.print(IptablesRules.render(c.listen().transparent(), uid, resolvers, endpoints, family,
          config + " (sha256 " + c.sha256() + ")"));
    } catch (IllegalArgumentException e) {
      err.println("egret: " + config + ": " + e.getMessage());
      return 2;
    }
    return 0;
  }

  private static int uid(String s) {
    // uid_t is 32 bits; 4294967295 is (uid_t) -1, "no user".
    if (!s.matches("[0-9]{1,10}") || Long.parseLong(s) > 4294967294L) {
      throw new BadArgument("--uid is '" + s + "'; give Egret's numeric uid, such as 10001");
    }
    return (int) Long.parseLong(s);
  }

  private static Endpoint endpoint(String s) {
    int colon = s.lastIndexOf(':');
    String host = colon > 0 ? s.substring(0, colon) : "";
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    String port = colon > 0 ? s.substring(colon + 1) : "";
    boolean literal = host.indexOf(':') >= 0 ? host.matches("[0-9A-Fa-f:.]+")
        : HostName.isDottedQuad(host);
    if (!literal || !port.matches("[0-9]{1,5}") || Integer.parseInt(port) < 1
        || Integer.parseInt(port) > 65535) {
      throw new BadArgument("--allow-endpoint is '" + s + "'; write IP:PORT such as"
          + " 169.254.170.2:80 (an address, not a name: the rule is fixed when it is installed)");
    }
    try {
      return new Endpoint(InetAddress.getByName(host.indexOf(':') >= 0 ? "[" + host + "]" : host),
          Integer.parseInt(port));
    } catch (UnknownHostException e) {
      throw new BadArgument("--allow-endpoint is '" + s + "': " + e.getMessage());
    }
  }

  private static String next(Deque<String> a, String problem) {
    if (a.isEmpty()) {
      throw new BadArgument(problem);
    }
    return a.pop();
  }
}
