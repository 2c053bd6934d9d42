package dev.egret.config;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.policy.HeaderRules;
import dev.egret.policy.Rule;
import io.vertx.core.MultiMap;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A rule's {@code headers:} and {@code tunnel:} keys: how values resolve from {@code ${env:}} and
 * {@code ${file:}}, every way they fail (with line and column), and that no message, no {@code
 * toString()} and no exception ever carries a resolved value.
 */
class InjectedHeadersConfigTest {
  private static final String ENV_SECRET = "env-secret-5b1f0e";
  private static final String FILE_SECRET = "file-secret-9c3d27";
  private static final Map<String, String> ENV = Map.of("CRM_TOKEN", ENV_SECRET, "EMPTY", "");

  @TempDir Path dir;

  private Path file;

  private EgretConfig compile(String yaml) throws ConfigException {
    file = dir.resolve("egret.yaml");
    try {
      Files.writeString(file, yaml);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return ConfigCompiler.compile(file, yaml.getBytes(StandardCharsets.UTF_8), ENV::get);
  }

  private List<String> errors(String yaml) {
    try {
      compile(yaml);
    } catch (ConfigException e) {
      // Secrets that were resolved before the failure must not be in the message either.
      assertThat(e.getMessage()).doesNotContain(ENV_SECRET).doesNotContain(FILE_SECRET);
      return e.errors().stream().map(ConfigError::toString)
          .map(s -> s.substring(file.toString().length() + 1)).toList();
    }
    throw new AssertionError("config was accepted: " + yaml);
  }

  private void secretFile(String name, String content) throws Exception {
    Path p = dir.resolve(name);
    Files.createDirectories(p.getParent());
    Files.writeString(p, content);
  }

  private static String rule(String headers) {
    return "version: 1\nallow:\n  - host: crm.partner.example\n    headers: " + headers + "\n";
  }

  @Test
  void resolvesEnvAndFileReferencesRelativeToTheConfigFolder() throws Exception {
    secretFile("secrets/partner-token", FILE_SECRET + "\n");
    EgretConfig c = compile(rule("{set: {Authorization: \"Bearer ${file:secrets/partner-token}\", "
        + "X-Crm-Token: \"${env:CRM_TOKEN}\", X-Api-Version: \"2024-01\"}, remove: [Cookie]}"));
    HeaderRules h = c.allowlist().rules().get(0).headers();
    MultiMap headers = MultiMap.caseInsensitiveMultiMap()
        .add("authorization", "Bearer the-client's-own").add("Cookie", "session=1")
        .add("COOKIE", "other=2").add("Accept", "application/json");
    h.apply(headers);
    // The file's trailing newline is dropped; the client's own value is replaced, not joined.
    assertThat(headers.getAll("Authorization")).containsExactly("Bearer " + FILE_SECRET);
    assertThat(headers.get("X-Crm-Token")).isEqualTo(ENV_SECRET);
    assertThat(headers.get("X-Api-Version")).isEqualTo("2024-01");
    assertThat(headers.contains("Cookie")).isFalse();
    assertThat(headers.get("Accept")).isEqualTo("application/json");
    assertThat(h.describe()).containsExactly(
        "Authorization: <set from file:secrets/partner-token>",
        "X-Crm-Token: <set from env:CRM_TOKEN>",
        "X-Api-Version: <set in the config>",
        "Cookie: <removed>");
    assertThat(h.refusesTunnels()).isTrue();
    assertThat(c.referencedFiles()).containsExactly(
        dir.resolve("secrets/partner-token").toAbsolutePath().normalize());
  }

  @Test
  void noToStringOfAnyConfigObjectCarriesASecret() throws Exception {
    secretFile("token", FILE_SECRET);
    EgretConfig c = compile(rule("{set: {Authorization: \"${file:token}\", X-Crm: \"${env:CRM_TOKEN}\"}}"));
    Rule r = c.allowlist().rules().get(0);
    for (Object o : List.of(c, r, r.headers(), c.allowlist(), c.inputs())) {
      assertThat(o.toString()).doesNotContain(ENV_SECRET).doesNotContain(FILE_SECRET);
    }
    assertThat(r.toString()).contains("Authorization: <set from file:token>");
  }

  @Test
  void aMissingVariableIsAnErrorAtTheValue() {
    assertThat(errors(rule("{set: {Authorization: \"Bearer ${env:NOT_SET_ANYWHERE}\"}}")))
        .containsExactly("4:36: allow[0].headers.set.Authorization: the environment variable "
            + "NOT_SET_ANYWHERE is not set; hand it to Egret's container (a Kubernetes Secret, "
            + "ECS secrets) or use ${file:PATH}");
  }

  @Test
  void unreadableFilesAreErrorsWithLineAndColumn() throws Exception {
    Files.createDirectories(dir.resolve("a-folder"));
    Files.write(dir.resolve("huge"), new byte[(1 << 20) + 1]);
    List<String> e = errors("""
        version: 1
        allow:
          - host: crm.partner.example
            headers:
              set:
                X-Missing: "${file:secrets/nope}"
                X-Folder: "${file:a-folder}"
                X-Huge: "${file:huge}"
                X-Empty: "${file:}"
        """);
    assertThat(e).hasSize(4);
    assertThat(e.get(0)).startsWith("6:20: allow[0].headers.set.X-Missing: cannot read ")
        .contains("secrets/nope").contains("does not exist");
    assertThat(e.get(1)).startsWith("7:19: allow[0].headers.set.X-Folder: ").contains("is not a regular file");
    assertThat(e.get(2)).startsWith("8:17: allow[0].headers.set.X-Huge: ").contains("larger than 1 MiB");
    assertThat(e.get(3)).startsWith("9:18: allow[0].headers.set.X-Empty: ${file:} names no file");
  }

  @Test
  void aValueThatIsNotOneLineIsRefusedWithoutShowingIt() throws Exception {
    // Two lines would let a file smuggle a second header (or a request) onto the wire.
    secretFile("two-lines", FILE_SECRET + "\nX-Injected: yes\n");
    secretFile("blank", "\n");
    List<String> e = errors(rule("{set: {Authorization: \"${file:two-lines}\", X-Blank: \"${file:blank}\", "
        + "X-Env: \"${env:EMPTY}\"}}"));
    assertThat(e).containsExactly(
        "4:36: allow[0].headers.set.Authorization: the value from file:two-lines has a line break "
            + "at character 19 of 34; a header value is one line of printable ASCII (only one "
            + "trailing newline of a file is dropped)",
        "4:66: allow[0].headers.set.X-Blank: the value from file:blank is empty; a blank "
            + "credential is surely a mistake",
        "4:90: allow[0].headers.set.X-Env: the value from env:EMPTY is empty; a blank credential "
            + "is surely a mistake");
  }

  @Test
  void headersEgretOwnsCannotBeSetOrRemoved() {
    List<String> e = errors(rule("{set: {Host: evil.example, X-A: a, x-a: b, \"Bad Name\": c}, "
        + "remove: [Content-Length, X-A]}"));
    assertThat(e).hasSize(5);
    assertThat(e.get(0)).contains("set.Host: Egret writes or drops 'Host' itself");
    assertThat(e.get(1)).contains("set.x-a: header 'x-a' is named twice");
    assertThat(e.get(2)).contains("'Bad Name' is not a header name");
    assertThat(e.get(3)).contains("remove[0]: Egret writes or drops 'Content-Length' itself");
    assertThat(e.get(4)).contains("remove[1]: header 'X-A' is named twice");
  }

  @Test
  void malformedReferencesAndShapesAreErrors() {
    assertThat(errors(rule("{set: {A: \"${vault:x}\", B: \"${env:X\", C: \"${env:1X}\", D: 42}}")))
        .containsExactly(
            "4:24: allow[0].headers.set.A: '${vault:x}' is not a reference Egret knows; write "
                + "${env:NAME} or ${file:PATH}",
            "4:41: allow[0].headers.set.B: '${' at character 1 is not closed with '}'; write "
                + "${env:NAME} or ${file:PATH}",
            "4:55: allow[0].headers.set.C: '1X' is not an environment variable name (letters, "
                + "digits and _, not starting with a digit)",
            "4:71: allow[0].headers.set.D must be text, not the number 42");
    assertThat(errors(rule("{}"))).singleElement().asString().contains("has neither 'set' nor 'remove'");
    assertThat(errors(rule("{set: [Authorization]}"))).singleElement().asString()
        .contains("headers.set must be a mapping of header names to values");
    assertThat(errors("version: 1\nallow:\n  - host: a.example\n    tunnel: yes-please\n"))
        .singleElement().asString().isEqualTo("4:13: allow[0].tunnel is 'yes-please'; use one of: allow");
  }

  @Test
  void tunnelAllowLetsAHeaderRuleTunnel() throws Exception {
    HeaderRules h = compile(rule("{set: {X-A: a}}") + "    tunnel: allow\n")
        .allowlist().rules().get(0).headers();
    assertThat(h.refusesTunnels()).isFalse();
    assertThat(h.tunnelAllowed()).isTrue();
  }

  @Test
  void referencedFilesListsPemFilesAndSecretsAndSeesAChange() throws Exception {
    var ca = dev.egret.testing.TestPki.rootCa("Named Files Root").issue();
    Path caPem = ca.writePem(dir.resolve("certs")).cert();
    secretFile("token", "v1\n");
    EgretConfig c = compile("""
        version: 1
        tls: {trust: [system, certs/%s]}
        allow:
          - host: crm.partner.example
            headers: {set: {X-Token: "${file:token}"}}
        """.formatted(caPem.getFileName()));
    assertThat(c.referencedFiles()).containsExactlyInAnyOrder(caPem.toAbsolutePath().normalize(),
        dir.resolve("token").toAbsolutePath().normalize());
    assertThat(new ConfigWatch(c.inputs()).changed()).isFalse();
    Files.writeString(dir.resolve("token"), "v2\n");
    assertThat(new ConfigWatch(c.inputs()).changed()).isTrue();
    EgretConfig again = ConfigCompiler.compile(file, Files.readAllBytes(file), ENV::get);
    assertThat(again.sha256()).isEqualTo(c.sha256());
    assertThat(again.sameSources(c)).isFalse();
  }
}
