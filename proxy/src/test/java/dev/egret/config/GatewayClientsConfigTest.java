package dev.egret.config;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.identity.Client;
import dev.egret.identity.Clients;
import dev.egret.policy.Kind;
import dev.egret.policy.Mode;
import dev.egret.policy.Target;
import dev.egret.policy.Verdict;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code clients:} and {@code identity:}: the documented example compiles into per-client
 * allowlists, and every way an entry can be wrong is an error at its line and column.
 */
class GatewayClientsConfigTest {
  /** sha256("crm-token"), sha256("ops-token"). */
  static final String CRM_HASH =
      "sha256:0c4fb1e1bb3f4f7b36e8a3a2a9d8e7e0f8a0c1b2d3e4f5a6b7c8d9e0f1a2b3c4";
  static final String OPS_HASH =
      "sha256:1d5fb1e1bb3f4f7b36e8a3a2a9d8e7e0f8a0c1b2d3e4f5a6b7c8d9e0f1a2b3c4";

  @TempDir Path dir;

  private Path write(String yaml) throws Exception {
    Path f = dir.resolve("egret.yaml");
    Files.writeString(f, yaml);
    return f;
  }

  private List<String> errors(String yaml) throws Exception {
    return errors(yaml, Map.of());
  }

  private List<String> errors(String yaml, Map<String, String> env) throws Exception {
    Path f = write(yaml);
    try {
      ConfigCompiler.compile(f, Files.readAllBytes(f), env::get);
    } catch (ConfigException e) {
      return e.errors().stream().map(ConfigError::toString)
          .map(s -> s.substring(f.toString().length() + 1)).toList();
    }
    throw new AssertionError("config was accepted:\n" + yaml);
  }

  private static String gateway(String clients) {
    return "version: 1\nallow:\n  - host: shared.example\nclients:\n" + clients;
  }

  @Test
  void compilesClientsIntoTheirOwnAllowlists() throws Exception {
    EgretConfig c = ConfigCompiler.load(write("""
        version: 1
        mode: enforce
        deny:
          - host: evil.example
        allow: []
        identity:
          onMissing: ops
        clients:
          - name: crm-sync
            match:
              spiffe: ["spiffe://prod.example/ns/crm/sa/sync"]
              dns: [crm-sync.tasks.internal]
              tokens: ["%s"]
              addresses: [10.20.4.0/24]
            allow:
              - host: "**.salesforce.com"
          - name: ops
            mode: report
            allow:
              - host: ops.example
        """.formatted(CRM_HASH)));
    Clients clients = c.clients();
    assertThat(clients.gateway()).isTrue();
    assertThat(clients.usesTokens()).isTrue();
    assertThat(clients.onMissing().name()).isEqualTo("ops");
    Client crm = clients.named("crm-sync");
    assertThat(crm.spiffe()).containsExactly("spiffe://prod.example/ns/crm/sa/sync");
    assertThat(crm.tokens()).hasSize(1);
    assertThat(crm.allowlist().mode()).isEqualTo(Mode.ENFORCE);
    assertThat(clients.named("ops").allowlist().mode()).isEqualTo(Mode.REPORT);

    Target sf = new Target(Kind.TLS, "eu1.salesforce.com", 443, "GET", "/");
    var allowed = crm.allowlist().decide(sf);
    assertThat(allowed.verdict()).isEqualTo(Verdict.ALLOW);
    assertThat(allowed.client()).isEqualTo("crm-sync");
    // Another client's rules are not this one's.
    assertThat(crm.allowlist().decide(new Target(Kind.TLS, "ops.example", 443, "GET", "/"))
        .verdict()).isEqualTo(Verdict.DENY);
    // The top-level deny comes first, for every client.
    assertThat(crm.allowlist().decide(new Target(Kind.TLS, "evil.example", 443, "GET", "/"))
        .details()).contains("deny rule");
  }

