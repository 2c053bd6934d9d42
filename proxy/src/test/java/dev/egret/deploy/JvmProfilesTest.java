package dev.egret.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The two JVM profiles (deploy/jvm/sidecar.flags, gateway.flags) are the one place the JVM's
 * flags are written: every flag says why it is there, both end the process on an
 * OutOfMemoryError, and no file that starts a JVM (the Dockerfile, the launchers, the chart,
 * the Kustomize component, the ECS files, the Lambda layer build, bench/, CI) holds a copy of
 * one of their flags; the deploy files pick a profile by name (EGRET_JVM_PROFILE) instead.
 * dev.egret.FootprintTest runs each profile at its memory limit.
 */
class JvmProfilesTest {
  static final List<String> PROFILES = List.of("sidecar", "gateway");

  /** A profile's flags as the JVM reads the @argument-file: from # to the end of a line is dropped. */
  static List<String> flags(String profile) {
    List<String> flags = new ArrayList<>();
    for (String line : lines(DeployFiles.file("deploy/jvm/" + profile + ".flags"))) {
      String flag = line.replaceFirst("#.*", "").strip();
      if (!flag.isEmpty()) {
        flags.add(flag);
      }
    }
    return flags;
  }

  /** The "# memory limit: SIZE" line's SIZE: the container limit the profile is sized for. */
  static String memoryLimit(String profile) {
    Pattern p = Pattern.compile("^# memory limit: *(\\d+[kmg])\\b");
    for (String line : lines(DeployFiles.file("deploy/jvm/" + profile + ".flags"))) {
      Matcher m = p.matcher(line);
      if (m.find()) {
        return m.group(1);
      }
    }
    throw new AssertionError("deploy/jvm/" + profile + ".flags has no '# memory limit: SIZE' line");
  }

  static long mib(String size) {
    long n = Long.parseLong(size.substring(0, size.length() - 1));
    return switch (size.charAt(size.length() - 1)) {
      case 'k' -> n / 1024;
      case 'g' -> n * 1024;
      default -> n;
    };
  }

