package dev.egret.config;

import dev.egret.address.Cidr;
import dev.egret.identity.Client;
import dev.egret.identity.Clients;
import dev.egret.policy.Allowlist;
import dev.egret.policy.HostPattern;
import dev.egret.policy.Mode;
import dev.egret.policy.Rule;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.regex.Pattern;

/**
 * Compiles {@code clients:} and {@code identity:} into {@link Clients}: names checked against
 * {@code [a-z0-9-]{1,63}} and unique, token hashes parsed (inline or through {@code ${env:}} /
 * {@code ${file:}}) and unique across clients, SPIFFE IDs and DNS names unique across clients,
 * CIDRs parsed, each client's {@code allow} compiled as the top-level rules are, and {@code
 * identity.onMissing} resolved to a client. Kept apart from {@link ConfigCompiler} as {@link
 * Transparents} is; messages never quote a token value.
 */
final class GatewayClients {
  private static final Pattern NAME = Pattern.compile("[a-z0-9-]{1,63}");
  // Ordered: the "accepted keys" of an error message list them as the docs do.
  private static final Set<String> CLIENT_KEYS =
      new LinkedHashSet<>(List.of("name", "match", "mode", "allow"));
  private static final Set<String> MATCH_KEYS =
      new LinkedHashSet<>(List.of("spiffe", "dns", "tokens", "addresses"));

  private GatewayClients() {}