  @Test
  void aClientsOwnRulesComeBeforeTheTopLevelOnes() throws Exception {
    EgretConfig c = ConfigCompiler.load(write("""
        version: 1
        allow:
          - host: api.example
            paths: [/public/**]
        clients:
          - name: a
            allow:
              - host: api.example
                paths: [/private/**]
        """));
    var a = c.clients().named("a").allowlist();
    var d = a.decide(new Target(Kind.TLS, "api.example", 443, "GET", "/private/x"));
    assertThat(d.verdict()).isEqualTo(Verdict.ALLOW);
    assertThat(d.rule().line()).isEqualTo(8);
    assertThat(a.decide(new Target(Kind.TLS, "api.example", 443, "GET", "/public/x")).rule()
        .line()).isEqualTo(3);
  }

  @Test
  void withoutClientsNothingChanges() throws Exception {
    EgretConfig c = ConfigCompiler.load(write("version: 1\nallow:\n  - host: a.example\n"));
    assertThat(c.clients()).isSameAs(Clients.NONE);
    assertThat(c.clients().gateway()).isFalse();
    assertThat(c.allowlist().decide(new Target(Kind.TLS, "a.example", 443, "GET", "/")).client())
        .isNull();
  }

  @Test
  void tokensMayComeFromEnvAndFiles() throws Exception {
    Files.writeString(dir.resolve("ops.sha256"), OPS_HASH + "\n");
    Path f = write(gateway("""
          - name: crm
            match: {tokens: ["${env:CRM_HASH}"]}
          - name: ops
            match: {tokens: ["${file:ops.sha256}"]}
        """));
    EgretConfig c = ConfigCompiler.compile(f, Files.readAllBytes(f),
        Map.of("CRM_HASH", CRM_HASH)::get);
    assertThat(c.clients().named("crm").tokens()).hasSize(1);
    assertThat(c.clients().named("ops").tokens()).hasSize(1);
    assertThat(c.referencedFiles()).contains(dir.resolve("ops.sha256"));
  }

  @Test
  void refusesNamesOutsideThePattern() throws Exception {
    assertThat(errors(gateway("""
          - name: CRM_Sync
          - name: ""
          - name: unidentified
          - name: %s
        """.formatted("a".repeat(64))))).containsExactly(
        "5:11: clients[0].name 'CRM_Sync' is not 1 to 63 of a-z, 0-9 and -; the name is a "
            + "metric label value and the log's identity",
        "6:11: clients[1].name '' is not 1 to 63 of a-z, 0-9 and -; the name is a metric label "
            + "value and the log's identity",
        "7:11: clients[2].name 'unidentified' is reserved ('unidentified' is the client label "
            + "of requests no client was found for, 'deny' a value of identity.onMissing)",
        "8:11: clients[3].name '" + "a".repeat(64) + "' is not 1 to 63 of a-z, 0-9 and -; the "
            + "name is a metric label value and the log's identity");
  }

  @Test
  void refusesDuplicateNames() throws Exception {
    assertThat(errors(gateway("""
          - name: crm
          - name: crm
        """))).containsExactly("6:11: clients[1].name 'crm' is already the name of clients[0]; "
        + "client names must be unique");
  }

  @Test
  void refusesAnUnknownClientInOnMissing() throws Exception {
    assertThat(errors("""
        version: 1
        allow:
          - host: a.example
        identity:
          onMissing: crm-sink
        clients:
          - name: crm-sync
        """)).containsExactly("5:14: identity.onMissing is 'crm-sink', which is not the name of "
        + "a client; write deny or one of: crm-sync");
  }

  @Test
  void refusesDuplicateTokensAcrossClients() throws Exception {
    List<String> errors = errors(gateway("""
          - name: crm
            match: {tokens: ["%s"]}
          - name: ops
            match: {tokens: ["${env:SAME}"]}
        """.formatted(CRM_HASH)), Map.of("SAME", CRM_HASH));
    assertThat(errors).containsExactly("8:22: clients[1].match.tokens[0] is the same token hash "
        + "as clients[0].match.tokens[0]; a token must name one client, so give each its own");
  }

