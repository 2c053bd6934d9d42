package dev.egret;

import dev.egret.cli.Egret;
import static dev.egret.Footprint.MIB;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.Footprint.Limits;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Egret refuses to start when its heap, direct memory and the JVM's own needs cannot fit its limit. */
class FootprintTest {
  @TempDir Path dir;

  private static Limits limits(long limitMib, long heapMib, long directMib, boolean c2) {
    return new Limits(limitMib * MIB, "-XX:MaxRAM", heapMib * MIB, directMib * MIB,
        "-XX:MaxDirectMemorySize", c2, 0);
  }

  @Test
  void theOldImageFlagsUnderA128MibLimitAreRefusedNamingEveryNumber() {
    // The old ENTRYPOINT at -XX:MaxRAM=128m: a 64 MiB heap (see below), 128 MiB of direct
    // memory, C2 on.
    assertThat(Footprint.refusal(limits(128, 64, 128, true))).hasValueSatisfying(r -> assertThat(r)
        .startsWith("memory limits do not fit: max heap 64 MiB + max direct memory 128 MiB"
            + " (-XX:MaxDirectMemorySize) + 96 MiB the JVM needs for itself with C2 on")
        .contains("64 MiB with -XX:TieredStopAtLevel=1")
        .contains("= 288 MiB, above the 128 MiB -XX:MaxRAM")
        .contains("-XX:MaxRAMPercentage").contains("-XX:MaxDirectMemorySize"));
  }

  @Test
  void theImagesSizingFitsWithC1OnlyAndWouldNotWithC2() {
    // -XX:MinRAMPercentage=30 -XX:MaxRAMPercentage=30 at 128 MiB is a 40 MiB heap.
    assertThat(Footprint.refusal(limits(128, 40, 16, false))).isEmpty();
    assertThat(Footprint.refusal(limits(128, 40, 16, true))).isPresent();
  }

  @Test
  void theImagesSizingFitsWithC2WhenEachCompilationIsCapped() {
    // The image on Java 25: the same heap and direct limits, C2 on, -XX:CompileCommand=MemLimit
    // at 8 MiB: 40 + 16 + (64 + 8) = 128.
    Limits capped = new Limits(128 * MIB, "-XX:MaxRAM", 40 * MIB, 16 * MIB,
        "-XX:MaxDirectMemorySize", true, 8 * MIB);
    assertThat(capped.reserve()).isEqualTo(72 * MIB);
    assertThat(Footprint.refusal(capped)).isEmpty();
    Limits looser = new Limits(128 * MIB, "-XX:MaxRAM", 40 * MIB, 16 * MIB,
        "-XX:MaxDirectMemorySize", true, 16 * MIB);
    assertThat(Footprint.refusal(looser)).hasValueSatisfying(r -> assertThat(r)
        .contains("+ 80 MiB the JVM needs for itself with C2 on, each compilation capped at 16 MiB")
        .contains("= 136 MiB, above the 128 MiB -XX:MaxRAM"));
    // The cap only matters with C2 on.
    assertThat(new Limits(128 * MIB, "m", 40 * MIB, 16 * MIB, "d", false, 8 * MIB).reserve())
        .isEqualTo(Footprint.RESERVE_C1);
  }

