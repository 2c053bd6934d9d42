package dev.egret.cli;

import static dev.egret.testing.EgretCommand.egret;

import dev.egret.testing.EgretCommand.Result;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code egret explain} resolves the host as {@code run} would and prints the address guard's
 * verdict per address. Only names this machine resolves to loopback ({@code localhost}, from
 * /etc/hosts) and IP literals are used; names in a hosts file the test controls are covered in
 * {@code NamespaceEnforcementTest}.
 */
class ExplainResolvesTest {
  @TempDir Path dir;


  private String config(String yaml) throws Exception {
    return Files.writeString(dir.resolve("egret.yaml"), yaml).toString();
  }

  @Test
  void aNameResolvingToLoopbackSaysDestinationIpProhibited() throws Exception {
    String f = config("version: 1\nallow:\n  - host: localhost\n");
    Result r = egret("explain", "--config", f, "https://localhost/v1");
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("verdict:  allow")
        .contains("address:  127.0.0.1 refused: in denied range 127.0.0.0/8 (destination_ip_prohibited)\n")
        .contains("addresses: refused: the request would get 403 destination_ip_prohibited");
  }

  @Test
  void anExemptedRangeIsAllowedAndNamesTheAddressEgretConnectsTo() throws Exception {
    String f = config("version: 1\nallow:\n  - host: localhost\n    allowAddresses: [127.0.0.0/8, \"::1/128\"]\n");
    Result r = egret("explain", "--config", f, "localhost:443");
    assertThat(r.out()).contains("(CONNECT tunnel)")
        .contains("address:  127.0.0.1 allowed\n")
        .contains("addresses: allowed; Egret connects to ")
        .doesNotContain("refused");
    String global = config("version: 1\naddresses: {allow: [127.0.0.1/32]}\nallow:\n  - host: localhost\n");
    assertThat(egret("explain", "--config", global, "http://localhost/").out())
        .contains("address:  127.0.0.1 allowed\n");
  }

  @Test
  void everyAddressIsJudgedAndOneDeniedAddressRefusesTheHost() throws Exception {
    // localhost may resolve to 127.0.0.1 and ::1; exempting only the IPv4 one must still refuse
    // the host when ::1 comes back too, as the proxy does (any denied address refuses).
    String f = config("version: 1\nallow:\n  - host: localhost\n    allowAddresses: [127.0.0.1/32]\n");
    Result r = egret("explain", "--config", f, "https://localhost/");
    assertThat(r.out()).contains("address:  127.0.0.1 allowed\n");
    if (r.out().contains("address:  0:0:0:0:0:0:0:1")) {
      assertThat(r.out()).contains("address:  0:0:0:0:0:0:0:1 refused: in denied range ::1/128")
          .contains("addresses: refused");
    } else {
      assertThat(r.out()).contains("addresses: allowed");
    }
  }

  @Test
  void anIpLiteralIsJudgedWithoutDns() throws Exception {
    String f = config("version: 1\nallow:\n  - host: 169.254.169.254\n    ports: [80, 443]\n");
    Result r = egret("explain", "--config", f, "http://169.254.169.254/latest/meta-data/");
    assertThat(r.out()).contains("address:  169.254.169.254 refused: in denied range 169.254.0.0/16"
        + " (destination_ip_prohibited)");
  }

  @Test
  void noResolveKeepsTheOldNote() throws Exception {
    String f = config("version: 1\nallow:\n  - host: localhost\n");
    Result r = egret("explain", "--config", f, "--no-resolve", "https://localhost/");
    assertThat(r.code()).isZero();
    assertThat(r.out()).contains("address:  checked when a request resolves localhost (not resolved: --no-resolve)")
        .doesNotContain("127.0.0.1");
  }

  @Test
  void aDeniedHostIsNotResolved() throws Exception {
    String f = config("version: 1\nallow:\n  - host: api.partner.example\n");
    Result r = egret("explain", "--config", f, "https://localhost/");
    assertThat(r.out()).contains("verdict:  deny").doesNotContain("address:");
  }
}