  private static List<String> lines(Path path) {
    try {
      return Files.readAllLines(path);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The flag's name: -XX:+UseSerialGC and -XX:-UseSerialGC are one flag, as are -Xss512k and -Xss1m. */
  static String name(String flag) {
    if (flag.startsWith("-XX:")) {
      return "-XX:" + flag.substring(4).replaceFirst("^[+-]", "").replaceFirst("=.*", "");
    }
    if (flag.startsWith("-D")) {
      return flag.replaceFirst("=.*", "");
    }
    Matcher m = Pattern.compile("^-X(ss|mx|ms|mn)").matcher(flag);
    return m.find() ? m.group() : flag;
  }

  @Test
  void everyFlagSaysWhyItIsThereOnceAndAnOutOfMemoryErrorEndsTheProcess() {
    for (String profile : PROFILES) {
      List<String> lines = lines(DeployFiles.file("deploy/jvm/" + profile + ".flags"));
      Set<String> names = new HashSet<>();
      boolean commented = false;
      for (String line : lines) {
        String t = line.strip();
        if (t.startsWith("#")) {
          commented = true;
        } else if (t.isEmpty()) {
          commented = false;
        } else {
          assertThat(t).as("%s: one flag per line", profile).doesNotContain(" ").startsWith("-");
          assertThat(commented).as("%s: a comment says why %s is there", profile, t).isTrue();
          assertThat(names.add(name(t))).as("%s: %s once", profile, name(t)).isTrue();
        }
      }
      assertThat(flags(profile)).as(profile).contains("-XX:+ExitOnOutOfMemoryError", "-XX:-UsePerfData")
          .anyMatch(f -> f.startsWith("-XX:MaxDirectMemorySize="))
          .anyMatch(f -> f.startsWith("-XX:MaxRAMPercentage="));
      // The profile never fixes the memory limit itself: the container gives it.
      assertThat(flags(profile)).noneMatch(f -> f.startsWith("-XX:MaxRAM="));
    }
  }

  @Test
  void theSidecarIsSmallAndTheGatewayIsCheapPerRequest() {
    assertThat(flags("sidecar")).contains("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC");
    assertThat(mib(memoryLimit("sidecar"))).isEqualTo(128);
    // C2 on: no stop at a C1 level, tiered compilation not turned off.
    assertThat(flags("gateway")).noneMatch(f -> f.startsWith("-XX:TieredStopAtLevel"))
        .doesNotContain("-XX:-TieredCompilation");
    assertThat(mib(memoryLimit("gateway"))).isEqualTo(512);
  }

  /** Every file that starts a JVM or says which flags one gets. */
  private static List<Path> launchFiles() throws IOException {
    Path root = DeployFiles.repoRoot();
    List<Path> files = new ArrayList<>(List.of(root.resolve("Dockerfile"), root.resolve("pom.xml"),
        root.resolve("proxy/pom.xml"), root.resolve("deploy/jvm/egret")));
    for (String dir : List.of("helm", "deploy/ecs", "deploy/kustomize", "deploy/lambda",
        "proxy/src/main/lambda", "bench", ".ci")) {
      try (Stream<Path> walk = Files.walk(root.resolve(dir))) {
        walk.filter(Files::isRegularFile)
            .filter(p -> !p.toString().contains("node_modules") && !p.toString().contains("__pycache__"))
            .filter(p -> p.getFileName().toString().matches(".*\\.(ya?ml|json|tpl|sh|py|mjs|lua)|egret|egret-wrapper"))
            .forEach(files::add);
      }
    }
    return files;
  }

  @Test
  void noOtherFileHoldsACopyOfAProfilesFlag() throws IOException {
    Set<String> names = new HashSet<>();
    for (String profile : PROFILES) {
      flags(profile).forEach(f -> names.add(name(f)));
    }
    Pattern jvmFlag = Pattern.compile("(?<![\\w-])-(XX:[+-]?\\w+|Xss|Xmx|Xms|Xmn|D[\\w.]+)");
    List<String> copies = new ArrayList<>();
    for (Path file : launchFiles()) {
      List<String> lines = lines(file);
      for (int i = 0; i < lines.size(); i++) {
        if (lines.get(i).contains("<argLine>")) {
          continue; // Surefire's test JVM, sized for the tests: not a JVM that runs Egret deployed
        }
        Matcher m = jvmFlag.matcher(lines.get(i));
        while (m.find()) {
          String found = name(m.group().replaceFirst("^-XX:[+-]", "-XX:"));
          if (names.contains(found)) {
            copies.add(DeployFiles.repoRoot().relativize(file) + ":" + (i + 1) + ": " + lines.get(i).strip());
          }
        }
      }
    }
    assertThat(copies).as("copies of a profile's flag outside deploy/jvm/*.flags").isEmpty();
  }

  @Test
  void theDeployFilesNameAProfileTheImageHasAndGiveItTheMemoryItIsSizedFor() {
    Set<String> profiles = new HashSet<>(PROFILES);
    // ECS: every container running Egret's server names its profile and has at least its memory.
    for (String file : List.of("deploy/ecs/task-definition.json", "deploy/ecs/task-definition-ec2-enforce.json")) {
      JsonNode egret = null;
      for (JsonNode c : DeployFiles.json(DeployFiles.file(file)).path("containerDefinitions")) {
        if (c.path("name").asText().equals("egret")) {
          egret = c;
        }
      }
      assertThat(egret).as("%s: the egret container", file).isNotNull();
      String profile = null;
      for (JsonNode e : egret.path("environment")) {
        if (e.path("name").asText().equals("EGRET_JVM_PROFILE")) {
          profile = e.path("value").asText();
        }
      }
      assertThat(profile).as("%s: EGRET_JVM_PROFILE", file).isIn(profiles);
      assertThat(egret.path("memory").asLong()).as("%s: the egret container's hard limit (MiB)", file)
          .isGreaterThanOrEqualTo(mib(memoryLimit(profile)));
    }
    // The chart's default and the Kustomize component.
    assertThat(DeployFiles.yaml(DeployFiles.file("helm/egret/values.yaml")).path("egret").path("jvmProfile").asText())
        .isEqualTo("sidecar");
    for (String file : List.of("deploy/kustomize/egret-sidecar/sidecar.yaml",
        "deploy/kustomize/egret-sidecar/sidecar-cronjob.yaml")) {
      assertThat(String.join("\n", lines(DeployFiles.file(file))))
          .as(file).containsPattern("- name: EGRET_JVM_PROFILE\\s+value: sidecar");
    }
  }

  /**
   * Every Egret container the chart and the Kustomize component render (when .ci/deploy-checks.sh
   * passes the rendered folders, as it does) names a profile the image has, with a memory limit
   * at least the one that profile is sized for.
   */
  @Test
  void everyRenderedEgretContainerNamesAProfileWithTheMemoryItIsSizedFor() throws IOException {
    List<Path> rendered = new ArrayList<>();
    for (String property : List.of("egret.helm.rendered", "egret.sidecar.rendered")) {
      String dir = System.getProperty(property);
      if (dir != null && !dir.isBlank()) {
        try (Stream<Path> files = Files.list(Path.of(dir))) {
          files.filter(f -> f.toString().endsWith(".yaml")).forEach(rendered::add);
        }
      }
    }
    org.junit.jupiter.api.Assumptions.assumeFalse(rendered.isEmpty(),
        "no rendered manifests (-Degret.helm.rendered, -Degret.sidecar.rendered: .ci/deploy-checks.sh)");
    int containers = 0;
    for (Path file : rendered) {
      for (JsonNode doc : DeployFiles.yamlDocuments(file)) {
        List<JsonNode> found = new ArrayList<>();
        doc.findParents("containers").forEach(spec -> {
          spec.path("containers").forEach(found::add);
          spec.path("initContainers").forEach(found::add);
        });
        for (JsonNode c : found) {
          if (!c.path("name").asText().equals("egret")) {
            continue;
          }
          containers++;
          String profile = DeployFiles.named(c.path("env"), "name", "EGRET_JVM_PROFILE").path("value").asText(null);
          assertThat(profile).as("%s: the egret container's EGRET_JVM_PROFILE", file).isIn(PROFILES);
          String limit = c.path("resources").path("limits").path("memory").asText("");
          Matcher m = Pattern.compile("(\\d+)(Mi|Gi)").matcher(limit);
          assertThat(m.matches()).as("%s: the egret container's memory limit '%s'", file, limit).isTrue();
          long limitMib = Long.parseLong(m.group(1)) * (m.group(2).equals("Gi") ? 1024 : 1);
          assertThat(limitMib).as("%s: memory limit of the %s profile", file, profile)
              .isGreaterThanOrEqualTo(mib(memoryLimit(profile)));
        }
      }
    }
    assertThat(containers).as("egret containers in %s", rendered).isPositive();
  }

  @Test
  void theLambdaLayerAndTheClassDataTrainingsReadTheSidecarProfile() {
    String extension = String.join("\n", lines(DeployFiles.file("proxy/src/main/lambda/extensions/egret")));
    assertThat(extension).contains("@egret/sidecar.flags");
    String pom = String.join("\n", lines(DeployFiles.file("proxy/pom.xml")));
    assertThat(pom).contains("<arg value=\"@egret/sidecar.flags\"/>",
        "<arg value=\"@${project.build.directory}/sidecar.flags\"/>",
        "deploy/jvm/sidecar.flags\" todir=\"${layer}/egret\"");
  }
}