  @Test
  void readsTheCompileMemoryCapOnlyWhenItCoversEveryMethod() {
    assertThat(Footprint.compileMemLimit(List.of())).isZero();
    assertThat(Footprint.compileMemLimit(List.of("-XX:CompileCommand=quiet",
        "-XX:CompileCommand=MemLimit,*.*,8m"))).isEqualTo(8 * MIB);
    assertThat(Footprint.compileMemLimit(List.of("-XX:CompileCommand=MemLimit,*::*,512k~crash")))
        .isEqualTo(512 * 1024);
    assertThat(Footprint.compileMemLimit(List.of("-XX:CompileCommand=MemLimit,*.*,8388608")))
        .isEqualTo(8 * MIB);
    // The last one wins, as in HotSpot.
    assertThat(Footprint.compileMemLimit(List.of("-XX:CompileCommand=MemLimit,*.*,8m",
        "-XX:CompileCommand=MemLimit,*.*,1g"))).isEqualTo(1024 * MIB);
    // Some methods only: the others are not capped.
    assertThat(Footprint.compileMemLimit(List.of(
        "-XX:CompileCommand=MemLimit,dev.egret.*::*,8m"))).isZero();
    assertThat(Footprint.compileMemLimit(List.of("-XX:CompileCommand=MemStat,*.*,print",
        "-XX:CompileCommand=MemLimit,*.*,lots"))).isZero();
  }

  @Test
  void theBoundaryIsExact() {
    long limit = 128 * MIB;
    long heap = 40 * MIB;
    long direct = limit - heap - Footprint.RESERVE_C1;
    assertThat(Footprint.refusal(new Limits(limit, "m", heap, direct, "d", false, 0))).isEmpty();
    assertThat(Footprint.refusal(new Limits(limit, "m", heap, direct + 1, "d", false, 0)))
        .isPresent();
  }

  @Test
  void nettysOwnCapCountsOnlyWhenItIsAPositiveNumberOfBytes() {
    assertThat(Footprint.nettyOwnCap(null)).isZero();
    assertThat(Footprint.nettyOwnCap(" ")).isZero();
    assertThat(Footprint.nettyOwnCap("-1")).isZero();     // Netty's default: the JDK's limit
    assertThat(Footprint.nettyOwnCap("0")).isZero();      // JDK buffers, under the JDK's limit
    assertThat(Footprint.nettyOwnCap("64m")).isZero();    // Netty ignores it too: bytes only
    assertThat(Footprint.nettyOwnCap("33554432")).isEqualTo(32 * MIB);
  }

  @Test
  void readsThisJvmsOwnHeapAndMemory() {
    Limits mine = Footprint.ofThisJvm();
    long physical = ((com.sun.management.OperatingSystemMXBean)
        ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize();
    assertThat(mine.maxHeap()).isGreaterThanOrEqualTo(Runtime.getRuntime().maxMemory());
    assertThat(mine.limit()).isPositive().isLessThanOrEqualTo(physical);
    assertThat(mine.maxDirect()).isPositive();
  }

  /** The probe in a child JVM with {@code flags}: its exit code and output. */
  private static Probe probe(String... flags) throws Exception {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(List.of(flags));
    command.addAll(List.of("-cp", classPath(), FootprintProbe.class.getName()));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).as("probe exits").isTrue();
    return new Probe(p.exitValue(), out);
  }

  record Probe(int code, String out) {}

  @Test
  void maxRamIsTheLimitAndDirectMemoryDefaultsToTheHeap() throws Exception {
    Probe p = probe("-XX:MaxRAM=128m", "-Xmx64m");
    assertThat(p.code()).as(p.out()).isEqualTo(1);
    assertThat(p.out()).contains("max heap 64 MiB + max direct memory 64 MiB (no"
        + " -XX:MaxDirectMemorySize, so as large as the heap)").contains("128 MiB -XX:MaxRAM");
  }

  @Test
  void nettysSeparateCapIsAddedToTheJdksDirectLimit() throws Exception {
    Probe p = probe("-XX:MaxRAM=128m", "-XX:TieredStopAtLevel=1", "-Xmx32m",
        "-XX:MaxDirectMemorySize=16m", "-Dio.netty.maxDirectMemory=" + 32 * MIB);
    assertThat(p.code()).as(p.out()).isEqualTo(1);
    assertThat(p.out()).contains("max direct memory 48 MiB (-XX:MaxDirectMemorySize"
        + " + io.netty.maxDirectMemory) + 64 MiB the JVM needs for itself (metaspace");
    Probe without = probe("-XX:MaxRAM=128m", "-XX:TieredStopAtLevel=1", "-Xmx32m",
        "-XX:MaxDirectMemorySize=16m");
    assertThat(without.code()).as(without.out()).isZero();
    assertThat(without.out()).isEmpty();
  }

