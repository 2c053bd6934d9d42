package dev.egret.testing;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A line sink for tests: give it to {@code new AccessLog(lines, capacity)}, or copy a
 * subprocess's output into it, then {@link #await} the lines as they arrive, without sleeping.
 */
public final class LogLines extends OutputStream {
  // Guarded by `this`: the access-log writer appends, the test thread reads.
  private final ByteArrayOutputStream partial = new ByteArrayOutputStream();
  private final List<String> lines = new ArrayList<>();

  @Override
  public synchronized void write(int b) {
    if (b == '\n') {
      lines.add(partial.toString(StandardCharsets.UTF_8));
      partial.reset();
      notifyAll();
    } else {
      partial.write(b);
    }
  }

  @Override
  public synchronized void write(byte[] b, int off, int len) {
    for (int i = off; i < off + len; i++) {
      write(b[i]);
    }
  }

  /** The complete lines so far. */
  public synchronized List<String> lines() {
    return List.copyOf(lines);
  }

  /**
   * Waits until at least {@code count} lines were written, then returns all of them.
   *
   * @throws AssertionError when the deadline passes first, naming what did arrive
   */
  public synchronized List<String> await(int count, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (lines.size() < count) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("expected " + count + " lines within " + timeout
            + ", got " + lines.size() + ": " + lines);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    return List.copyOf(lines);
  }

  /**
   * Waits until a line matching {@code wanted} was written, and returns the first such line.
   *
   * @throws AssertionError when the deadline passes first, naming what did arrive
   */
  public synchronized String awaitLine(Predicate<String> wanted, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      for (String line : lines) {
        if (wanted.test(line)) {
          return line;
        }
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("no wanted line within " + timeout + ", got: " + lines);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }
}
