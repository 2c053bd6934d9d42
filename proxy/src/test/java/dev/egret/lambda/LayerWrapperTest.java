package dev.egret.lambda;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The layer's {@code egret-wrapper}, as Lambda uses it through {@code AWS_LAMBDA_EXEC_WRAPPER}:
 * it gets the runtime's command line, and the runtime it execs sees the proxy variables.
 */
@Tag("layer")
class LayerWrapperTest {
  @TempDir static Path layerDir;
  static Path wrapper;

  @BeforeAll
  static void unpack() throws Exception {
    wrapper = Layer.unpack(layerDir).resolve("egret-wrapper");
  }

  record Runtime(List<String> args, Map<String, String> env) {}

  /** Starts a fake runtime through the wrapper: a shell that prints its arguments and env. */
  private static Runtime runThroughWrapper(Map<String, String> env) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(wrapper.toString(), "/bin/sh", "-c",
        "for a in \"$@\"; do echo \"arg=$a\"; done; env", "fake-runtime", "--handler", "app.handler");
    pb.environment().keySet().removeIf(k -> k.toLowerCase().contains("proxy") || k.startsWith("AWS_")
        || k.startsWith("EGRET_"));
    pb.environment().putAll(env);
    pb.redirectErrorStream(true);
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(10, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as(out).isZero();
    Map<String, String> seen = new TreeMap<>();
    List<String> args = out.lines().filter(l -> l.startsWith("arg=")).map(l -> l.substring(4)).toList();
    out.lines().filter(l -> !l.startsWith("arg=") && l.contains("="))
        .forEach(l -> seen.put(l.substring(0, l.indexOf('=')), l.substring(l.indexOf('=') + 1)));
    return new Runtime(args, seen);
  }

  @Test
  void runtimeSeesTheProxyAndANoProxyWithTheRuntimeApiHost() throws Exception {
    Runtime r = runThroughWrapper(Map.of("AWS_LAMBDA_RUNTIME_API", "169.254.100.1:9001",
        "EGRET_NO_PROXY", "internal.example,10.1.2.3"));
    for (String name : List.of("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy")) {
      assertThat(r.env()).containsEntry(name, "http://127.0.0.1:3128");
    }
    assertThat(r.env()).containsEntry("NO_PROXY", "localhost,127.0.0.1,169.254.100.1,internal.example,10.1.2.3")
        .containsEntry("no_proxy", "localhost,127.0.0.1,169.254.100.1,internal.example,10.1.2.3")
        .containsEntry("AWS_LAMBDA_RUNTIME_API", "169.254.100.1:9001");
    assertThat(r.args()).containsExactly("--handler", "app.handler");
  }

  @Test
  void bracketedIpv6RuntimeApiHostGoesToNoProxyWithoutBrackets() throws Exception {
    Runtime r = runThroughWrapper(Map.of("AWS_LAMBDA_RUNTIME_API", "[fd00::9]:9001"));
    assertThat(r.env()).containsEntry("NO_PROXY", "localhost,127.0.0.1,fd00::9");
  }

  @Test
  void withoutARuntimeApiTheLocalNamesStillBypassTheProxy() throws Exception {
    Runtime r = runThroughWrapper(Map.of());
    assertThat(r.env()).containsEntry("NO_PROXY", "localhost,127.0.0.1")
        .containsEntry("HTTPS_PROXY", "http://127.0.0.1:3128");
  }
}
