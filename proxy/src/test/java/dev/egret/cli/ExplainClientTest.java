package dev.egret.cli;

import static dev.egret.testing.EgretCommand.egret;

import dev.egret.testing.EgretCommand.Result;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code egret explain --client NAME} and {@code egret check} on a gateway config. */
class ExplainClientTest {
  @TempDir Path dir;


  private static final String GATEWAY = """
      version: 1
      allow:
        - host: shared.example
      clients:
        - name: crm-sync
          allow:
            - host: "**.salesforce.com"
        - name: billing
          allow:
            - host: api.stripe.example
      """;

  @Test
  void decidesForTheNamedClient() throws Exception {
    Path f = Files.writeString(dir.resolve("egret.yaml"), GATEWAY);
    Result crm = egret("explain", "--config", f.toString(), "--client", "crm-sync",
        "--no-resolve", "https://eu1.salesforce.com/x");
    assertThat(crm.code()).as(crm.err()).isZero();
    assertThat(crm.out()).contains("client:   crm-sync").contains("verdict:  allow")
        .contains("'**.salesforce.com' (line 7)");
    Result billing = egret("explain", "--config", f.toString(), "--client", "billing",
        "--no-resolve", "https://eu1.salesforce.com/x");
    assertThat(billing.out()).contains("verdict:  deny")
        .contains("no allow rule of client 'billing' or the top level names eu1.salesforce.com");
    // The top-level rules apply to every client, after its own.
    assertThat(egret("explain", "--config", f.toString(), "--client", "billing", "--no-resolve",
        "shared.example:443").out()).contains("verdict:  allow");
  }

  @Test
  void anUnknownClientExitsTwoNamingTheClients() throws Exception {
    Path f = Files.writeString(dir.resolve("egret.yaml"), GATEWAY);
    Result r = egret("explain", "--config", f.toString(), "--client", "crm", "--no-resolve",
        "https://eu1.salesforce.com/x");
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err()).contains("no client is named 'crm'").contains("crm-sync, billing");
    Path sidecar = Files.writeString(dir.resolve("sidecar.yaml"),
        "version: 1\nallow:\n  - host: a.example\n");
    Result none = egret("explain", "--config", sidecar.toString(), "--client", "crm",
        "--no-resolve", "https://a.example/");
    assertThat(none.code()).isEqualTo(2);
    assertThat(none.err()).contains("has no clients: list");
  }

  @Test
  void checkListsClientErrorsAsFileLineColumn() throws Exception {
    Path f = Files.writeString(dir.resolve("egret.yaml"), GATEWAY.replace("billing", "Billing")
        + "identity: {onMissing: nobody}\n");
    Result r = egret("check", f.toString());
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err().lines()).contains(f + ":8:11: clients[1].name 'Billing' is not 1 to 63 "
        + "of a-z, 0-9 and -; the name is a metric label value and the log's identity");
    assertThat(r.err()).contains(f + ":11:23: identity.onMissing is 'nobody'");
  }
}