  @Test
  void theServerCompilerNeedsTheLargerReserve() throws Exception {
    // 32 + 16 + 64 fits 128 with C1 only (above); with C2 the same limits are refused.
    Probe p = probe("-XX:MaxRAM=128m", "-Xmx32m", "-XX:MaxDirectMemorySize=16m");
    assertThat(p.code()).as(p.out()).isEqualTo(1);
    assertThat(p.out()).contains("+ 96 MiB the JVM needs for itself with C2 on");
    assertThat(probe("-XX:MaxRAM=128m", "-XX:-TieredCompilation", "-XX:TieredStopAtLevel=1",
        "-Xmx32m", "-XX:MaxDirectMemorySize=16m").out()).contains("with C2 on");
  }

  /**
   * The image's two JVM profiles (deploy/jvm/*.flags, passed as the java @argument-file the
   * launcher passes) each fit the memory limit they are sized for ("# memory limit: SIZE"), and
   * neither fits half of it: the sizing is the check's, not luck.
   */
  @Test
  void bothJvmProfilesFitTheLimitTheyAreSizedForAndNotHalfOfIt() throws Exception {
    Path jvm = repoRoot().resolve("deploy/jvm");
    for (String profile : List.of("sidecar", "gateway")) {
      Path flags = jvm.resolve(profile + ".flags");
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^# memory limit: *(\\d+)m\\b")
          .matcher(Files.readString(flags));
      assertThat(m.find()).as("%s: a '# memory limit: SIZEm' line", flags).isTrue();
      long limitMib = Long.parseLong(m.group(1));
      Probe fits = probe("@" + flags, "-XX:MaxRAM=" + limitMib + "m");
      assertThat(fits.code()).as("%s at %d MiB: %s", profile, limitMib, fits.out()).isZero();
      Probe half = probe("@" + flags, "-XX:MaxRAM=" + limitMib / 2 + "m");
      assertThat(half.code()).as("%s at %d MiB: %s", profile, limitMib / 2, half.out()).isEqualTo(1);
      assertThat(half.out()).contains("memory limits do not fit")
          .contains(profile.equals("sidecar") ? "the JVM needs for itself (metaspace" : "with C2 on");
    }
  }

  private static Path repoRoot() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isDirectory(p.resolve("deploy/jvm")) && Files.isRegularFile(p.resolve("proxy/pom.xml"))) {
        return p;
      }
    }
    throw new IllegalStateException("no checkout root with deploy/jvm above " + Path.of("").toAbsolutePath());
  }

  @Test
  void egretRunRefusesBeforeReadingTheConfigOrBindingAnything() throws Exception {
    // The config file does not exist: the memory check comes first, so the error is about memory.
    Path missing = dir.resolve("absent.yaml");
    List<String> command = List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:MaxRAM=128m", "-XX:MaxRAMPercentage=40", "-XX:MaxDirectMemorySize=128m",
        "-cp", classPath(), "dev.egret.cli.Egret", "run", "--config", missing.toString());
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as(out).isEqualTo(1);
    // With a small limit HotSpot sizes the heap by MinRAMPercentage (default 50%), not by
    // MaxRAMPercentage: 64 MiB here, not 40%.
    assertThat(out).startsWith("egret: cannot start: memory limits do not fit: max heap 64 MiB"
        + " + max direct memory 128 MiB").doesNotContain("absent.yaml");
    assertThat(Files.exists(missing)).isFalse();
  }

  private static String classPath() {
    String surefire = System.getProperty("surefire.test.class.path");
    return surefire != null && !surefire.isBlank() ? surefire
        : System.getProperty("java.class.path");
  }
}
