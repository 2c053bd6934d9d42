package dev.egret.telemetry;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.lang.management.ManagementFactory;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Ends the process, with exit code 1 and one line that names the cause, on a failure Egret
 * cannot serve through: an {@link OutOfMemoryError} (or another {@link VirtualMachineError}), and
 * an I/O failure that a library logs while the descriptor table is full. Arm it once, where the
 * process starts serving:
 *
 * <pre>{@code
 * Fatal.arm();                    // egret run, egret lambda (Run.start)
 * ...
 * Fatal.check(cause);             // in a handler that would otherwise swallow the error
 * }</pre>
 *
 * <p>Why exit rather than carry on: an event loop that hit an OutOfMemoryError may have died or
 * left a connection, a pool or a timer half-updated, and Netty and Vert.x catch and log such
 * errors where they happen, so the process stays alive while its listeners answer nothing. A
 * listener whose accept fails with the table full only pauses ({@link AcceptPause}): what the
 * listeners admit is bounded, so that table empties again. Alive but serving nothing is the worst state for
 * an orchestrator, whose restart is the fix. Egret's own handlers pass errors to {@link #check};
 * the errors that Netty and Vert.x swallow are all logged through java.util.logging (Netty and
 * Vert.x log through SLF4J, bound to it), so a handler on the root logger sees them too: an
 * event loop that dies, an exception that reaches the end of a pipeline, a task that throws.
 * The container images also start the JVM with {@code -XX:+ExitOnOutOfMemoryError}, which ends
 * it at the throw with the JVM's own line and exit code 3, before any of this can run.
 *
 * <p>Unarmed (a test that embeds Egret), it only writes the line: it never ends a JVM it does not
 * own.
 */
public final class Fatal {
  /**
   * Descriptors left that still count as a full table: between the failed accept and the count,
   * other threads may have closed a few.
   */
  static final int FULL_TABLE_MARGIN = 16;

  private static volatile boolean armed;
  private static final Object ARMING = new Object();
  private static volatile com.sun.management.UnixOperatingSystemMXBean unix;
  /**
   * Heap given back when a fatal error is seen, so that the line naming it can be written even
   * when the error is an OutOfMemoryError.
   */
  @SuppressWarnings("unused")
  private static volatile byte[] reserve;
  private static final String EXITING = "; exiting with code 1 so that Egret is restarted\n";
  /** The lines for when even building one fails, encoded before there is any need. */
  private static final byte[] OUT_OF_MEMORY = ("egret: fatal: java.lang.OutOfMemoryError"
      + EXITING).getBytes(StandardCharsets.UTF_8);
  private static final byte[] VM_ERROR = ("egret: fatal: a java.lang.VirtualMachineError"
      + EXITING).getBytes(StandardCharsets.UTF_8);
  private static final FileOutputStream stderr = new FileOutputStream(FileDescriptor.err);

  private Fatal() {}

