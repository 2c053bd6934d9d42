package dev.egret.tunnel;

import io.netty.buffer.AbstractByteBufAllocator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.UnpooledHeapByteBuf;
import io.netty.buffer.UnpooledUnsafeDirectByteBuf;
import io.netty.util.concurrent.FastThreadLocal;
import io.netty.util.concurrent.FastThreadLocalThread;
import io.netty.util.internal.CleanableDirectBuffer;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * The buffers a tunnel's two sockets read into. A relayed read is written on and, once the
 * other socket took it, freed: at most a few are alive per tunnel. So each event loop keeps the
 * last {@link #KEEP} freed full-size read buffers and hands the most recent one to the next
 * read, whose copy out of the socket then writes to memory still in the CPU's cache.
 *
 * <p>Why not Netty's allocators: the adaptive pool cuts each read from a chunk about ten reads
 * long and moves on, so every read wrote to memory out of cache, and the socket's copy into it
 * was a quarter of the tunnel's CPU; allocating each buffer from the JDK costs a zeroing, a
 * Cleaner and a direct-memory reservation per read. With reuse, a tunnel took about a third less
 * CPU per GiB relayed (docs/performance.md).
 *
 * <p>What a recycled buffer held before is never read: a socket read writes the bytes it
 * reports, and only those are relayed. The kept buffers are direct memory like any other,
 * counted against the same limit: at most {@link #KEEP} × 64 KiB per event loop.
 */
final class RelayBuffers extends AbstractByteBufAllocator {
  static final RelayBuffers INSTANCE = new RelayBuffers();

  /** The largest read Netty's adaptive read sizing asks for, the size a busy tunnel reads. */
  static final int SIZE = 64 * 1024;
  /** Freed buffers kept per event loop: a tunnel relaying one way has one or two alive. */
  static final int KEEP = 4;

  private static final FastThreadLocal<ArrayDeque<CleanableDirectBuffer>> FREE =
      new FastThreadLocal<>() {
        @Override
        protected ArrayDeque<CleanableDirectBuffer> initialValue() {
          return new ArrayDeque<>(KEEP);
        }

        @Override
        protected void onRemoval(ArrayDeque<CleanableDirectBuffer> kept) {
          for (CleanableDirectBuffer b : kept) {
            b.clean();
          }
          kept.clear();
        }
      };

  private RelayBuffers() {
    super(true);
  }

  @Override
  protected ByteBuf newHeapBuffer(int initialCapacity, int maxCapacity) {
    return new UnpooledHeapByteBuf(this, initialCapacity, maxCapacity);
  }

  @Override
  protected ByteBuf newDirectBuffer(int initialCapacity, int maxCapacity) {
    return new Buffer(this, initialCapacity, maxCapacity);
  }

  @Override
  public boolean isDirectBufferPooled() {
    return false;
  }

  /** The buffers kept on this thread now (for the tests). */
  static int keptHere() {
    return Thread.currentThread() instanceof FastThreadLocalThread ? FREE.get().size() : 0;
  }

  private static final class Buffer extends UnpooledUnsafeDirectByteBuf {
    Buffer(RelayBuffers alloc, int initialCapacity, int maxCapacity) {
      super(alloc, initialCapacity, maxCapacity);
    }

    @Override
    protected CleanableDirectBuffer allocateDirectBuffer(int capacity) {
      if (capacity == SIZE && Thread.currentThread() instanceof FastThreadLocalThread) {
        CleanableDirectBuffer kept = FREE.get().pollLast();
        if (kept != null) {
          return kept;
        }
        return new Kept(super.allocateDirectBuffer(capacity));
      }
      return super.allocateDirectBuffer(capacity);
    }
  }

  /** A full-size buffer that goes back to the freeing event loop's few, or to the JDK. */
  private static final class Kept implements CleanableDirectBuffer {
    private final CleanableDirectBuffer memory;

    Kept(CleanableDirectBuffer memory) {
      this.memory = memory;
    }

    @Override
    public ByteBuffer buffer() {
      return memory.buffer();
    }

    @Override
    public boolean hasMemoryAddress() {
      return memory.hasMemoryAddress();
    }

    @Override
    public long memoryAddress() {
      return memory.memoryAddress();
    }

    @Override
    public void clean() {
      if (Thread.currentThread() instanceof FastThreadLocalThread) {
        ArrayDeque<CleanableDirectBuffer> kept = FREE.get();
        if (kept.size() < KEEP) {
          memory.buffer().clear();
          kept.addLast(this);
          return;
        }
      }
      memory.clean();
    }
  }
}
