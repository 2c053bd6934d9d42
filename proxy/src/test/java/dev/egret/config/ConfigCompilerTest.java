package dev.egret.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every config error kind, with the line and column it points at; and the defaults. */
class ConfigCompilerTest {
  @TempDir Path dir;

  private Path write(String yaml) throws Exception {
    Path f = dir.resolve("egret.yaml");
    Files.writeString(f, yaml);
    return f;
  }

  private List<String> errors(String yaml) throws Exception {
    Path f = write(yaml);
    try {
      ConfigCompiler.load(f);
    } catch (ConfigException e) {
      return e.errors().stream().map(ConfigError::toString)
          .map(s -> s.substring(f.toString().length() + 1)).toList();
    }
    throw new AssertionError("config was accepted: " + yaml);
  }

  @Test
  void theShippedDefaultConfigLoads() throws Exception {
    EgretConfig c = ConfigCompiler.load(Path.of("../config/egret.yaml"));
    assertThat(c.listen().proxy().toString()).isEqualTo("127.0.0.1:3128");
    assertThat(c.listen().admin().toString()).isEqualTo("127.0.0.1:9901");
    assertThat(c.allowlist().rules()).isNotEmpty();
    assertThat(c.sha256()).hasSize(64);
  }

  @Test
  void appliesTheSpecDefaults() throws Exception {
    EgretConfig c = ConfigCompiler.load(write("version: 1\nallow:\n  - host: a.example\n"));
    assertThat(c.timeouts().connect()).isEqualTo(Duration.ofSeconds(5));
    assertThat(c.timeouts().handshake()).isEqualTo(Duration.ofSeconds(5));
    assertThat(c.timeouts().response()).isEqualTo(Duration.ofSeconds(30));
    assertThat(c.timeouts().idle()).isEqualTo(Duration.ofSeconds(60));
    assertThat(c.limits().maxConnections()).isEqualTo(4096);
    assertThat(c.limits().maxConnectionsPerDestination()).isEqualTo(256);
    assertThat(c.limits().maxHeaderBytes()).isEqualTo(16384);
    assertThat(c.limits().maxAdminConnections()).isEqualTo(64);
    assertThat(c.tlsBaseline().protocols()).containsExactlyInAnyOrder("TLSv1.2", "TLSv1.3");
    assertThat(c.allowlist().rules().get(0).ports()).containsExactly(443);
  }

  @Test
  void acceptsEveryKeyOfTheSpecExample() throws Exception {
    Path certs = dir.resolve("certs");
    var ca = dev.egret.testing.TestPki.rootCa("Partner Root").issue();
    var me = ca.leaf("client.egret.test").issue();
    Path caPem = ca.writePem(certs).cert();
    var mePem = me.writePem(certs);
    String pin = "sha256/" + "A".repeat(43) + "=";
    EgretConfig c = ConfigCompiler.load(write("""
        version: 1
        listen: {proxy: 127.0.0.1:3128, admin: 127.0.0.1:9901}
        mode: report
        plaintext: block
        tls: {minVersion: TLSv1.3, trust: [system]}
        addresses: {deny: [default, 100.100.0.0/16], allow: [127.0.0.1/32]}
        timeouts: {connect: 250ms, handshake: 5s, response: 2m, idle: 60s}
        allow:
          - host: api.stripe.com
          - host: "**.salesforce.com"
            ports: [443]
          - host: "ec2.*.amazonaws.com"
          - host: hooks.slack.com
            methods: [POST]
            paths: ["/services/*"]
            pins: ["%s"]
          - host: legacy.partner.example
            plaintext: upgrade
            upgradePort: 8443
            trust: [certs/%s]
            clientCert: {cert: certs/%s, key: certs/%s}
          - host: crm.internal.example
            allowAddresses: [10.20.0.0/16]
        limits: {maxConnections: 10, maxConnectionsPerDestination: 2, maxHeaderBytes: 8192, maxAdminConnections: 8}
        deny:
          - host: "*.pastebin.com"
        """.formatted(pin, caPem.getFileName(), mePem.cert().getFileName(), mePem.key().getFileName())));
    assertThat(c.timeouts().connect()).isEqualTo(Duration.ofMillis(250));
    assertThat(c.timeouts().response()).isEqualTo(Duration.ofMinutes(2));
    assertThat(c.tlsBaseline().protocols()).containsExactly("TLSv1.3");
    assertThat(c.allowlist().rules()).hasSize(6);
    var legacy = c.allowlist().rules().get(4);
    assertThat(legacy.tls().hasClientCertificate()).isTrue();
    assertThat(legacy.upgradePort()).isEqualTo(8443);
    assertThat(c.allowlist().rules().get(3).tls().pins()).containsExactly(pin);
    assertThat(c.allowlist().rules().get(5).allowAddresses()).hasSize(1);
    assertThat(c.limits().maxAdminConnections()).isEqualTo(8);
  }