  /**
   * From now on a fatal failure ends the process, with its line on standard error (descriptor 2,
   * written directly), and the errors that libraries only log are watched. Idempotent.
   */
  public static void arm() {
    synchronized (ARMING) {
      if (armed) {
        return;
      }
      armed = true;
      reserve = new byte[256 * 1024];
      // Loaded now: counting descriptors later needs the management library, and loading it
      // when the table is full would fail for want of a descriptor.
      if (ManagementFactory.getOperatingSystemMXBean()
          instanceof com.sun.management.UnixOperatingSystemMXBean os) {
        os.getOpenFileDescriptorCount();
        unix = os;
      }
      Thread.setDefaultUncaughtExceptionHandler((thread, e) -> {
        check(e);
        // What the JDK prints without a handler (ThreadGroup would call this one again).
        System.err.print("Exception in thread \"" + thread.getName() + "\" ");
        e.printStackTrace(System.err);
      });
      // Loaded now too: the console handler formats a record's time in the default zone, and
      // reading the zone data when the table is full fails inside the logging call, killing the
      // thread that logs (an event loop, the acceptor) before any handler after it runs.
      java.util.TimeZone.getDefault();
      java.time.ZoneId.systemDefault();
      Logger root = Logger.getLogger("");
      Handler[] others = root.getHandlers();
      for (Handler h : others) {
        root.removeHandler(h);
      }
      root.addHandler(new Handler() {
        @Override
        public void publish(LogRecord record) {
          Throwable t = record.getThrown();
          if (t != null) {
            check(t, record);
            if (t instanceof IOException && tableFull()) {
              exit("the descriptor table is full (" + describeTable() + "), logged by "
                  + record.getLoggerName() + ": " + t);
            }
          }
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
      });
      // Put back after it: a fatal record ends the process before a handler may fail on it.
      for (Handler h : others) {
        root.addHandler(h);
      }
    }
  }

  /** Ends the process if {@code t} is, or was caused by, a {@link VirtualMachineError}. */
  public static void check(Throwable t) {
    check(t, null);
  }

  private static void check(Throwable t, LogRecord where) {
    Throwable seen = t;
    for (int depth = 0; seen != null && depth < 16; depth++, seen = seen.getCause()) {
      if (seen instanceof VirtualMachineError fatal) {
        exit(fatal, where);
      }
    }
  }

  /** Halts on {@code fatal}; the line is built here, where running out of memory again is safe. */
  private static void exit(VirtualMachineError fatal, LogRecord where) {
    reserve = null; // room for the line below
    byte[] fallback = fatal instanceof OutOfMemoryError ? OUT_OF_MEMORY : VM_ERROR;
    String cause;
    try {
      cause = fatal + (where == null ? "" : " (logged by " + where.getLoggerName() + ")");
    } catch (Throwable e) {
      write(fallback);
      return;
    }
    exit(cause, fallback);
  }

  /** The descriptor limit ({@code ulimit -n}), or -1 where the JVM cannot tell. */
  public static long descriptorLimit() {
    var os = unix;
    return os == null ? -1 : os.getMaxFileDescriptorCount();
  }

  /** Whether (nearly) every descriptor is open; true when even counting them fails. */
  static boolean tableFull() {
    var os = unix;
    if (os == null) {
      return false;
    }
    try {
      long open = os.getOpenFileDescriptorCount();
      return open >= os.getMaxFileDescriptorCount() - FULL_TABLE_MARGIN;
    } catch (Throwable e) {
      // Counting opens /proc/self/fd, which fails only when no descriptor is left.
      return true;
    }
  }

  static String describeTable() {
    var os = unix;
    try {
      return os.getOpenFileDescriptorCount() + " of " + os.getMaxFileDescriptorCount() + " open";
    } catch (Throwable e) {
      return "none of " + os.getMaxFileDescriptorCount() + " left";
    }
  }

  /** Writes the line and halts with exit code 1; unarmed, only writes it. */
  public static void exit(String cause) {
    exit(cause, VM_ERROR);
  }

  private static void exit(String cause, byte[] fallback) {
    reserve = null;
    if (!armed) {
      System.err.println("egret: fatal: " + cause
          + " (not exiting: this process did not start Egret)");
      return;
    }
    byte[] line;
    try {
      line = ("egret: fatal: " + cause + EXITING).getBytes(StandardCharsets.UTF_8);
    } catch (Throwable e) {
      line = fallback; // out of memory even for the line: the one written at arm time
    }
    write(line);
  }

  /**
   * Writes straight to descriptor 2 and halts: System.err's buffer and lock may be held by a
   * thread the error stopped, and shutdown hooks would need the memory or descriptors that are
   * gone.
   */
  private static void write(byte[] line) {
    try {
      stderr.write(line);
    } catch (Throwable e) {
      // nothing left to tell it with; the exit code still says it
    } finally {
      Runtime.getRuntime().halt(1);
    }
  }
}
