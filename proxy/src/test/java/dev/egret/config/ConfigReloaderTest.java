package dev.egret.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The reload's state machine on its own: real files and the real compiler, a hand-driven timer
 * for the deadline, no sockets and no Egret.
 */
class ConfigReloaderTest {
  private static final String HEAD =
      "version: 1\nlisten: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}\n";

  @TempDir Path dir;
  private Path file;
  private final AtomicReference<EgretConfig> serving = new AtomicReference<>();
  private final ExecutorService threads = Executors.newCachedThreadPool();
  private final HandTimer timer = new HandTimer();
  private final Recorded events = new Recorded();
  /** Compiles counted; a test may make them wait on {@code gate}. */
  private final AtomicInteger compiles = new AtomicInteger();
  private volatile CountDownLatch gate = new CountDownLatch(0);
  private final CountDownLatch compiling = new CountDownLatch(1);
  private ConfigReloader reloader;

  /** The deadline fires when the test says so. */
  static final class HandTimer implements ConfigReloader.Timer {
    final List<Runnable> pending = new ArrayList<>();

    @Override
    public synchronized Runnable after(long millis, Runnable task) {
      pending.add(task);
      return () -> {
        synchronized (this) {
          pending.remove(task);
        }
      };
    }

    void fire() {
      List<Runnable> due;
      synchronized (this) {
        due = new ArrayList<>(pending);
        pending.clear();
      }
      due.forEach(Runnable::run);
    }

    synchronized int armed() {
      return pending.size();
    }
  }

  static final class Recorded implements ConfigReloader.Events {
    final List<EgretConfig> loaded = new ArrayList<>();
    final List<String> refused = new ArrayList<>();
    final List<String> notices = new ArrayList<>();

    @Override
    public synchronized String loaded(EgretConfig next) {
      loaded.add(next);
      return null;
    }

    @Override
    public synchronized void refused(String why) {
      refused.add(why);
    }

    @Override
    public synchronized void notice(String line) {
      notices.add(line);
    }
  }

  @BeforeEach
  void start() throws Exception {
    file = dir.resolve("egret.yaml");
    Files.writeString(file, HEAD + "allow:\n  - host: a.example\n");
    serving.set(ConfigCompiler.load(file));
    reloader = new ConfigReloader(serving::get, f -> {
      compiles.incrementAndGet();
      compiling.countDown();
      try {
        if (!gate.await(20, TimeUnit.SECONDS)) {
          throw new IllegalStateException("the test never opened the gate");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      EgretConfig next = ConfigCompiler.load(f);
      return next;
    }, threads, timer, 10_000, events);
  }

  @AfterEach
  void stop() {
    gate.countDown();
    threads.shutdownNow();
  }

  private static void await(CompletableFuture<Void> f) throws Exception {
    f.handle((v, e) -> null).get(20, TimeUnit.SECONDS);
  }

  @Test
  void aLookWithNothingChangedCompilesNothing() throws Exception {
    reloader.attempt(false).get(20, TimeUnit.SECONDS);
    assertThat(compiles).hasValue(0);
    assertThat(events.loaded).isEmpty();
    assertThat(timer.armed()).as("the deadline is cancelled when the attempt ends").isZero();
  }

  @Test
  void anEditIsCompiledAndHandedOn() throws Exception {
    Files.writeString(file, HEAD + "allow:\n  - host: b.example\n");
    reloader.attempt(false).get(20, TimeUnit.SECONDS);
    assertThat(events.loaded).hasSize(1);
    assertThat(events.loaded.get(0).sha256()).isNotEqualTo(serving.get().sha256());
    assertThat(events.refused).isEmpty();
  }

  @Test
  void aRefusedVersionIsCountedOnceAndOnlyNoticedOnSighup() throws Exception {
    Files.writeString(file, HEAD + "allow:\n  - host: a.example\n    nonsense: 1\n");
    Throwable first = catchThrowable(() -> reloader.attempt(false).get(20, TimeUnit.SECONDS));
    assertThat(first).hasCauseInstanceOf(ConfigException.class);
    assertThat(events.refused).hasSize(1).first().asString().contains("nonsense");

    reloader.attempt(false).get(20, TimeUnit.SECONDS); // same bad bytes: not even compiled
    assertThat(compiles).hasValue(1);

    await(reloader.attempt(true)); // SIGHUP on the same version: read again, not counted again
    assertThat(compiles).hasValue(2);
    assertThat(events.refused).hasSize(1);
    assertThat(events.notices).singleElement().asString().contains("refused again");

    Files.writeString(file, HEAD + "allow:\n  - host: c.example\n");
    reloader.attempt(false).get(20, TimeUnit.SECONDS);
    assertThat(events.loaded).hasSize(1);
  }

  @Test
  void anAttemptPastTheDeadlineIsGivenUpAndItsLateResultIgnored() throws Exception {
    gate = new CountDownLatch(1);
    Files.writeString(file, HEAD + "allow:\n  - host: b.example\n");
    CompletableFuture<Void> stuck = reloader.attempt(true);
    assertThat(compiling.await(20, TimeUnit.SECONDS)).isTrue();
    assertThat(stuck).isNotDone();

    timer.fire();
    Throwable given = catchThrowable(() -> stuck.get(20, TimeUnit.SECONDS));
    assertThat(given).hasMessageContaining("took longer than 10 s");
    assertThat(events.refused).singleElement().asString().contains("given up");

    gate.countDown(); // the stuck read returns late, with a config that compiles
    CompletableFuture<Void> next = reloader.attempt(true);
    next.get(20, TimeUnit.SECONDS);
    assertThat(events.loaded).as("only the attempt after it loads").hasSize(1);
  }

  @Test
  void oneAttemptAtATimeAndASighupRunsAfterTheOneInFlight() throws Exception {
    gate = new CountDownLatch(1);
    Files.writeString(file, HEAD + "allow:\n  - host: b.example\n");
    CompletableFuture<Void> first = reloader.attempt(true);
    assertThat(compiling.await(20, TimeUnit.SECONDS)).isTrue();

    reloader.attempt(false).get(20, TimeUnit.SECONDS); // a look meanwhile: dropped at once
    CompletableFuture<Void> sighup = reloader.attempt(true);
    assertThat(sighup).isNotDone();
    assertThat(compiles).hasValue(1);

    gate.countDown();
    first.get(20, TimeUnit.SECONDS);
    sighup.get(20, TimeUnit.SECONDS);
    assertThat(compiles).as("the SIGHUP read the files again after the first ended").hasValue(2);
    assertThat(events.loaded).hasSize(2);
  }

  @Test
  void noThreadLeftIsARefusalNotAHang() throws Exception {
    ConfigReloader full = new ConfigReloader(serving::get, ConfigCompiler::load,
        r -> {
          throw new RejectedExecutionException("four reads stuck");
        }, timer, 10_000, events);
    Throwable refused = catchThrowable(() -> full.attempt(true).get(20, TimeUnit.SECONDS));
    assertThat(refused).hasMessageContaining("still stuck");
    assertThat(events.refused).hasSize(1);
    assertThat(timer.armed()).isZero();
    // The single flight was released: the next look runs (and finds nothing changed).
    Throwable again = catchThrowable(() -> full.attempt(false).get(20, TimeUnit.SECONDS));
    assertThat(again).hasMessageContaining("still stuck");
    assertThat(events.refused).as("a stuck state is counted once until it clears").hasSize(1);
  }
}
