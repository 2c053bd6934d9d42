package dev.egret;

import com.sun.management.HotSpotDiagnosticMXBean;
import com.sun.management.OperatingSystemMXBean;
import com.sun.management.VMOption;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.util.Optional;

/**
 * Refuses to start a JVM whose memory limits cannot fit the memory it was given.
 *
 * <p>A sidecar runs under a hard container limit (128 MiB in the image's sizing). If the
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
   * The same with C2 on (tiered compilation to level 4): C2's compiler arenas and a larger
   * code cache added 35-45 MiB to the peak RSS in the same benchmark (VmHWM 141-160 MiB
   * against 106-116 MiB with C1 only, same heap and direct limits).
   */
  static final long RESERVE_C2 = 96 * MIB;

  /**
   * The numbers the decision is made from; {@code limitSource} names where the limit came
   * from, {@code c2} whether the server compiler is on (it needs the larger reserve).
   */
  record Limits(long limit, String limitSource, long maxHeap, long maxDirect, String directSource,
      boolean c2) {
    long reserve() {
      return c2 ? RESERVE_C2 : RESERVE_C1;
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
            + " flags fit a 128 MiB limit), or give the container more memory",
        mib(l.maxHeap()), mib(l.maxDirect()), l.directSource(), mib(l.reserve()),
        l.c2() ? "with C2 on (metaspace, code cache, threads, compiler; "
            + mib(RESERVE_C1) + " MiB with -XX:TieredStopAtLevel=1)"
            : "(metaspace, code cache, threads)",
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
    return new Limits(limit, limitSource, maxHeap, maxDirect, directSource, c2);
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
