package dev.egret.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The fuzz tests' leak check can fail: a buffer dropped unreleased is recorded. */
class LeakRecorderTest {
  @Test
  void recordsABufferDroppedWithoutRelease() {
    ResourceLeakDetector.Level before = ResourceLeakDetector.getLevel();
    ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
    try {
      leakOne();
      long deadline = System.nanoTime() + 30_000_000_000L;
      List<String> leaks = List.of();
      while (leaks.isEmpty() && System.nanoTime() < deadline) {
        System.gc();
        // Netty looks for collected, unreleased buffers when it tracks a new one.
        UnpooledByteBufAllocator.DEFAULT.buffer(1).release();
        leaks = LeakRecorder.leaks("leakOne");
      }
      assertThat(leaks).isNotEmpty();
    } finally {
      ResourceLeakDetector.setLevel(before);
    }
  }

  private static void leakOne() {
    ByteBuf leaked = UnpooledByteBufAllocator.DEFAULT.buffer(8);
    leaked.writeLong(42);
  }
}