  @Test
  void refusesBadHashesWithoutQuotingThem() throws Exception {
    List<String> errors = errors(gateway("""
          - name: crm
            match:
              tokens:
                - my-secret-token
                - sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789
                - sha256:abc
                - ${env:UNSET_TOKEN}
        """));
    assertThat(errors).hasSize(4);
    assertThat(errors.get(0)).startsWith("8:11: clients[0].match.tokens[0]: a token must be "
        + "written as its hash").endsWith("does not start with 'sha256:'");
    assertThat(errors.get(1)).startsWith("9:11: ").endsWith("not a lower-case hex digit");
    assertThat(errors.get(2)).startsWith("10:11: ").endsWith("has 3 characters after "
        + "'sha256:', not 64");
    assertThat(errors.get(3)).startsWith("11:11: ").contains("UNSET_TOKEN is not set");
    assertThat(String.join("\n", errors)).doesNotContain("my-secret-token").doesNotContain("ABCDEF");
  }

  @Test
  void refusesTheSameSpiffeIdForTwoClients() throws Exception {
    assertThat(errors(gateway("""
          - name: a
            match: {spiffe: ["spiffe://t/a"]}
          - name: b
            match: {spiffe: ["spiffe://t/a", "https://t/b"]}
        """))).containsExactly(
        "8:22: clients[1].match.spiffe[0] 'spiffe://t/a' is already at clients[0].match.spiffe[0]"
            + "; a certificate must name one client",
        "8:38: clients[1].match.spiffe[1]: 'https://t/b' is not a SPIFFE ID such as "
            + "spiffe://prod.example/ns/crm/sa/sync");
  }

  @Test
  void refusesBadAddressesModesAndKeys() throws Exception {
    assertThat(errors(gateway("""
          - name: a
            mode: audit
            match: {addresses: [10.0.0.0/33], certs: []}
        """))).containsExactly(
        "6:11: clients[0].mode is 'audit'; use one of: enforce, report",
        "7:25: clients[0].match.addresses[0]: " + cidrMessage("10.0.0.0/33"),
        "7:39: unknown key 'certs' in clients[0].match; accepted keys: "
            + String.join(", ", keysOfMatch()));
  }

  @Test
  void refusesMoreThan512Clients() throws Exception {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i <= Clients.MAX_CLIENTS; i++) {
      b.append("  - name: c").append(i).append('\n');
    }
    assertThat(errors(gateway(b.toString()))).containsExactly("5:3: clients lists 513 clients; "
        + "at most 512 (each is a value of the client metric label)");
  }

  @Test
  void anEmptyTopLevelAllowNeedsSomeClientRules() throws Exception {
    assertThat(ConfigCompiler.load(write("""
        version: 1
        allow: []
        clients:
          - name: a
            allow: [{host: a.example}]
        """)).clients().gateway()).isTrue();
    assertThat(errors("""
        version: 1
        allow: []
        clients:
          - name: a
        """)).containsExactly("2:8: neither the top-level allow nor any client's allow has a "
        + "rule, so Egret would deny everything; add a rule to one of them");
  }

  @Test
  void onMissingWithoutClientsIsAnError() throws Exception {
    assertThat(errors("""
        version: 1
        allow: [{host: a.example}]
        identity: {onMissing: deny}
        """)).containsExactly("3:23: identity.onMissing is set but the config has no clients: "
        + "list; identity applies to gateway clients only");
  }

  private static String cidrMessage(String cidr) {
    try {
      dev.egret.address.Cidr.parse(cidr);
    } catch (IllegalArgumentException e) {
      return e.getMessage();
    }
    throw new AssertionError(cidr + " parsed");
  }

  private static List<String> keysOfMatch() {
    return List.of("spiffe", "dns", "tokens", "addresses");
  }
}
