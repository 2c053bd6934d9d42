package dev.egret.tunnel;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.channel.DefaultEventLoop;
import io.netty.channel.EventLoop;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The tunnel's read buffers: a freed full-size buffer is the next read's on the same event loop
 * (the point: its memory is still in cache), at most {@link RelayBuffers#KEEP} are kept, and
 * nothing is kept off the event loops. The relay's own tests carry data through them.
 */
class RelayBuffersTest {
  static EventLoop loop;

  @BeforeAll
  static void start() {
    loop = new DefaultEventLoop();
  }

  @AfterAll
  static void stop() throws Exception {
    loop.shutdownGracefully(0, 5, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
  }

  private static <T> T onLoop(Callable<T> task) throws Exception {
    return loop.submit(task).get(10, TimeUnit.SECONDS);
  }

  @Test
  void theNextFullSizeReadGetsTheMemoryTheLastOneFreed() throws Exception {
    long[] addresses = onLoop(() -> {
      ByteBuf first = RelayBuffers.INSTANCE.directBuffer(RelayBuffers.SIZE);
      long a = first.memoryAddress();
      first.writeLong(42);
      first.release();
      ByteBuf second = RelayBuffers.INSTANCE.directBuffer(RelayBuffers.SIZE);
      long b = second.memoryAddress();
      // A reused buffer starts empty, whatever it held.
      long readable = second.readableBytes();
      second.release();
      return new long[] {a, b, readable};
    });
    assertThat(addresses[1]).isEqualTo(addresses[0]);
    assertThat(addresses[2]).isZero();
  }

  @Test
  void keepsAtMostKeepBuffersPerLoop() throws Exception {
    int kept = onLoop(() -> {
      List<ByteBuf> live = new ArrayList<>();
      for (int i = 0; i < RelayBuffers.KEEP + 3; i++) {
        live.add(RelayBuffers.INSTANCE.directBuffer(RelayBuffers.SIZE));
      }
      live.forEach(ByteBuf::release);
      return RelayBuffers.keptHere();
    });
    assertThat(kept).isEqualTo(RelayBuffers.KEEP);
  }

  @Test
  void otherSizesAndOtherThreadsAreNotKept() throws Exception {
    int full = onLoop(() -> {
      List<ByteBuf> live = new ArrayList<>();
      for (int i = 0; i < RelayBuffers.KEEP; i++) {
        live.add(RelayBuffers.INSTANCE.directBuffer(RelayBuffers.SIZE));
      }
      live.forEach(ByteBuf::release);
      ByteBuf small = RelayBuffers.INSTANCE.directBuffer(2048);
      small.release();
      return RelayBuffers.keptHere();
    });
    assertThat(full).isEqualTo(RelayBuffers.KEEP);
    // Taken on the loop, freed on a thread that is no event loop: released, not kept.
    ByteBuf elsewhere = onLoop(() -> RelayBuffers.INSTANCE.directBuffer(RelayBuffers.SIZE));
    assertThat(elsewhere.release()).isTrue();
    assertThat(onLoop(RelayBuffers::keptHere)).isEqualTo(RelayBuffers.KEEP - 1);
  }
}
