package dev.egret.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code listen.proxyProtocol}: the documented shape, who it trusts, and every way it is wrong. */
class ProxyProtocolConfigTest {
  @TempDir Path dir;

  private Path write(String listen) throws Exception {
    Path f = dir.resolve("egret.yaml");
    Files.writeString(f, "version: 1\nlisten:\n" + listen + "allow:\n  - host: a.example\n");
    return f;
  }

  private List<String> errors(String listen) throws Exception {
    Path f = write(listen);
    try {
      ConfigCompiler.load(f);
    } catch (ConfigException e) {
      return e.errors().stream().map(ConfigError::toString)
          .map(s -> s.substring(f.toString().length() + 1)).toList();
    }
    throw new AssertionError("config was accepted: " + listen);
  }

  @Test
  void readsTrustedPeersAndTrustsOnlyThem() throws Exception {
    EgretConfig c = ConfigCompiler.load(write("""
          proxy: 0.0.0.0:3128
          proxyProtocol:
            trustedPeers: [10.0.0.0/16, "fd00:1::/64"]
        """));
    EgretConfig.ProxyProtocol p = c.listen().proxyProtocol();
    assertThat(p).isNotNull();
    assertThat(p.trustedPeers()).hasSize(2);
    assertThat(p.trusts(InetAddress.getByName("10.0.200.7"))).isTrue();
    assertThat(p.trusts(InetAddress.getByName("10.1.0.1"))).isFalse();
    assertThat(p.trusts(InetAddress.getByName("fd00:1::9"))).isTrue();
    assertThat(p.trusts(InetAddress.getByName("fd00:2::9"))).isFalse();
    // An IPv4 peer on a dual-stack socket is judged by its IPv4 address.
    assertThat(p.trusts(InetAddress.getByAddress(new byte[] {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        (byte) 0xff, (byte) 0xff, 10, 0, 3, 4}))).isTrue();
  }

  @Test
  void absentMeansNoHeaderIsRead() throws Exception {
    assertThat(ConfigCompiler.load(write("  proxy: 127.0.0.1:3128\n")).listen().proxyProtocol())
        .isNull();
  }

  @Test
  void refusesAMalformedCidrAtItsLineAndColumn() throws Exception {
    List<String> e = errors("""
          proxyProtocol:
            trustedPeers: [10.0.0.0/16, 10.0.0.1/8, lb.internal]
        """);
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("4:33:")
        .contains("listen.proxyProtocol.trustedPeers[1]").contains("host bits"));
    assertThat(e).anySatisfy(s -> assertThat(s).startsWith("4:45:")
        .contains("listen.proxyProtocol.trustedPeers[2]").contains("lb.internal"));
  }

  @Test
  void refusesAnEmptyOrMissingListAndUnknownKeys() throws Exception {
    assertThat(errors("  proxyProtocol: {trustedPeers: []}\n")).singleElement().satisfies(s ->
        assertThat(s).startsWith("3:33:").contains("trustedPeers is empty")
            .contains("every connection would be closed"));
    assertThat(errors("  proxyProtocol: {}\n")).singleElement().satisfies(s ->
        assertThat(s).startsWith("3:18:").contains("needs 'trustedPeers'"));
    assertThat(errors("  proxyProtocol: {trustedPeer: [10.0.0.0/8]}\n")).anySatisfy(s ->
        assertThat(s).startsWith("3:19: unknown key 'trustedPeer' in listen.proxyProtocol")
            .contains("did you mean 'trustedPeers'"));
    assertThat(errors("  proxyProtocol: {trustedPeers: 10.0.0.0/8}\n")).singleElement()
        .satisfies(s -> assertThat(s).startsWith("3:33:").contains("must be a list"));
    assertThat(errors("  proxyProtocol: true\n")).singleElement()
        .satisfies(s -> assertThat(s).contains("listen.proxyProtocol must be a mapping"));
  }
}
