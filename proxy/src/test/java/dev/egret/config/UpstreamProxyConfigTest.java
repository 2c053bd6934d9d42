package dev.egret.config;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.policy.UpstreamRoute;
import dev.egret.policy.Decision;
import dev.egret.policy.Target;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code upstreamProxies:}, {@code routing:} and a rule's {@code upstreamProxy}: the route each
 * decision carries (in the documented precedence), every way the keys fail with line and column,
 * and that no message and no {@code toString()} carries a credential.
 */
class UpstreamProxyConfigTest {
  private static final String PASSWORD = "pw-7d1e55c0";
  private static final String ENV_PASSWORD = "env-pw-31b9aa";
  private static final Map<String, String> ENV = Map.of("CORP_PASSWORD", ENV_PASSWORD);

  @TempDir Path dir;
  private Path file;

  private EgretConfig compile(String yaml) throws ConfigException {
    file = dir.resolve("egret.yaml");
    try {
      Files.writeString(file, yaml);
      Files.writeString(dir.resolve("corp-pass"), PASSWORD + "\n");
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return ConfigCompiler.compile(file, yaml.getBytes(StandardCharsets.UTF_8), ENV::get);
  }

  private List<String> errors(String yaml) {
    try {
      compile(yaml);
    } catch (ConfigException e) {
      assertThat(e.getMessage()).doesNotContain(PASSWORD).doesNotContain(ENV_PASSWORD)
          .doesNotContain("hunter2");
      return e.errors().stream().map(ConfigError::toString)
          .map(s -> s.substring(file.toString().length() + 1)).toList();
    }
    throw new AssertionError("config was accepted: " + yaml);
  }

  private static final String PROXIES = """
      version: 1
      upstreamProxies:
        corp:
          url: http://proxy.corp.example:3128
          auth: {username: egret, password: "${file:corp-pass}"}
        dmz: {url: "http://[fd00::5]:8080", auth: {username: svc, password: "${env:CORP_PASSWORD}"}}
      """;

  private static Decision decide(EgretConfig c, String host) {
    return c.allowlist().decide(Target.tunnel(host, 443));
  }

  @Test
  void routesByRuleThenDirectListThenDefault() throws Exception {
    EgretConfig c = compile(PROXIES + """
        routing:
          upstreamProxy: corp
          direct: ["**.corp.example"]
        allow:
          - host: api.partner.example
          - host: partner.corp.example
          - host: pinned.corp.example
            upstreamProxy: dmz
          - host: local.partner.example
            upstreamProxy: none
        """);
    assertThat(decide(c, "api.partner.example").route().name()).isEqualTo("corp");
    assertThat(decide(c, "partner.corp.example").route()).isEqualTo(UpstreamRoute.DIRECT);
    // A rule's own route wins over routing.direct.
    assertThat(decide(c, "pinned.corp.example").route().name()).isEqualTo("dmz");
    assertThat(decide(c, "local.partner.example").route()).isEqualTo(UpstreamRoute.DIRECT);
    // A denial opens nothing, so it carries no route.
    assertThat(decide(c, "other.example").route()).isEqualTo(UpstreamRoute.DIRECT);
    UpstreamRoute corp = decide(c, "api.partner.example").route();
    assertThat(corp.proxy().url()).isEqualTo("http://proxy.corp.example:3128");
    assertThat(corp.proxy().authenticates()).isTrue();
    assertThat(corp.toString()).isEqualTo("upstream proxy 'corp' (http://proxy.corp.example:3128)")
        .doesNotContain(PASSWORD);
    assertThat(decide(c, "pinned.corp.example").route().proxy().url())
        .isEqualTo("http://[fd00::5]:8080");
  }

  @Test
  void withoutRoutingEverythingGoesDirect() throws Exception {
    EgretConfig c = compile(PROXIES + "allow:\n  - host: api.partner.example\n");
    assertThat(decide(c, "api.partner.example").route()).isEqualTo(UpstreamRoute.DIRECT);
  }

  @Test
  void aReportedPassIsRoutedToo() throws Exception {
    EgretConfig c = compile(PROXIES + """
        mode: report
        routing: {upstreamProxy: corp}
        allow:
          - host: api.partner.example
        """);
    assertThat(decide(c, "unlisted.example").route().name()).isEqualTo("corp");
  }

  @Test
  void refusesUnknownProxyNames() {
    assertThat(errors(PROXIES + """
        routing: {upstreamProxy: corpp}
        allow:
          - host: api.partner.example
            upstreamProxy: nowhere
        """)).containsExactly(
        "7:26: routing.upstreamProxy is 'corpp', which upstreamProxies does not define; use one "
            + "of: corp, dmz, none",
        "10:20: allow[0].upstreamProxy is 'nowhere', which upstreamProxies does not define; use "
            + "one of: corp, dmz, none");
    assertThat(errors("version: 1\nrouting: {upstreamProxy: corp}\nallow:\n  - host: a.example\n"))
        .containsExactly("2:26: routing.upstreamProxy is 'corp', which upstreamProxies does not "
            + "define; use none, or add it under upstreamProxies");
  }

  @Test
  void refusesBadUrls() {
    List<String> e = errors("""
        version: 1
        upstreamProxies:
          socks: {url: "socks5://127.0.0.1:1080"}
          noport: {url: http://proxy.corp.example}
          withpath: {url: "http://proxy.corp.example:3128/path"}
          userinfo: {url: "http://egret:hunter2@proxy.corp.example:3128"}
          nohost: {url: "http:///x"}
          trusted: {url: "http://proxy.corp.example:3128", trust: [corp.pem]}
          none: {url: "http://proxy.corp.example:3128"}
          "bad name": {url: "http://proxy.corp.example:3128"}
          nourl: {auth: {username: a, password: b}}
        allow:
          - host: a.example
        """);
    assertThat(e).containsExactly(
        "3:16: upstreamProxies.socks.url: the scheme must be http:// or https://, not 'socks5' "
            + "(Egret chains with HTTP CONNECT only)",
        "4:17: upstreamProxies.noport.url: 'http://proxy.corp.example' names no port; write it, "
            + "such as http://proxy.corp.example:3128 (proxies listen on many ports, so Egret "
            + "does not guess)",
        "5:19: upstreamProxies.withpath.url: 'http://proxy.corp.example:3128/path' has a path, "
            + "query or fragment; a proxy is only http://HOST:PORT",
        "6:19: upstreamProxies.userinfo.url has a user name or password in it; put them in "
            + "upstreamProxies.userinfo.auth: {username: ..., password: \"${file:PATH}\"} "
            + "instead, which is never logged",
        "7:17: upstreamProxies.nohost.url: 'http:///x' names no host; write http://HOST:PORT",
        "8:59: upstreamProxies.trusted.trust applies to an https:// proxy only; Egret speaks "
            + "plain TCP to http://proxy.corp.example:3128 (its own TLS to the destination goes "
            + "inside the tunnel either way), so leave trust out or write https://",
        "9:3: upstreamProxies.none: 'none' means a direct connection in routing.upstreamProxy "
            + "and a rule's upstreamProxy, so no proxy may be named so",
        "10:3: upstreamProxies.bad name: a proxy name is letters, digits, '.', '_' and '-' (up "
            + "to 63), starting with a letter or digit",
        "11:10: upstreamProxies.nourl needs 'url'");
  }

  @Test
  void refusesBadCredentialsWithoutRepeatingThem() throws Exception {
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("two-lines"), "hunter2\nmore\n");
    List<String> e = errors("""
        version: 1
        upstreamProxies:
          a: {url: "http://p.example:3128", auth: {username: egret}}
          b: {url: "http://p.example:3128", auth: {username: "a:b", password: x}}
          c: {url: "http://p.example:3128", auth: {username: egret, password: "${env:MISSING}"}}
          d: {url: "http://p.example:3128", auth: {username: egret, password: "${file:nope}"}}
          e: {url: "http://p.example:3128", auth: {username: egret, password: "${file:two-lines}"}}
          f: {url: "http://p.example:3128", auth: {username: egret, password: 12345678}}
          g: {url: "http://p.example:3128", auth: egret}
        allow:
          - host: a.example
        """);
    assertThat(e).hasSize(7);
    assertThat(e.get(0)).isEqualTo("3:43: upstreamProxies.a.auth needs 'password'");
    assertThat(e.get(1)).startsWith("4:54: upstreamProxies.b.auth.username has a ':'");
    assertThat(e.get(2)).startsWith("5:71: upstreamProxies.c.auth.password: the environment "
        + "variable MISSING is not set");
    assertThat(e.get(3)).startsWith("6:71: upstreamProxies.d.auth.password: cannot read ");
    assertThat(e.get(4)).isEqualTo("7:71: upstreamProxies.e.auth.password: the value from "
        + "file:two-lines has a line break at character 8 of 12 (only one trailing newline of "
        + "a file is dropped)");
    assertThat(e.get(5)).isEqualTo("8:71: upstreamProxies.f.auth.password must be text (quote "
        + "it, or better write \"${file:PATH}\" or \"${env:NAME}\")").doesNotContain("12345678");
    assertThat(e.get(6)).startsWith("9:43: upstreamProxies.g.auth must be a mapping");
  }

