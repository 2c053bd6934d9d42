package dev.egret;

import com.sun.management.HotSpotDiagnosticMXBean;
import com.sun.management.OperatingSystemMXBean;
import com.sun.management.VMOption;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Refuses to start a JVM whose memory limits cannot fit the memory it was given.
 *
 * <p>A sidecar runs under a hard container limit (128 MiB in the sizing of the image's sidecar
 * JVM profile, deploy/jvm/sidecar.flags; 512 MiB for the gateway profile). If the
 * largest heap plus the largest direct-buffer pool plus what the JVM needs for itself exceeds
 * that limit, the process does not fail at start: it is OOM-killed later, under load, by the
 * kernel, with no Java-level message and every tunnel cut. So the arithmetic is done once,
 * before anything binds, and a limit that cannot hold is a start-up error naming the numbers
 * and the flags to change.
 *
 * <p>The limit is the smaller of the memory the JVM sees (the container's limit, which the
 * JDK reads from cgroups, else the machine's RAM) and {@code -XX:MaxRAM} when it is set. Direct
 * memory is {@code -XX:MaxDirectMemorySize}, which defaults to the max heap; Netty's pooled
 * buffers count against it unless {@code io.netty.maxDirectMemory} gives Netty its own, separate
 * cap, in which case both can fill and both are added.
 */
final class Footprint {
  static final long MIB = 1024 * 1024;

  /**
   * Anonymous memory the JVM itself needs beside the heap and direct buffers, under the
   * benchmark load (bench/run.sh, Java 17, the image's flags), with the client compiler only
   * ({@code -XX:TieredStopAtLevel=1}): metaspace and class space (25 MiB), code cache (12),
   * about 50 thread stacks (5), symbols (6), the CDS archive's copy-on-write part, GC and
   * malloc overhead. Measured: RssAnon 95 MiB with a 25 MiB heap and 6 MiB of direct buffers
   * in use, so 64 MiB beside them.
   */
  static final long RESERVE_C1 = 64 * MIB;

  /**
   * The same with C2 on (tiered compilation to level 4) and nothing capping its compilations:
   * C2's compiler arenas and a larger code cache added 35-45 MiB to the peak RSS in the same
   * benchmark (VmHWM 141-160 MiB against 106-116 MiB with C1 only, same heap and direct limits).
   * NMT and Java 25's MemStat put it on single compilations: one of Egret's hot methods takes
   * 15-32 MiB of arena while C2 compiles it, mostly register allocation.
   */
  static final long RESERVE_C2 = 96 * MIB;

  /**
   * C2 with each compilation's memory capped ({@code -XX:CompileCommand=MemLimit,*.*,SIZE},
   * Java 25: a compilation that would need more is given up): the C1 reserve plus the cap, for
   * the one C2 compilation that runs at a time (one C2 thread on 1-2 CPUs). Measured on Java 25
   * with the image's flags, C2 in place of -XX:TieredStopAtLevel=1, an 8 MiB cap and
   * -XX:+UseCompactObjectHeaders, under the benchmark load (bench/ab.sh, README "Performance"):
   * peak RssAnon 102.8 MiB with a 25 MiB heap committed and 6 MiB of direct buffers, so 72 MiB
   * beside them, which is 64 + 8.
   */
  static long reserveC2Capped(long cap) {
    return RESERVE_C1 + cap;
  }

  /**
   * The numbers the decision is made from; {@code limitSource} names where the limit came
   * from, {@code c2} whether the server compiler is on (it needs the larger reserve), and
   * {@code c2Cap} the memory each of its compilations may take, 0 when nothing caps it.
   */
  record Limits(long limit, String limitSource, long maxHeap, long maxDirect, String directSource,
      boolean c2, long c2Cap) {
    long reserve() {
      if (!c2) {
        return RESERVE_C1;
      }
      return c2Cap > 0 ? reserveC2Capped(c2Cap) : RESERVE_C2;
    }
  }

  private Footprint() {}

  /** The reason this JVM must not start, or empty when heap, direct memory and reserve fit. */
  static Optional<String> refusal(Limits l) {
    long need = l.maxHeap() + l.maxDirect() + l.reserve();
    if (need <= l.limit()) {
      return Optional.empty();
    }
    return Optional.of(String.format(
        "memory limits do not fit: max heap %d MiB + max direct memory %d MiB (%s) + %d MiB the"
            + " JVM needs for itself %s = %d MiB, above the %d MiB %s. Lower -Xmx or"
            + " -XX:MinRAMPercentage/-XX:MaxRAMPercentage, or -XX:MaxDirectMemorySize (the image's"
            + " JVM profiles fit a 128 MiB limit, sidecar, and a 512 MiB one, gateway), or give the"
            + " container more memory",
        mib(l.maxHeap()), mib(l.maxDirect()), l.directSource(), mib(l.reserve()),
        !l.c2() ? "(metaspace, code cache, threads)"
            : l.c2Cap() > 0 ? "with C2 on, each compilation capped at " + mib(l.c2Cap())
                + " MiB (metaspace, code cache, threads, compiler)"
            : "with C2 on (metaspace, code cache, threads, compiler; "
                + mib(RESERVE_C1) + " MiB with -XX:TieredStopAtLevel=1, "
                + mib(reserveC2Capped(8 * MIB)) + " MiB on Java 25 with"
                + " -XX:CompileCommand=MemLimit,*.*,8m)",
        mib(need), mib(l.limit()), l.limitSource()));
  }

  /** Reads this JVM's limits from its flags and the memory the JDK sees. */
  static Limits ofThisJvm() {
    HotSpotDiagnosticMXBean vm = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
    OperatingSystemMXBean os =
        (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    long limit = os.getTotalMemorySize();
    String limitSource = "memory limit of this container or machine";
    VMOption maxRam = vm.getVMOption("MaxRAM");
    if (maxRam.getOrigin() != VMOption.Origin.DEFAULT && Long.parseLong(maxRam.getValue()) < limit) {
      limit = Long.parseLong(maxRam.getValue());
      limitSource = "-XX:MaxRAM";
    }
    long maxHeap = Long.parseLong(vm.getVMOption("MaxHeapSize").getValue());
    long jdkDirect = Long.parseLong(vm.getVMOption("MaxDirectMemorySize").getValue());
    String directSource = "-XX:MaxDirectMemorySize";
    if (jdkDirect == 0) {
      jdkDirect = maxHeap;
      directSource = "no -XX:MaxDirectMemorySize, so as large as the heap";
    }
    long nettyDirect = nettyOwnCap(System.getProperty("io.netty.maxDirectMemory"));
    long maxDirect = jdkDirect;
    if (nettyDirect > 0) {
      maxDirect += nettyDirect;
      directSource += " + io.netty.maxDirectMemory";
    }
    // C2 is on unless tiered compilation stops at a C1 level; -XX:-TieredCompilation is C2 only.
    boolean c2 = !(Boolean.parseBoolean(vm.getVMOption("TieredCompilation").getValue())
        && Integer.parseInt(vm.getVMOption("TieredStopAtLevel").getValue()) <= 3);
    long cap = c2 ? compileMemLimit(ManagementFactory.getRuntimeMXBean().getInputArguments()) : 0;
    return new Limits(limit, limitSource, maxHeap, maxDirect, directSource, c2, cap);
  }

  /**
   * The per-compilation memory cap that {@code -XX:CompileCommand=MemLimit,*.*,SIZE} sets for
   * every method, in bytes; 0 when no such flag caps them all (a cap on some methods only
   * leaves the others uncapped). The last such flag wins, as in HotSpot; a {@code ~crash} or
   * {@code ~stop} suffix changes what happens at the cap, not the cap.
   */
  static long compileMemLimit(List<String> jvmArguments) {
    long cap = 0;
    for (String arg : jvmArguments) {
      if (!arg.startsWith("-XX:CompileCommand=")) {
        continue;
      }
      String[] parts = arg.substring("-XX:CompileCommand=".length()).split(",", -1);
      if (parts.length != 3 || !parts[0].equalsIgnoreCase("MemLimit")
          || !(parts[1].equals("*.*") || parts[1].equals("*::*"))) {
        continue;
      }
      String size = parts[2].replaceFirst("~.*$", "").trim().toLowerCase(Locale.ROOT);
      long unit = 1;
      if (!size.isEmpty() && "kmg".indexOf(size.charAt(size.length() - 1)) >= 0) {
        unit = 1L << (10 * ("kmg".indexOf(size.charAt(size.length() - 1)) + 1));
        size = size.substring(0, size.length() - 1);
      }
      try {
        cap = Math.max(0, Long.parseLong(size)) * unit;
      } catch (NumberFormatException e) {
        cap = 0; // HotSpot refuses such a flag at start; nothing is capped if it gets here.
      }
    }
    return cap;
  }

  /**
   * Netty's own direct-memory cap in bytes, or 0 when Netty counts against the JDK's. Netty
   * reads the property as bytes; negative (its default) means "the JDK's limit", and 0 makes it
   * use the JDK's cleaner-based buffers, which the JDK's limit covers.
   */
  static long nettyOwnCap(String property) {
    if (property == null || property.isBlank()) {
      return 0;
    }
    try {
      return Math.max(0, Long.parseLong(property.trim()));
    } catch (NumberFormatException e) {
      return 0; // Netty ignores an unparsable value the same way and keeps its default.
    }
  }

  /** {@code Run.serve}'s first step: prints the refusal and returns false when the limits cannot fit. */
  static boolean fits(PrintStream err) {
    Optional<String> refusal = refusal(ofThisJvm());
    refusal.ifPresent(r -> err.println("egret: cannot start: " + r));
    return refusal.isEmpty();
  }

  private static long mib(long bytes) {
    return (bytes + MIB - 1) / MIB;
  }
}
