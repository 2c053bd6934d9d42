package dev.egret.propose;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigFiles;
import dev.egret.config.EgretConfig;
import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code egret propose} in a JVM of its own with a small heap, on logs of tens of thousands of
 * hosts: the proposal is streamed, never larger than the 4 MiB a config may have, and when it
 * cannot hold every host it says so (in the output, on stderr and in the exit code) and still
 * passes {@code egret check}.
 */
class ProposeLargeLogTest {
  /** Bounds propose's memory: a proposal held whole, or a config of every host, does not fit. */
  private static final String HEAP = "-Xmx128m";
  private static final Pattern LEFT_OUT = Pattern.compile(
      "# INCOMPLETE: (\\d+) proposed rules \\(for (\\d+) hosts, (\\d+) hops\\) did not fit");

  @TempDir Path dir;

  record Result(int code, Path out, String err) {}

  /**
   * Per host {@code hN.svcK.exampleJ.com} a CONNECT and an {@code http://} GET: about 175 bytes
   * of proposal each, so 20,000 hosts make 3.5 MB, over the 3 MiB where the config reader once
   * stopped.
   */
  private Path log(int hosts) throws Exception {
    Path log = dir.resolve(hosts + ".log");
    try (BufferedWriter w = Files.newBufferedWriter(log)) {
      for (int i = 0; i < hosts; i++) {
        String host = "h" + i + ".svc" + (i % 500) + ".example" + (i % 7) + ".com";
        w.write("{\"time\":\"2026-12-02T01:00:00Z\",\"method\":\"CONNECT\",\"url\":\"" + host
            + ":443\",\"kind\":\"tunnel\",\"outcome\":\"reported\",\"error\":\"none\"}\n");
        w.write("{\"time\":\"2026-12-02T01:00:00Z\",\"method\":\"GET\",\"url\":\"http://" + host
            + "/v1/items/" + i + "\",\"kind\":\"upgrade\",\"outcome\":\"reported\",\"error\":\"none\"}\n");
      }
    }
    return log;
  }

  private Result propose(String... args) throws Exception {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    // C1 only and one GC thread: a short run on a shared machine, as for the other child JVMs.
    command.addAll(List.of(HEAP, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"));
    String cp = System.getProperty("surefire.test.class.path");
    command.addAll(List.of("-cp", cp != null && !cp.isBlank() ? cp : System.getProperty("java.class.path"),
        "dev.egret.cli.Egret", "propose"));
    command.addAll(List.of(args));
    Path out = dir.resolve("proposed.yaml");
    Path err = dir.resolve("propose.err");
    Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile())
        .start();
    if (!p.waitFor(90, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("propose did not finish in 90 s: " + Files.readString(err));
    }
    return new Result(p.exitValue(), out, Files.readString(err, StandardCharsets.UTF_8));
  }

  @Test
  void proposesTwentyThousandHostsAsOneConfigThatLoads() throws Exception {
    Result r = propose(log(20_000).toString());
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(Files.size(r.out())).isBetween(3L << 20, (long) ConfigFiles.MAX_CONFIG_BYTES);
    EgretConfig c = ConfigCompiler.load(r.out());
    assertThat(c.allowlist().rules()).hasSize(20_000);
    assertThat(Files.readString(r.out())).doesNotContain("INCOMPLETE");
    assertThat(r.err()).doesNotContain("INCOMPLETE").contains("proposed 20000 rules");
  }

  @Test
  void sixtyThousandHostsWriteWhatFitsAndSayItIsIncomplete() throws Exception {
    Result r = propose(log(60_000).toString());
    assertThat(r.code()).as(r.err()).isEqualTo(1);
    long size = Files.size(r.out());
    assertThat(size).isBetween((long) ConfigFiles.MAX_CONFIG_BYTES - 4096,
        (long) ConfigFiles.MAX_CONFIG_BYTES);
    String text = Files.readString(r.out());
    assertThat(text).startsWith("# INCOMPLETE:");
    Matcher m = LEFT_OUT.matcher(text);
    assertThat(m.find()).as("the end of the allow list says what was left out").isTrue();
    EgretConfig c = ConfigCompiler.load(r.out());
    int rules = c.allowlist().rules().size();
    assertThat(rules + Integer.parseInt(m.group(1))).isEqualTo(60_000);
    assertThat(Integer.parseInt(m.group(2))).isEqualTo(60_000 - rules);
    assertThat(Integer.parseInt(m.group(3))).isEqualTo(2 * (60_000 - rules));
    assertThat(r.err()).contains("INCOMPLETE").contains(m.group(1) + " proposed rules")
        .contains("--group");
  }

  @Test
  void groupingSixtyThousandHostsFitsAndIsComplete() throws Exception {
    Result r = propose("--group", "5", log(60_000).toString());
    assertThat(r.code()).as(r.err()).isZero();
    EgretConfig c = ConfigCompiler.load(r.out());
    // Each svcK.exampleJ.com holds 60000 / 3500 hosts: folded there, not at exampleJ.com.
    assertThat(c.allowlist().rules()).hasSize(3500)
        .allSatisfy(rule -> assertThat(rule.host().pattern()).matches("\\*\\*\\.svc\\d+\\.example\\d\\.com"));
    assertThat(Files.readString(r.out())).doesNotContain("INCOMPLETE");
  }
}
