package dev.egret.identity;

import dev.egret.address.Cidr;
import dev.egret.policy.Allowlist;
import java.util.List;
import java.util.Set;

/**
 * One compiled {@code clients:} entry: how it is recognised and the allowlist that decides its
 * requests (the top-level {@code deny}, then its own {@code allow} rules, then the top-level
 * ones, under its own {@code mode}).
 *
 * @param name {@code [a-z0-9-]{1,63}}: the {@code client} metric label and the log's {@code
 *     identity}
 * @param spiffe URI SANs of a client certificate that name this client
 * @param dns DNS SANs of a client certificate that name this client
 * @param tokens SHA-256 digests (32 bytes each) of the tokens this client presents; never the
 *     tokens themselves
 * @param addresses client addresses that name this client when nothing stronger does
 * @param allowlist what this client may reach
 * @param line where the entry is in the config, for messages
 */
public record Client(String name, Set<String> spiffe, Set<String> dns, List<byte[]> tokens,
    List<Cidr> addresses, Allowlist allowlist, int line) {
  public Client {
    spiffe = Set.copyOf(spiffe);
    dns = Set.copyOf(dns);
    tokens = tokens.stream().map(byte[]::clone).toList();
    addresses = List.copyOf(addresses);
  }

  @Override
  public String toString() {
    return "client '" + name + "'"; // never the token digests
  }
}
