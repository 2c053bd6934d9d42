package dev.egret.config;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * When a config is read again, and what becomes of the attempt: the reload's state machine, apart
 * from the sockets it serves. Two callers start attempts: the watcher's periodic look ({@code
 * forced = false}: compile only if some file changed) and SIGHUP ({@code forced = true}: compile
 * now). The rules:
 *
 * <ul>
 *   <li>Single flight: one attempt at a time. A look during an attempt is dropped (the attempt
 *       is reading the files already); a SIGHUP waits and runs once the attempt ends, so the
 *       edit just made is read.
 *   <li>Reads and compiles run on {@code threads}, never on an event loop. An attempt that does
 *       not end within {@code deadlineMillis} (a FIFO, a hung mount) is given up: counted once,
 *       its thread kept, its late result ignored; the next attempt gets another thread.
 *   <li>A refused version is counted once ({@link Events#refused}); the watcher then compares
 *       against what that attempt read, so it is tried again only when a file changes. A SIGHUP
 *       on the same refused version is a notice, not a count. A refusal of files that moved
 *       while they were read (half-written) is retried, not counted.
 * </ul>
 *
 * <p>Time comes from {@link Timer}, so the deadline can be driven by hand in a test; production
 * passes Vert.x's timers. Thread-safe; the callbacks run on the thread that ended the attempt.
 */
public final class ConfigReloader {
  /** What an attempt ended in, for the caller to act on (swap, count, tell the operator). */
  public interface Events {
    /**
     * A new config compiled: serve it, or say why it cannot be served (a change only a restart
     * can make); that reason is then a refusal like a compile error.
     *
     * @return null when {@code next} is served
     */
    String loaded(EgretConfig next);

    /** A refusal to count ({@code egret_config_reloads_total{result="failure"}}) and log. */
    void refused(String why);

    /** An operator line that is not counted. */
    void notice(String line);
  }

  /** One-shot timers: the reload's only source of time. */
  public interface Timer {
    /** Runs {@code task} once after {@code millis}; the returned action cancels it. */
    Runnable after(long millis, Runnable task);
  }

  /** Compiles the config at {@code file}: {@link ConfigCompiler#load} in production. */
  public interface Compiler {
    EgretConfig load(Path file) throws ConfigException;
  }

  private final Supplier<EgretConfig> current;
  private final Compiler compiler;
  private final Executor threads;
  private final Timer timer;
  private final long deadlineMillis;
  private final Events events;

  private final Object lock = new Object();
  // Guarded by lock: the attempt in flight, SIGHUPs waiting behind it, the files the watcher
  // compares against (those of the last attempt that ended), whether a stuck attempt was already
  // counted, and what the last refused version read (path, hash or problem per file).
  private Object inFlight;
  private final List<CompletableFuture<Void>> forcedBehind = new ArrayList<>();
  private ConfigWatch watched;
  private boolean stuckCounted;
  private List<String> lastRefused;

  private sealed interface Outcome {}

  private record Unchanged() implements Outcome {}

  private record Loaded(EgretConfig config) implements Outcome {}

  private record Refused(ConfigException error, boolean settled) implements Outcome {}

  /** Why an attempt produced no outcome: given up at the deadline, or no thread to run on. */
  private enum Stuck { DEADLINE, NO_THREAD }

  /**
   * @param current the config being served: its file is what is read, its inputs what the first
   *     look compares against
   */
  public ConfigReloader(Supplier<EgretConfig> current, Compiler compiler, Executor threads,
      Timer timer, long deadlineMillis, Events events) {
    this.current = Objects.requireNonNull(current);
    this.compiler = Objects.requireNonNull(compiler);
    this.threads = Objects.requireNonNull(threads);
    this.timer = Objects.requireNonNull(timer);
    this.deadlineMillis = deadlineMillis;
    this.events = Objects.requireNonNull(events);
  }

  /**
   * Starts an attempt. Completes when it ends: normally when nothing changed or a new config was
   * handed to {@link Events#loaded}; exceptionally with the reason it was refused or given up.
   */
  public CompletableFuture<Void> attempt(boolean forced) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    Object token = new Object();
    ConfigWatch watch;
    synchronized (lock) {
      if (inFlight != null) {
        if (forced) {
          forcedBehind.add(done);
          return done;
        }
        return CompletableFuture.completedFuture(null);
      }
      inFlight = token;
      if (watched == null) {
        watched = new ConfigWatch(current.get().inputs());
      }
      watch = watched;
    }
    Path file = current.get().file();
    AtomicBoolean ended = new AtomicBoolean();
    Runnable cancel = timer.after(deadlineMillis, () -> {
      if (ended.compareAndSet(false, true)) {
        ended(token, forced, null, Stuck.DEADLINE, done);
      }
    });
    try {
      threads.execute(() -> {
        Outcome outcome = read(file, watch, forced);
        if (ended.compareAndSet(false, true)) {
          cancel.run();
          ended(token, forced, outcome, null, done);
        }
      });
    } catch (RejectedExecutionException e) {
      if (ended.compareAndSet(false, true)) {
        cancel.run();
        ended(token, forced, null, Stuck.NO_THREAD, done);
      }
    }
    return done;
  }

  private Outcome read(Path file, ConfigWatch watch, boolean forced) {
    if (!forced && !watch.changed()) {
      return new Unchanged();
    }
    try {
      return new Loaded(compiler.load(file));
    } catch (ConfigException e) {
      // Files that moved while they were read were half-written: retried, not counted.
      return new Refused(e, forced || new ConfigWatch(e.inputs()).settled());
    } catch (RuntimeException e) {
      // A bug in the compiler must not leave the single flight held for ever.
      return new Refused(new ConfigException(List.of(new ConfigError(file.toString(), 1, 1,
          "the config could not be compiled: " + e)), List.of()), true);
    }
  }

  private void ended(Object token, boolean forced, Outcome outcome, Stuck stuck,
      CompletableFuture<Void> done) {
    List<CompletableFuture<Void>> behind;
    boolean countStuck = false;
    boolean countRefusal = false;
    synchronized (lock) {
      if (inFlight != token) {
        return; // stale: an attempt given up at its deadline
      }
      inFlight = null;
      behind = new ArrayList<>(forcedBehind);
      forcedBehind.clear();
      if (stuck != null) {
        countStuck = forced || !stuckCounted;
        stuckCounted = true;
        // The given-up thread may still be inside the old watch; the next attempt gets its own.
        watched = watched.fresh();
      } else {
        stuckCounted = false;
        if (outcome instanceof Loaded l) {
          watched = new ConfigWatch(l.config().inputs());
          lastRefused = null;
        } else if (outcome instanceof Refused r && r.settled()) {
          if (!r.error().inputs().isEmpty()) {
            watched = new ConfigWatch(r.error().inputs());
          }
          // Counted once per version: a SIGHUP on the version already refused logs it again.
          List<String> version = r.error().inputs().stream()
              .map(i -> i.path() + " " + i.sha256() + " " + i.problem()).toList();
          countRefusal = version.isEmpty() || !version.equals(lastRefused);
          lastRefused = version;
        }
      }
    }
    if (stuck != null) {
      String why = stuck == Stuck.DEADLINE
          ? "reading " + current.get().file() + " and the files it names took longer than "
              + deadlineMillis / 1000 + " s (a FIFO, or a hung mount?); given up"
          : "earlier config reads are still stuck (a FIFO, or a hung mount?); restart Egret "
              + "once the files are back";
      if (countStuck) {
        events.refused(why);
      }
      done.completeExceptionally(new IllegalStateException(why));
    } else if (outcome instanceof Loaded l) {
      String refusal = events.loaded(l.config());
      if (refusal == null) {
        done.complete(null);
      } else {
        events.refused(refusal);
        done.completeExceptionally(new IllegalStateException(refusal));
      }
    } else if (outcome instanceof Refused r) {
      if (countRefusal) {
        events.refused(r.error().getMessage());
      } else if (r.settled()) {
        events.notice("config reload refused again (counted once already), the last good config "
            + "keeps serving:\n" + r.error().getMessage());
      }
      done.completeExceptionally(r.error());
    } else {
      done.complete(null);
    }
    if (!behind.isEmpty()) {
      attempt(true).whenComplete((v, e) -> behind.forEach(p -> {
        if (e == null) {
          p.complete(null);
        } else {
          p.completeExceptionally(e);
        }
      }));
    }
  }
}