  /**
   * @param top the config's top-level fields
   * @param deny the top-level deny patterns
   * @param topRules the compiled top-level allow rules
   * @param mode the top-level mode, a client's default
   * @param routing the top-level routing, which every client's allowlist shares
   * @param rule compiles one rule node at a path ("clients[0].allow[1]"), null after an error
   * @param headers resolves {@code ${env:}} and {@code ${file:}}
   * @return {@link Clients#NONE} without {@code clients:}
   */
  static Clients compile(Fields top, List<HostPattern> deny, List<Rule> topRules, Mode mode,
      dev.egret.policy.Routing routing, BiFunction<YamlNode, String, Rule> rule,
      InjectedHeaders headers) {
    ConfigErrors errors = top.errors();
    List<YamlNode> items = top.list("clients");
    YamlNode identityNode = top.get("identity");
    Fields identity = identityNode == null ? null
        : Fields.of(identityNode, "identity", Set.of("onMissing"), errors);
    String onMissingName = identity == null ? null : identity.string("onMissing", null);
    if (items == null) {
      if (identity != null && identity.get("onMissing") != null) {
        errors.add(identity.get("onMissing"), "identity.onMissing is set but the config has no "
            + "clients: list; identity applies to gateway clients only");
      }
      return Clients.NONE;
    }
    if (items.isEmpty()) {
      errors.add(top.get("clients"), "clients is empty; leave it out for a sidecar, or list at "
          + "least one client");
      return Clients.NONE;
    }
    if (items.size() > Clients.MAX_CLIENTS) {
      errors.add(top.get("clients"), "clients lists " + items.size() + " clients; at most "
          + Clients.MAX_CLIENTS + " (each is a value of the client metric label)");
    }
    List<Client> clients = new ArrayList<>();
    Map<String, String> names = new HashMap<>();
    Map<ByteBuffer, String> tokens = new HashMap<>();
    Map<String, String> spiffes = new HashMap<>();
    Map<String, String> dnsNames = new HashMap<>();
    boolean someRules = false;
    for (int i = 0; i < items.size(); i++) {
      String where = "clients[" + i + "]";
      Fields f = Fields.of(items.get(i), where, CLIENT_KEYS, errors);
      if (f == null) {
        continue;
      }
      String name = f.requiredString("name");
      YamlNode nameNode = f.get("name");
      if (name != null) {
        if (!NAME.matcher(name).matches()) {
          errors.add(nameNode, where + ".name '" + name + "' is not 1 to 63 of a-z, 0-9 and -; "
              + "the name is a metric label value and the log's identity");
          name = null;
        } else if (name.equals(Clients.UNIDENTIFIED) || name.equals("deny")) {
          errors.add(nameNode, where + ".name '" + name + "' is reserved ('unidentified' is the "
              + "client label of requests no client was found for, 'deny' a value of "
              + "identity.onMissing)");
          name = null;
        } else if (names.containsKey(name)) {
          errors.add(nameNode, where + ".name '" + name + "' is already the name of "
              + names.get(name) + "; client names must be unique");
          name = null;
        } else {
          names.put(name, where);
        }
      }
      Set<String> spiffe = new LinkedHashSet<>();
      Set<String> dns = new LinkedHashSet<>();
      List<byte[]> digests = new ArrayList<>();
      List<Cidr> addresses = new ArrayList<>();
      YamlNode matchNode = f.get("match");
      Fields match = matchNode == null ? null
          : Fields.of(matchNode, where + ".match", MATCH_KEYS, errors);
      if (match != null) {
        unique(match, "spiffe", where, spiffes, spiffe, s -> {
          if (!s.startsWith("spiffe://") || s.length() <= 9) {
            throw new IllegalArgumentException("'" + s + "' is not a SPIFFE ID such as "
                + "spiffe://prod.example/ns/crm/sa/sync");
          }
          return s;
        });
        unique(match, "dns", where, dnsNames, dns, s -> {
          if (!s.matches("[A-Za-z0-9*]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")) {
            throw new IllegalArgumentException("'" + s + "' is not a DNS name");
          }
          return s.toLowerCase(Locale.ROOT);
        });
        List<YamlNode> tokenItems = match.list("tokens");
        if (tokenItems != null) {
          for (int t = 0; t < tokenItems.size(); t++) {
            String what = where + ".match.tokens[" + t + "]";
            YamlNode node = tokenItems.get(t);
            String written = match.string(node, what);
            String value = written == null ? null : headers.reference(written, node, what);
            if (value == null) {
              continue;
            }
            byte[] digest;
            try {
              digest = Clients.tokenDigest(value);
            } catch (IllegalArgumentException e) {
              errors.add(node, what + ": " + e.getMessage());
              continue;
            }
            String owner = tokens.putIfAbsent(ByteBuffer.wrap(digest), what);
            if (owner != null) {
              errors.add(node, what + " is the same token hash as " + owner + "; a token must "
                  + "name one client, so give each its own");
              continue;
            }
            digests.add(digest);
          }
        }
        List<Cidr> cidrs = match.stringList("addresses", Cidr::parse);
        if (cidrs != null) {
          addresses.addAll(cidrs);
        }
      }
      Mode clientMode = mode;
      String m = f.choice("mode", List.of("enforce", "report"), null);
      if (m != null) {
        clientMode = Mode.valueOf(m.toUpperCase(Locale.ROOT));
      }
      List<Rule> own = new ArrayList<>();
      List<YamlNode> allow = f.list("allow");
      if (allow != null) {
        for (int r = 0; r < allow.size(); r++) {
          Rule compiled = rule.apply(allow.get(r), where + ".allow[" + r + "]");
          if (compiled != null) {
            own.add(compiled);
          }
        }
        someRules |= !allow.isEmpty();
      }
      if (name != null) {
        List<Rule> rules = new ArrayList<>(own);
        rules.addAll(topRules);
        clients.add(new Client(name, spiffe, dns, digests, addresses,
            new Allowlist(deny, rules, clientMode, routing, name), f.node().line()));
      }
    }
    if (!someRules && topRules.isEmpty()) {
      errors.add(top.get("allow") != null ? top.get("allow") : top.get("clients"), "neither the top-level allow nor any client's allow has a "
          + "rule, so Egret would deny everything; add a rule to one of them");
    }
    Client onMissing = null;
    if (onMissingName != null && !onMissingName.equals("deny")) {
      onMissing = clients.stream().filter(c -> c.name().equals(onMissingName)).findFirst()
          .orElse(null);
      if (onMissing == null) {
        errors.add(identity.get("onMissing"), "identity.onMissing is '" + onMissingName
            + "', which is not the name of a client; write deny or one of: "
            + String.join(", ", names.keySet().stream().sorted().limit(10).toList())
            + (names.size() > 10 ? ", ..." : ""));
      }
    }
    return new Clients(clients.size() > Clients.MAX_CLIENTS
        ? clients.subList(0, Clients.MAX_CLIENTS) : clients, onMissing);
  }

  /** A list of strings unique across clients: {@code seen} maps each to where it was first. */
  private static void unique(Fields match, String key, String where, Map<String, String> seen,
      Set<String> into, java.util.function.Function<String, String> parse) {
    List<YamlNode> items = match.list(key);
    if (items == null) {
      return;
    }
    for (int i = 0; i < items.size(); i++) {
      String what = where + ".match." + key + "[" + i + "]";
      String s = match.string(items.get(i), what);
      if (s == null) {
        continue;
      }
      String value;
      try {
        value = parse.apply(s);
      } catch (IllegalArgumentException e) {
        match.errors().add(items.get(i), what + ": " + e.getMessage());
        continue;
      }
      String first = seen.putIfAbsent(value, what);
      if (first != null) {
        match.errors().add(items.get(i), what + " '" + s + "' is already at " + first
            + "; a certificate must name one client");
        continue;
      }
      into.add(value);
    }
  }
}
