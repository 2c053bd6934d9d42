package dev.egret.config;

import dev.egret.config.EgretConfig.HostPort;
import dev.egret.config.EgretConfig.Protocol;
import dev.egret.config.EgretConfig.Transparent;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code listen.transparent}: the listeners an iptables redirect sends connections to. Each
 * entry is checked on its own (address, destination port, protocol) and against the others and
 * the proxy and admin listeners, because two listeners on one address cannot both bind, and two
 * entries for one destination port would make the redirect ambiguous.
 */
final class Transparents {
  private static final Set<String> ENTRY = new java.util.LinkedHashSet<>(List.of("address", "port", "protocol"));
  private static final Set<String> WILDCARDS = Set.of("0.0.0.0", "::");

  private Transparents() {}

  /** Compiles the list under {@code listen}; absent gives an empty list. */
  static List<Transparent> compile(Fields listen, HostPort proxy, HostPort admin,
      ConfigErrors errors) {
    List<YamlNode> items = listen.list("transparent");
    if (items == null) {
      return List.of();
    }
    List<Transparent> out = new ArrayList<>();
    List<YamlNode> at = new ArrayList<>();
    for (int i = 0; i < items.size(); i++) {
      String where = "listen.transparent[" + i + "]";
      YamlNode item = items.get(i);
      Fields f = Fields.of(item, where, ENTRY, errors);
      if (f == null) {
        continue;
      }
      String addressText = f.requiredString("address");
      HostPort address = addressText == null ? null
          : hostPort(f.get("address"), addressText, where + ".address", errors);
      if (address != null && address.port() == 0) {
        errors.add(f.get("address"), where + ".address has port 0; a redirect needs a fixed port,"
            + " such as 127.0.0.1:3129");
        address = null;
      }
      Integer port = null;
      if (f.get("port") == null) {
        errors.add(item, where + " needs 'port', the destination port it stands for (443 for tls, 80 for http)");
      } else {
        port = f.integer("port", 1, 65535, null);
      }
      Protocol protocol = null;
      if (f.get("protocol") == null) {
        errors.add(item, where + " needs 'protocol: tls' (destination from the ClientHello's SNI)"
            + " or 'protocol: http' (destination from Host)");
      } else {
        String p = f.choice("protocol", List.of("tls", "http"), null);
        protocol = p == null ? null : Protocol.valueOf(p.toUpperCase(Locale.ROOT));
      }
      if (address == null || port == null || protocol == null) {
        continue;
      }
      YamlNode addressNode = f.get("address");
      String clash = clash(address, proxy, "listen.proxy");
      if (clash == null) {
        clash = clash(address, admin, "listen.admin");
      }
      for (int j = 0; clash == null && j < out.size(); j++) {
        clash = clash(address, out.get(j).address(), "listen.transparent[" + j + "] (line "
            + at.get(j).line() + ")");
      }
      if (clash != null) {
        errors.add(addressNode, where + ".address " + address + " is already used by " + clash
            + "; give each listener its own port");
        continue;
      }
      for (int j = 0; j < out.size(); j++) {
        if (out.get(j).port() == port) {
          errors.add(f.get("port"), where + ".port " + port + " is already taken by"
              + " listen.transparent[" + j + "] (line " + at.get(j).line() + "); one listener per"
              + " destination port, or the redirect would be ambiguous");
          port = null;
          break;
        }
      }
      if (port == null) {
        continue;
      }
      out.add(new Transparent(address, port, protocol));
      at.add(item);
    }
    return out;
  }

  /** Names {@code other} when {@code address} could not bind beside it, else null. */
  private static String clash(HostPort address, HostPort other, String name) {
    if (other.port() == 0 || other.port() != address.port()) {
      return null;
    }
    boolean sameHost = other.host().equalsIgnoreCase(address.host())
        || WILDCARDS.contains(other.host()) || WILDCARDS.contains(address.host());
    return sameHost ? name + " (" + other + ")" : null;
  }

  /** Parses HOST:PORT (IPv6 in brackets); reports and returns null when malformed. */
  static HostPort hostPort(YamlNode n, String s, String what, ConfigErrors errors) {
    if (s == null) {
      return null;
    }
    int colon = s.lastIndexOf(':');
    String host = colon > 0 ? s.substring(0, colon) : "";
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    String port = colon > 0 ? s.substring(colon + 1) : "";
    if (host.isEmpty() || !port.matches("[0-9]{1,5}") || Integer.parseInt(port) > 65535) {
      errors.add(n, what + " is '" + s + "'; write HOST:PORT such as 127.0.0.1:3128"
          + " (port 0 picks a free port)");
      return null;
    }
    return new HostPort(host, Integer.parseInt(port));
  }
}
