package dev.egret.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The container image's contract (deploy/README.md), read from the Dockerfile. */
class DockerfileTest {
  static final String PROBE = "/usr/local/bin/egret-probe";
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

  /**
   * A HEALTHCHECK every 10 s must cost close to nothing and work without a shell: the static
   * probe built from deploy/healthcheck in its own stage, never a second JVM, sh or curl.
   */
  @Test
  void checksHealthWithTheStaticProbeNotAJvmOrAShell() {
    List<String> hc = docker.healthcheck();
    assertThat(hc).containsExactly(PROBE, "127.0.0.1:9901", "/readyz");
    assertThat(String.join(" ", hc)).doesNotContain("java", "curl", "wget", "sh -c");
    assertThat(docker.runtimeStage().all("COPY"))
        .anySatisfy(c -> assertThat(c).contains("--from=probe").endsWith(" " + PROBE));
    assertThat(docker.all("RUN")).anySatisfy(r -> assertThat(r).contains("deploy/healthcheck/build.sh /egret-probe"));
    assertThat(docker.all("FROM")).anySatisfy(f -> assertThat(f).endsWith(" AS probe"));
  }

  /**
   * The dependency layer must leave nothing to download: the source build runs offline, so an
   * artifact the layer missed fails the build instead of being fetched at package time.
   * (.ci/deploy-checks.sh runs both commands against an empty local repository.)
   */
  @Test
  void buildsTheSourcesOfflineAfterTheDependencyLayer() {
    List<String> runs = new DockerfileFacts(docker.instructions().subList(0, indexOfSecondFrom())).all("RUN");
    assertThat(runs).hasSize(2);
    assertThat(runs.get(0)).contains("package").doesNotContain("go-offline");
    assertThat(runs.get(1)).contains(" -o ", "package");
    List<String> copies = new DockerfileFacts(docker.instructions().subList(0, indexOfSecondFrom())).all("COPY");
    assertThat(copies.get(copies.size() - 1)).as("sources are copied after the dependency layer").startsWith("proxy/src");
  }

  private int indexOfSecondFrom() {
    int seen = 0;
    for (int i = 0; i < docker.instructions().size(); i++) {
      if (docker.instructions().get(i).startsWith("FROM ") && ++seen == 2) {
        return i;
      }
    }
    throw new AssertionError("the Dockerfile has one stage");
  }

  @Test
  void headerShowsADirectoryMountSoHotReloadWorks() throws java.io.IOException {
    String text = java.nio.file.Files.readString(DeployFiles.file("Dockerfile"));
    java.util.regex.Matcher run = java.util.regex.Pattern.compile("docker run [^\\n]*").matcher(text);
    assertThat(run.find()).as("a docker run example in the header").isTrue();
    assertThat(run.group()).contains(":/etc/egret:ro").doesNotContain("egret.yaml:/etc/egret/egret.yaml");
  }

  /**
   * The image runs the launcher, which picks a JVM profile by EGRET_JVM_PROFILE (sidecar unless
   * set) and holds no JVM flag of its own but where the archive and the jar are: the flags are
   * the profile files' (JvmProfilesTest checks them and that nothing else copies one).
   */
  @Test
  void runsTheLauncherWithTheSidecarProfileByDefault() throws java.io.IOException {
    assertThat(docker.entrypoint()).containsExactly("/app/egret");
    assertThat(docker.cmd()).containsExactly("run");
    assertThat(docker.env("EGRET_JVM_PROFILE")).isEqualTo("sidecar");
    assertThat(docker.runtimeStage().all("COPY")).contains("--chown=0:0 deploy/jvm/ /app/");
    String launcher = java.nio.file.Files.readString(DeployFiles.file("deploy/jvm/egret"));
    assertThat(launcher).contains("\"@$here/$profile.flags\"", "\"-XX:SharedArchiveFile=$here/egret.jsa\"",
        "-jar \"$here/egret.jar\"", "profile=\"${EGRET_JVM_PROFILE:-sidecar}\"");
    assertThat(java.nio.file.Files.isExecutable(DeployFiles.file("deploy/jvm/egret"))).isTrue();
    // The image's build context lets deploy/jvm in.
    assertThat(java.nio.file.Files.readAllLines(DeployFiles.file(".dockerignore"))).contains("!deploy/jvm/");
  }

  @Test
  void shipsOnlyTheJarTheLauncherAndTheProbeOnAJreBase() {
    DockerfileFacts runtime = docker.runtimeStage();
    assertThat(runtime.all("FROM").get(0)).contains("jre");
    assertThat(runtime.all("COPY")).hasSize(3);
    assertThat(runtime.all("COPY").get(0)).contains("--from=build").endsWith("/app/egret.jar");
    assertThat(runtime.all("COPY").get(1)).endsWith("deploy/jvm/ /app/");
    assertThat(runtime.all("COPY").get(2)).contains("--from=probe").endsWith(PROBE);
  }

  /**
   * The class-data archive is trained in the runtime stage with the sidecar profile's flags and
   * the launcher's class path (/app/egret.jar) into the file the launcher maps, or the JVM would
   * refuse to map it (silently, under -Xshare:auto) and every start would pay the full class
   * loading again. The JVM that records it runs {@code egret run} alone: the training's driver
   * (its upstream and clients) runs in another, so none of its classes go into the archive.
   */
  @Test
  void trainsTheClassDataArchiveWithTheSidecarProfile() {
    String training = docker.runtimeStage().all("RUN").stream()
        .filter(r -> r.contains("dev.egret.lambda.Training")).findFirst()
        .orElseThrow();
    assertThat(List.of(training.split("\\s+"))).containsSequence(
        "java", "-cp", "/app/egret.jar", "dev.egret.lambda.Training",
        "--static-archive", "/app/egret.jsa", "java", "@/app/sidecar.flags",
        "-cp", "/app/egret.jar", "dev.egret.cli.Egret", "run");
  }
}
