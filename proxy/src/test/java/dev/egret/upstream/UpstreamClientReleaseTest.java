package dev.egret.upstream;

import dev.egret.upstream.UpstreamConnection;
import dev.egret.upstream.UpstreamClient;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.config.ConfigCompiler;
import dev.egret.config.EgretConfig;
import dev.egret.runtime.VertxRuntime;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.net.InetSocketAddress;
import java.lang.ref.WeakReference;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A retired or closed upstream client is released: every reload retires one, with its pools on
 * each event loop, so anything the loops kept of it (a tick, a channel, a close hook) would grow
 * the heap with every reload. Real sockets: each client dials a loopback port that accepts and
 * says nothing.
 */
class UpstreamClientReleaseTest {
  private Vertx vertx;
  private ServerSocket silent;

  @BeforeEach
  void start() throws Exception {
    vertx = Vertx.vertx();
    silent = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
  }

  @AfterEach
  void stop() throws Exception {
    silent.close();
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private static EgretConfig config() throws Exception {
    return ConfigCompiler.compile(Path.of("release-test.yaml"), """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        allow:
          - host: api.partner.test
        """.getBytes(StandardCharsets.UTF_8));
  }

  /** The per-loop pools {@code upstream} builds when a request asks for a connection. */
  private List<WeakReference<Object>> useOnALoop(UpstreamClient upstream, EgretConfig config)
      throws Exception {
    Context loop = vertx.getOrCreateContext();
    CompletableFuture<List<WeakReference<Object>>> inner = new CompletableFuture<>();
    loop.runOnContext(v -> {
      upstream.acquire(VertxRuntime.eventLoop(loop), new UpstreamClient.Key(
          "127.0.0.1", new InetSocketAddress(silent.getInetAddress(), silent.getLocalPort()),
          config.defaultTls()), new UpstreamClient.Lease() {
            @Override
            public void connected(UpstreamConnection c, UpstreamClient.Setup setup) {
              c.release(true);
            }

            @Override
            public void acquireFailed(Throwable cause) {}

            @Override
            public void closed(Throwable cause) {}

            @Override
            public void read(Object msg) {}

            @Override
            public void writable() {}

            @Override
            public void tick(long now) {}
          }, false);
      List<WeakReference<Object>> refs = new ArrayList<>();
      for (Object c : upstream.built()) {
        refs.add(new WeakReference<>(c));
      }
      inner.complete(refs);
    });
    return inner.get(10, TimeUnit.SECONDS);
  }

  /** Whether every referent is gone, collecting until it is or the deadline passes. */
  private static boolean collected(List<WeakReference<Object>> refs, Duration deadline) {
    long end = System.nanoTime() + deadline.toNanos();
    while (System.nanoTime() < end) {
      System.gc(); // the Cleaner that holds a closed client's action runs between collections
      if (refs.stream().allMatch(r -> r.get() == null)) {
        return true;
      }
      java.util.concurrent.locks.LockSupport.parkNanos(20_000_000); // bounded by the deadline
    }
    return false;
  }

  @Test
  void aRetiredClientIsReleased() throws Exception {
    EgretConfig config = config();
    UpstreamClient upstream = new UpstreamClient(vertx, config);
    List<WeakReference<Object>> inner = useOnALoop(upstream, config);
    assertThat(inner).hasSize(1);
    upstream.retire(Duration.ofMillis(50)).toCompletionStage().toCompletableFuture()
        .get(10, TimeUnit.SECONDS);
    upstream = null;
    assertThat(collected(inner, Duration.ofSeconds(10)))
        .as("the retired client's per-loop pools are no longer reachable").isTrue();
  }

  @Test
  void aClosedClientIsReleased() throws Exception {
    EgretConfig config = config();
    UpstreamClient upstream = new UpstreamClient(vertx, config);
    List<WeakReference<Object>> inner = useOnALoop(upstream, config);
    assertThat(inner).hasSize(1);
    upstream.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    upstream = null;
    assertThat(collected(inner, Duration.ofSeconds(10)))
        .as("the closed client's per-loop pools are no longer reachable").isTrue();
  }
}
