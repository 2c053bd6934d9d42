package dev.egret.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.SslHandler;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * A profile's trust store and TLS context are built once, on first need, off the caller's thread:
 * compiling a config reads no CA file, {@code prepare()} never blocks, and a profile that cannot
 * be built says which one in the failure its first dial gets.
 */
class TlsProfileTest {
  private static final TestCert ROOT = TestPki.rootCa("Profile Test Root").issue();
  private static final TlsBaseline BASELINE = TlsBaseline.forMinVersion("TLSv1.2");

  @Test
  void buildsNothingUntilAskedAndThenOnlyOnce() throws Exception {
    AtomicInteger built = new AtomicInteger();
    TlsProfile p = new TlsProfile("tls", Pins.NONE, () -> {
      built.incrementAndGet();
      return StrictTrustManager.create(false, List.of(ROOT.certificate()), Pins.NONE);
    }, null, BASELINE, Duration.ofSeconds(10));
    assertThat(built).hasValue(0);
    assertThat(p.prepared()).isFalse();
    assertThatThrownBy(() -> p.newHandler(ByteBufAllocator.DEFAULT, "api.partner.test", 443))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("not prepared");

    CompletableFuture<?> first = p.prepare();
    CompletableFuture<?> second = p.prepare();
    p.prepareNow();
    first.get(30, TimeUnit.SECONDS);
    assertThat(second).isSameAs(first).isCompleted();
    assertThat(built).hasValue(1);
    assertThat(p.prepared()).isTrue();
    SslHandler h = p.newHandler(ByteBufAllocator.DEFAULT, "api.partner.test", 443);
    assertThat(h.getHandshakeTimeoutMillis()).isEqualTo(10_000);
    assertThat(h.engine().getPeerHost()).isEqualTo("api.partner.test");
  }

  @Test
  void prepareReturnsWhileTheTrustStoreIsStillBeingRead() throws Exception {
    CountDownLatch reading = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    TlsProfile p = new TlsProfile("tls", Pins.NONE, () -> {
      reading.countDown();
      try {
        release.await(30, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return StrictTrustManager.create(false, List.of(ROOT.certificate()), Pins.NONE);
    }, null, BASELINE, Duration.ofSeconds(10));

    CompletableFuture<?> ready = p.prepare();
    assertThat(reading.await(30, TimeUnit.SECONDS)).isTrue();
    assertThat(ready).isNotDone();
    assertThat(p.prepared()).isFalse();
    release.countDown();
    ready.get(30, TimeUnit.SECONDS);
    assertThat(p.prepared()).isTrue();
  }

  @Test
  void aProfileThatCannotBeBuiltFailsNamingIt() {
    TlsProfile p = new TlsProfile("allow[2]", Pins.NONE, () -> {
      throw new IllegalStateException("cannot build the trust store: unreadable CA file");
    }, null, BASELINE, Duration.ofSeconds(10));

    assertThatThrownBy(() -> p.prepare().get(30, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .cause()
        .hasMessageContaining("cannot build the TLS context of allow[2]")
        .hasMessageContaining("unreadable CA file");
    assertThat(p.prepared()).isFalse();
  }
}
