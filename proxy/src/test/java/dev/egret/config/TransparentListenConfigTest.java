package dev.egret.config;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.config.EgretConfig.HostPort;
import dev.egret.config.EgretConfig.Protocol;
import dev.egret.config.EgretConfig.Transparent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code listen.transparent}: the documented entries, and every way an entry can be wrong. */
class TransparentListenConfigTest {
  @TempDir Path dir;

  private Path write(String yaml) throws Exception {
    Path f = dir.resolve("egret.yaml");
    Files.writeString(f, yaml);
    return f;
  }

  private List<String> errors(String listen) throws Exception {
    Path f = write("version: 1\nlisten:\n" + listen + "allow:\n  - host: a.example\n");
    try {
      ConfigCompiler.load(f);
    } catch (ConfigException e) {
      return e.errors().stream().map(ConfigError::toString)
          .map(s -> s.substring(f.toString().length() + 1)).toList();
    }
    throw new AssertionError("config was accepted: " + listen);
  }

  @Test
  void readsTheSpecExampleEntries() throws Exception {
    EgretConfig c = ConfigCompiler.load(write("""
        version: 1
        listen:
          proxy: 127.0.0.1:3128
          admin: 127.0.0.1:9901
          transparent:
            - {address: 127.0.0.1:3129, port: 443, protocol: tls}
            - {address: "[::1]:3130", port: 80, protocol: HTTP}
        allow:
          - host: a.example
        """));
    assertThat(c.listen().transparent()).containsExactly(
        new Transparent(new HostPort("127.0.0.1", 3129), 443, Protocol.TLS),
        new Transparent(new HostPort("::1", 3130), 80, Protocol.HTTP));
  }

  @Test
  void noTransparentKeyMeansNoTransparentListeners() throws Exception {
    EgretConfig c = ConfigCompiler.load(write("version: 1\nlisten: {proxy: 127.0.0.1:3128}\n"
        + "allow:\n  - host: a.example\n"));
    assertThat(c.listen().transparent()).isEmpty();
    EgretConfig none = ConfigCompiler.load(write("version: 1\nallow:\n  - host: a.example\n"));
    assertThat(none.listen().transparent()).isEmpty();
  }

  @Test
  void refusesAnUnknownProtocol() throws Exception {
    assertThat(errors("  transparent:\n    - {address: 127.0.0.1:3129, port: 443, protocol: tcp}\n"))
        .containsExactly("4:54: listen.transparent[0].protocol is 'tcp'; use one of: tls, http");
  }

  @Test
  void refusesAPortOutOfRange() throws Exception {
    assertThat(errors("  transparent:\n    - {address: 127.0.0.1:3129, port: 70000, protocol: tls}\n"))
        .containsExactly("4:39: listen.transparent[0].port is 70000; it must be a whole number from 1 to 65535");
    assertThat(errors("  transparent:\n    - {address: 127.0.0.1:3129, port: 0, protocol: tls}\n"))
        .singleElement().asString().startsWith("4:39: listen.transparent[0].port is 0;");
  }

  @Test
  void refusesAMalformedOrFreePortAddress() throws Exception {
    assertThat(errors("  transparent:\n    - {address: 3129, port: 443, protocol: tls}\n"))
        .singleElement().asString().startsWith("4:17: listen.transparent[0].address must be text");
    assertThat(errors("  transparent:\n    - {address: localhost, port: 443, protocol: tls}\n"))
        .singleElement().asString()
        .startsWith("4:17: listen.transparent[0].address is 'localhost'; write HOST:PORT");
    assertThat(errors("  transparent:\n    - {address: 127.0.0.1:0, port: 443, protocol: tls}\n"))
        .singleElement().asString()
        .startsWith("4:17: listen.transparent[0].address has port 0; a redirect needs a fixed port");
  }

  @Test
  void refusesMissingAndUnknownKeys() throws Exception {
    assertThat(errors("  transparent:\n    - {address: 127.0.0.1:3129, prot: tls}\n"))
        .containsExactly(
            "4:7: listen.transparent[0] needs 'port', the destination port it stands for (443 for tls, 80 for http)",
            "4:7: listen.transparent[0] needs 'protocol: tls' (destination from the ClientHello's SNI) or 'protocol: http' (destination from Host)",
            "4:33: unknown key 'prot' in listen.transparent[0] (did you mean 'port'?); accepted keys:"
                + " address, port, protocol");
  }

  @Test
  void refusesADuplicateAddress() throws Exception {
    assertThat(errors("""
          transparent:
            - {address: 127.0.0.1:3129, port: 443, protocol: tls}
            - {address: 127.0.0.1:3129, port: 80, protocol: http}
        """)).containsExactly("5:17: listen.transparent[1].address 127.0.0.1:3129 is already used by"
            + " listen.transparent[0] (line 4) (127.0.0.1:3129); give each listener its own port");
  }

  @Test
  void refusesAWildcardAddressOnAPortAnotherListenerHas() throws Exception {
    assertThat(errors("""
          transparent:
            - {address: 127.0.0.1:3129, port: 443, protocol: tls}
            - {address: 0.0.0.0:3129, port: 80, protocol: http}
        """)).singleElement().asString().startsWith("5:17: listen.transparent[1].address 0.0.0.0:3129"
            + " is already used by listen.transparent[0]");
  }

  @Test
  void refusesTheProxyOrAdminAddress() throws Exception {
    assertThat(errors("""
          proxy: 127.0.0.1:3128
          transparent:
            - {address: 127.0.0.1:3128, port: 443, protocol: tls}
            - {address: 127.0.0.1:9901, port: 80, protocol: http}
        """)).containsExactly(
            "5:17: listen.transparent[0].address 127.0.0.1:3128 is already used by listen.proxy"
                + " (127.0.0.1:3128); give each listener its own port",
            "6:17: listen.transparent[1].address 127.0.0.1:9901 is already used by listen.admin"
                + " (127.0.0.1:9901); give each listener its own port");
  }

  @Test
  void refusesTwoEntriesForOneDestinationPort() throws Exception {
    assertThat(errors("""
          transparent:
            - {address: 127.0.0.1:3129, port: 443, protocol: tls}
            - {address: 127.0.0.1:3130, port: 443, protocol: http}
        """)).singleElement().asString().startsWith("5:39: listen.transparent[1].port 443 is already"
            + " taken by listen.transparent[0] (line 4)");
  }

  @Test
  void refusesATransparentThatIsNotAList() throws Exception {
    assertThat(errors("  transparent: {address: 127.0.0.1:3129, port: 443, protocol: tls}\n"))
        .singleElement().asString().startsWith("3:16: listen.transparent must be a list");
  }
}