  @Test
  void anHttpsProxyTakesTrustFiles() throws Exception {
    List<String> e = errors("""
        version: 1
        upstreamProxies:
          corp: {url: "https://proxy.corp.example:8443", trust: [missing.pem]}
        allow:
          - host: a.example
        """);
    assertThat(e).hasSize(1);
    assertThat(e.get(0)).startsWith("3:58: upstreamProxies.corp.trust[0]: ");
    EgretConfig c = compile("""
        version: 1
        upstreamProxies:
          corp: {url: "https://proxy.corp.example:8443"}
        routing: {upstreamProxy: corp}
        allow:
          - host: a.example
        """);
    UpstreamRoute r = decide(c, "a.example").route();
    assertThat(r.proxy().tls()).isTrue();
    assertThat(r.proxy().authenticates()).isFalse();
  }

  @Test
  void refusesUnknownKeys() {
    assertThat(errors("""
        version: 1
        upstreamProxies:
          corp: {url: "http://p.example:3128", username: egret}
        routing: {upstream: corp}
        allow:
          - host: a.example
        """)).containsExactly(
        "3:40: unknown key 'username' in upstreamProxies.corp; accepted keys: url, trust, auth",
        "4:11: unknown key 'upstream' in routing; accepted keys: upstreamProxy, direct");
  }
}
