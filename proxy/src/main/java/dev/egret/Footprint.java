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
   * What the JVM itself needs beside the heap and direct buffers, under load: metaspace and
   * class space, the CDS archive, the code cache, about 30 thread stacks, GC and compiler
   * arenas, symbols and malloc overhead. Native memory tracking under the benchmark load
   * (bench/run.sh, Java 17, the image's flags) committed 68-75 MiB outside heap and direct
   * buffers with C2 on; 56 MiB is the floor below which a run would be killed while compiling
   * the hot path, so a configuration that leaves less is refused.
   */
  static final long JVM_RESERVE = 56 * MIB;

  /** The numbers the decision is made from; {@code limitSource} names where the limit came from. */
  record Limits(long limit, String limitSource, long maxHeap, long maxDirect, String directSource) {}

  private Footprint() {}

  /** The reason this JVM must not start, or empty when heap, direct memory and reserve fit. */
  static Optional<String> refusal(Limits l) {
    long need = l.maxHeap() + l.maxDirect() + JVM_RESERVE;
    if (need <= l.limit()) {
      return Optional.empty();
    }
    return Optional.of(String.format(
        "memory limits do not fit: max heap %d MiB + max direct memory %d MiB (%s) + %d MiB the"
            + " JVM needs for itself (metaspace, code cache, threads) = %d MiB, above the %d MiB"
            + " %s. Lower -Xmx or -XX:MaxRAMPercentage, or -XX:MaxDirectMemorySize (the image's"
            + " flags fit a 128 MiB limit), or give the container more memory",
        mib(l.maxHeap()), mib(l.maxDirect()), l.directSource(), mib(JVM_RESERVE), mib(need),
        mib(l.limit()), l.limitSource()));
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
    return new Limits(limit, limitSource, maxHeap, maxDirect, directSource);
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
