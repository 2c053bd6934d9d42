package dev.egret.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The fuzz tests' leak check can fail: a buffer dropped unreleased is recorded, from either
 * allocator, even after a test has set a leak listener of its own for every buffer (which once
 * left the recorder deaf for the rest of a full run).
 */
class LeakRecorderTest {
  private ResourceLeakDetector.Level before;

  @BeforeEach
  void trackEveryBuffer() {
    before = ResourceLeakDetector.getLevel();
    ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
  }

  @AfterEach
  void restore() {
    ResourceLeakDetector.setLevel(before);
  }

  @Test
  void recordsABufferDroppedWithoutRelease() {
    leakUnpooled();
    assertThat(awaitLeaks("leakUnpooled")).isNotEmpty();
  }

  @Test
  void recordsAPooledBufferDroppedWithoutRelease() {
    leakPooled();
    assertThat(awaitLeaks("leakPooled")).isNotEmpty();
  }

  @Test
  void recordsALeakWhileAnotherLeakListenerIsSet() {
    List<String> heard = new ArrayList<>();
    ByteBufUtil.setLeakListener((type, records) -> {
      synchronized (heard) {
        heard.add(records);
      }
    });
    try {
      leakWithAListenerSet();
      assertThat(awaitLeaks("leakWithAListenerSet")).isNotEmpty();
      synchronized (heard) {
        assertThat(heard).as("the other listener hears it too")
            .anyMatch(r -> r.contains("leakWithAListenerSet"));
      }
    } finally {
      ByteBufUtil.setLeakListener(null);
    }
  }

  /** Collects and allocates until the leak is reported; Netty looks when it tracks a new buffer. */
  private static List<String> awaitLeaks(String marker) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    List<String> leaks = List.of();
    while (leaks.isEmpty() && System.nanoTime() < deadline) {
      System.gc();
      UnpooledByteBufAllocator.DEFAULT.directBuffer(1).release();
      PooledByteBufAllocator.DEFAULT.directBuffer(1).release();
      leaks = LeakRecorder.leaks(marker);
    }
    return leaks;
  }

  private static void leakUnpooled() {
    ByteBuf leaked = UnpooledByteBufAllocator.DEFAULT.directBuffer(8);
    leaked.writeLong(42);
  }

  private static void leakPooled() {
    ByteBuf leaked = PooledByteBufAllocator.DEFAULT.directBuffer(8);
    leaked.writeLong(42);
  }

  private static void leakWithAListenerSet() {
    ByteBuf leaked = UnpooledByteBufAllocator.DEFAULT.directBuffer(8);
    leaked.writeLong(42);
  }
}