  @Test
  void reportsEveryErrorAtOnceWithLineAndColumn() throws Exception {
    List<String> e = errors("""
        version: 1
        colour: blue
        tls:
          minVersion: TLSv1.1
        timeouts: {connect: 5 seconds}
        addresses:
          deny: [default, 10.0.0.1/8, not-a-cidr]
        allow:
          - host: api.stripe.com
            ports: [0, "443"]
            pins: ["sha1/abc", "sha256/short="]
          - host: "api*.example.com"
          - hots: typo.example
        """);
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("2:1: unknown key 'colour'"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("4:15:").contains("TLSv1.1").contains("TLSv1.2"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("5:21:").contains("duration"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("7:19:").contains("host bits").contains("10.0.0.0/8"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("7:31:").contains("not-a-cidr"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("10:13:").contains("1 to 65535"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("10:16:").contains("whole number"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("11:12:").contains("sha256/"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("11:24:").contains("base64"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("12:11:").contains("whole label"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("13:5: unknown key 'hots'").contains("did you mean 'host'"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("13:5:").contains("needs 'host'"));
  }

  @Test
  void refusesUnreadablePemFilesNamingThem() throws Exception {
    Files.writeString(dir.resolve("bad.pem"), "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n");
    List<String> e = errors("""
        version: 1
        tls: {trust: [system, missing.pem]}
        allow:
          - host: a.example
            trust: [bad.pem]
            clientCert: {cert: nope.pem, key: nope.key}
        """);
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("2:23:").contains("missing.pem"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("5:13:").contains("bad.pem"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("6:17:").contains("nope.pem"));
  }

  @Test
  void refusesWrongTypesAndMissingSections() throws Exception {
    List<String> e = errors("""
        version: 2
        mode: enforcing
        plaintext: yes
        listen: {proxy: "localhost"}
        allow: {host: a.example}
        limits: {maxConnections: -1}
        """);
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("1:10:").contains("from 1 to 1"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("2:7:").contains("enforce, report"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("3:12:").contains("must be text"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("4:17:").contains("HOST:PORT"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("5:8:").contains("must be a list"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("6:26:").contains("from 1"));
  }

  @Test
  void refusesAnAdminConnectionCapOutOfRangeWithItsPosition() throws Exception {
    List<String> e = errors("""
        version: 1
        allow: [{host: a.example}]
        limits: {maxConnections: 8, maxAdminConnections: 0}
        """);
    assertThat(e).singleElement().satisfies(s -> assertThat(s).startsWith("3:50:")
        .contains("limits.maxAdminConnections").contains("from 1 to 65536"));
    assertThat(errors("""
        version: 1
        allow: [{host: a.example}]
        limits:
          maxAdminConnections: lots
        """)).singleElement().satisfies(s -> assertThat(s).startsWith("4:24:"));
  }

  @Test
  void refusesYamlSyntaxErrorsWithTheirPosition() throws Exception {
    List<String> e = errors("version: 1\nallow:\n  - host: [unclosed\n");
    assertThat(e).singleElement().satisfies(s -> assertThat(s).contains("YAML syntax error"));
  }

  @Test
  void refusesDuplicateKeys() throws Exception {
    List<String> e = errors("version: 1\nmode: enforce\nmode: report\nallow:\n  - host: a.example\n");
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("3:1:").contains("twice"));
  }

  @Test
  void refusesAnEmptyFileAndAMissingVersion() throws Exception {
    assertThat(errors("")).singleElement().satisfies(s -> assertThat(s).contains("empty"));
    assertThat(errors("allow:\n  - host: a.example\n"))
        .anySatisfy(s -> assertThat(s).contains("version: 1"));
  }

  @Test
  void unreadableFileIsAConfigError() {
    assertThatThrownBy(() -> ConfigCompiler.load(dir.resolve("absent.yaml")))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("absent.yaml:1:1: cannot read");
  }

  @Test
  void readsOnlyRegularFilesOfAtMostOneMebibyteNamingLineAndColumn() throws Exception {
    Process mkfifo = new ProcessBuilder("mkfifo", dir.resolve("ca.fifo").toString()).start();
    assertThat(mkfifo.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
    Files.createDirectory(dir.resolve("folder.pem"));
    // Over the cap by one byte; a valid PEM start so only the size can be the refusal.
    Files.writeString(dir.resolve("big.pem"), "-----BEGIN CERTIFICATE-----\n"
        + "A".repeat(ConfigFiles.MAX_FILE_BYTES + 1 - 28));
    Files.writeString(dir.resolve("key.fifo.pem"), "not a key");
    List<String> e = errors("""
        version: 1
        tls: {trust: [/dev/zero, ca.fifo]}
        allow:
          - host: a.example
            trust: [folder.pem, big.pem]
          - host: b.example
            clientCert: {cert: /dev/zero, key: key.fifo.pem}
        """);
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("2:15:").contains("/dev/zero")
        .contains("not a regular file"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("2:26:").contains("ca.fifo")
        .contains("not a regular file"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("5:13:").contains("folder.pem")
        .contains("not a regular file"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("5:25:").contains("big.pem")
        .contains("larger than 1 MiB"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("7:17:").contains("/dev/zero"));
  }

  @Test
  void readsAConfigOfExactlyFourMebibytes() throws Exception {
    // The YAML parser's own limit (3 Mi code points by default; comments do not count) once
    // refused files the byte cap lets through, as a YAML syntax error where it stopped.
    StringBuilder b = new StringBuilder("version: 1\nallow:\n");
    String rule = "  - host: h%07d.example.com\n    paths: [\"/%s\"]\n";
    int n = 0;
    while (b.length() + rule.length() + 200 < ConfigFiles.MAX_CONFIG_BYTES) {
      b.append(rule.formatted(n++, "p".repeat(150)));
    }
    b.append("#".repeat(ConfigFiles.MAX_CONFIG_BYTES - b.length() - 1)).append('\n');
    Path f = write(b.toString());
    assertThat(Files.size(f)).isEqualTo(ConfigFiles.MAX_CONFIG_BYTES);
    assertThat(ConfigCompiler.load(f).allowlist().rules()).hasSize(n);
  }

  @Test
  void refusesAConfigOverFourMebibytesWithoutReadingIt() throws Exception {
    Path f = write("version: 1\nallow:\n  - host: a.example\n"
        + "#".repeat(ConfigFiles.MAX_CONFIG_BYTES) + "\n");
    assertThatThrownBy(() -> ConfigCompiler.load(f))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("egret.yaml:1:1: cannot read the config file")
        .hasMessageContaining("larger than 4 MiB");
    assertThatThrownBy(() -> ConfigCompiler.load(Path.of("/dev/zero")))
        .isInstanceOf(ConfigException.class).hasMessageContaining("not a regular file");
  }

  @Test
  void recordsEveryFileTheConfigNamesForTheReloadToWatch() throws Exception {
    var ca = dev.egret.testing.TestPki.rootCa("Watched Root").issue();
    Path pem = ca.writePem(dir.resolve("certs")).cert();
    EgretConfig c = ConfigCompiler.load(write("version: 1\ntls: {trust: [system, certs/"
        + pem.getFileName() + "]}\nallow:\n  - host: a.example\n"));
    assertThat(c.referencedFiles()).containsExactly(dir.resolve("certs").resolve(pem.getFileName()));
    assertThat(c.inputs().get(0).sha256()).isEqualTo(c.sha256());
  }
}
