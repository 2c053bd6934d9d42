package dev.egret.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * The helm binary that .ci/deploy-checks.sh installs under .tools/, for the chart's tests: found
 * once per test class (the class is skipped, saying so, without it), then {@code helm template}
 * of {@code helm/egret} with the test's arguments.
 */
final class Helm {
  private Helm() {}

  /** helm's exit code, stdout (the manifests) and stderr (a failure's message, warnings). */
  record Rendered(int code, String out, String err) {
    String text() {
      return out + err;
    }

    /** The rendered objects, empty documents left out. */
    List<JsonNode> docs() throws IOException {
      List<JsonNode> all = new ArrayList<>();
      try (MappingIterator<JsonNode> it = DeployFiles.YAML.readerFor(JsonNode.class).readValues(out)) {
        while (it.hasNext()) {
          JsonNode n = it.next();
          if (n != null && !n.isEmpty()) {
            all.add(n);
          }
        }
      }
      return all;
    }
  }

  /** The helm binary; skips the calling test class when there is none. */
  static Path find(String testClass) throws IOException {
    Path helm = null;
    Path tools = DeployFiles.repoRoot().resolve(".tools");
    if (Files.isDirectory(tools)) {
      try (Stream<Path> s = Files.list(tools)) {
        helm = s.map(p -> p.resolve("helm")).filter(Files::isExecutable).findFirst().orElse(null);
      }
    }
    if (helm == null) {
      System.err.println(testClass + " SKIPPED: no helm under .tools/; run .ci/deploy-checks.sh");
    }
    Assumptions.assumeTrue(helm != null, "no helm under .tools/: .ci/deploy-checks.sh installs it");
    return helm;
  }

  /**
   * {@code helm template RELEASE helm/egret ARGS}; stderr goes to a file in {@code dir}, apart
   * from the manifests (warnings mixed in would break the YAML).
   */
  static Rendered template(Path helm, Path dir, String release, List<String> args)
      throws Exception {
    List<String> cmd = new ArrayList<>(List.of(helm.toString(), "template", release,
        DeployFiles.file("helm/egret").toString()));
    cmd.addAll(args);
    Path err = Files.createTempFile(dir, "helm", ".err");
    Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return new Rendered(p.exitValue(), out, Files.readString(err));
  }
}
