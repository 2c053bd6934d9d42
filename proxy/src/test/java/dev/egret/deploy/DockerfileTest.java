package dev.egret.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The container image's contract (SPEC "Deployment contract"), read from the Dockerfile. */
class DockerfileTest {
  private final DockerfileFacts docker = DockerfileFacts.read();

  @Test
  void pinsEveryBaseImageToAVersion() {
    List<String> froms = docker.all("FROM");
    assertThat(froms).hasSizeGreaterThanOrEqualTo(2);
    for (String from : froms) {
      String image = from.split(" ")[0];
      assertThat(image).as("base image %s", image).contains(":").doesNotEndWith(":latest");
      assertThat(image.substring(image.lastIndexOf(':') + 1)).as("tag of %s", image).containsPattern("\\d+\\.\\d+");
    }
  }

  @Test
  void runsAsANumericNonRootUser() {
    List<String> users = docker.runtimeStage().all("USER");
    assertThat(users).isNotEmpty();
    String user = users.get(users.size() - 1);
    assertThat(user).matches("\\d+(:\\d+)?");
    assertThat(Integer.parseInt(user.split(":")[0])).isPositive();
  }

  @Test
  void exposesTheProxyAndAdminPorts() {
    assertThat(String.join(" ", docker.runtimeStage().all("EXPOSE")).split(" ")).contains("3128", "9901");
  }

  @Test
  void pointsEgretConfigAtTheMountedFile() {
    assertThat(docker.env("EGRET_CONFIG")).isEqualTo("/etc/egret/egret.yaml");
  }

  @Test
  void checksHealthWithEgretReadyNotCurl() {
    List<String> hc = docker.healthcheck();
    assertThat(hc.get(0)).isEqualTo("java");
    assertThat(hc).containsSubsequence("-jar", "/app/egret.jar", "ready");
    assertThat(String.join(" ", hc)).doesNotContain("curl", "wget", "sh -c");
  }

  @Test
  void boundsHeapAndDirectMemoryForASidecar() {
    List<String> ep = docker.entrypoint();
    assertThat(ep.get(0)).isEqualTo("java");
    assertThat(ep).anyMatch(f -> f.startsWith("-XX:MaxRAMPercentage=") || f.startsWith("-Xmx"));
    assertThat(ep).anyMatch(f -> f.startsWith("-XX:MaxDirectMemorySize="));
    assertThat(ep).contains("-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError");
    assertThat(ep.subList(ep.size() - 2, ep.size())).containsExactly("-jar", "/app/egret.jar");
    assertThat(docker.cmd()).containsExactly("run");
  }

  @Test
  void shipsOnlyTheJarOnAJreBase() {
    DockerfileFacts runtime = docker.runtimeStage();
    assertThat(runtime.all("FROM").get(0)).contains("jre");
    assertThat(runtime.all("COPY")).singleElement().asString().contains("--from=build").endsWith("/app/egret.jar");
  }
}
