package dev.egret.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code egret explain} names the route: the upstream proxy and its URL, never its credentials. */
class ExplainRouteTest {
  private static final String PASSWORD = "explain-pw-0c41";
  @TempDir Path dir;

  private String explain(String url) throws Exception {
    Files.writeString(dir.resolve("corp-pass"), PASSWORD);
    Path f = dir.resolve("egret.yaml");
    Files.writeString(f, """
        version: 1
        upstreamProxies:
          corp: {url: "http://proxy.corp.example:3128", auth: {username: egret-user, password: "${file:corp-pass}"}}
        routing: {upstreamProxy: corp, direct: ["**.corp.example"]}
        allow:
          - host: api.partner.example
          - host: git.corp.example
        """);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int code = Egret.run(new String[] {"explain", "--config", f.toString(), "--no-resolve", url},
        new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(
            new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    assertThat(code).isZero();
    return out.toString(StandardCharsets.UTF_8);
  }

  @Test
  void namesTheProxyButNeverItsCredentials() throws Exception {
    String out = explain("http://api.partner.example/v1");
    assertThat(out).contains("route:    through upstream proxy 'corp' "
        + "(http://proxy.corp.example:3128), CONNECT api.partner.example:443 with "
        + "Proxy-Authorization");
    assertThat(out).doesNotContain(PASSWORD).doesNotContain("egret-user");
    assertThat(explain("api.partner.example:443")).contains("route:    through upstream proxy "
        + "'corp'");
  }

  @Test
  void saysDirectForRoutingDirect() throws Exception {
    assertThat(explain("https://git.corp.example/x")).contains("route:    direct");
  }
}
