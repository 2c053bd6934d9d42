package dev.egret;

import dev.egret.exchange.Serving;
import dev.egret.address.AddressGuard;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigReloader;
import dev.egret.config.EgretConfig;
import dev.egret.exchange.Route;
import dev.egret.listener.Connections;
import dev.egret.listener.ProxyListener;
import dev.egret.listener.Stages;
import dev.egret.telemetry.Telemetry;
import dev.egret.tls.TlsProfile;
import dev.egret.tunnel.Tunnel;
import dev.egret.upgrade.Upgrade;
import dev.egret.trace.Tracing;
import dev.egret.upstream.UpstreamClient;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One running Egret: the proxy listener and the stages behind it, serving from a swappable
 * {@link Serving}. Start it with a compiled config; {@link #reload()} re-reads the file and swaps
 * the config only if the new one compiles, so a bad edit never takes the proxy down.
 *
 * <pre>
 * EgretServer egret = new EgretServer(vertx, ConfigCompiler.load(path), telemetry);
 * egret.start().onSuccess(port -> ...);
 * </pre>
 */
public final class EgretServer {
  private final Vertx vertx;
  private final Telemetry telemetry;
  private final AtomicReference<Serving> serving;
  private final String viaToken;
  private final Connections connections;
  private final Stages stages;
  private ProxyListener listener;
  private volatile Set<InetSocketAddress> ownAddresses = Set.of();
  private long watchTimer = -1;
  private final ConfigReloader reloader;

  public EgretServer(Vertx vertx, EgretConfig config, Telemetry telemetry) {
    this.vertx = vertx;
    this.telemetry = telemetry;
    this.serving = new AtomicReference<>(new Serving(config, new UpstreamClient(vertx, config),
        Tracing.start(config.tracing(), telemetry)));
    byte[] id = new byte[4];
    new SecureRandom().nextBytes(id);
    this.viaToken = "egret-" + HexFormat.of().formatHex(id);
    this.connections = new Connections(telemetry,
        () -> serving.get().config().limits().maxConnections());
    Route route = new Route(new AddressGuard(vertx), viaToken, () -> ownAddresses, telemetry);
    this.stages = new Stages(serving::get, route, new Upgrade(vertx, telemetry, "1.1 " + viaToken),
        new Tunnel(vertx, telemetry, route, connections::track), telemetry, connections);
    this.reloader = reloader();
  }

  /** Binds the proxy port and the transparent listeners; completes with the proxy's port. */
  public Future<Integer> start() {
    EgretConfig config = serving.get().config();
    telemetry.configLoaded(config.sha256());
    listener = new ProxyListener(vertx, stages);
    // Resolved here, on the caller's thread: listen.proxy may be a name, and the callback below
    // runs on an event loop, where a DNS lookup must not block.
    InetSocketAddress proxyAddress =
        new InetSocketAddress(config.listen().proxy().host(), config.listen().proxy().port());
    Future<Integer> proxy = listener.start(config.listen().proxy().host(),
        config.listen().proxy().port())
        .onSuccess(port -> own(new InetSocketAddress(proxyAddress.getAddress(), port)));
    List<Future<Integer>> all = new ArrayList<>();
    all.add(proxy);
    for (ProxyListener.Transparent t : transparent(config)) {
      InetSocketAddress a = new InetSocketAddress(t.host(), t.bindPort());
      all.add(listener.start(t).onSuccess(port -> own(new InetSocketAddress(a.getAddress(), port))));
    }
    return Future.all(all).map(v -> proxy.result());
  }

  /** The config's transparent listeners, as the listener binds them. */
  private static List<ProxyListener.Transparent> transparent(EgretConfig config) {
    return config.listen().transparent().stream()
        .map(t -> new ProxyListener.Transparent(t.address().host(), t.address().port(), t.port(),
            t.protocol() == EgretConfig.Protocol.TLS))
        .toList();
  }

  /** Downstream connections open now (every listener). */
  public int downstreamConnections() {
    return connections.count();
  }

  /** Adds the admin listener's address to the loop check. */
  public void alsoOwn(InetSocketAddress admin) {
    own(admin);
  }

  private synchronized void own(InetSocketAddress address) {
    var all = new java.util.HashSet<>(ownAddresses);
    all.add(address);
    ownAddresses = Set.copyOf(all);
  }

  /**
   * Writes an operator notice to stderr off the event loop: a blocked stderr pipe must not stall
   * the proxy (the access log has its own bounded queue for the same reason).
   */
  private void notice(String line) {
    vertx.executeBlocking(() -> {
      System.err.println("egret: " + line);
      return null;
    }, false);
  }

  public EgretConfig config() {
    return serving.get().config();
  }

  /**
   * Watches the config and every file it names: every {@code periodMs} each is stat'ed (off the
   * event loops), and only a file whose stamp moved is read and hashed; the config is compiled
   * again only when some content changed. A refused version is counted once and then watched:
   * it is tried again only when one of the files that attempt read changes.
   */
  public void watch(long periodMs) {
    watchTimer = vertx.setPeriodic(periodMs, id -> reloadAttempt(false));
  }

  /**
   * Re-reads the config now (SIGHUP), even if nothing changed: the operator asked. Completes when
   * the attempt ends; fails with the reason if the new version was refused.
   */
  public Future<Void> reload() {
    return reloadAttempt(true);
  }

  /** How long one attempt may read and compile before it is given up (a hung mount, a FIFO). */
  private static final long ATTEMPT_DEADLINE_MS = 10_000;
  /**
   * The config threads: reads and compiles run here, never on an event loop nor on Vert.x's
   * ordered worker, where one read stuck on a FIFO or a hung mount once held up every later
   * reload. A stuck attempt keeps its thread; at most 4 stuck ones, then attempts are refused
   * until one returns.
   */
  private final ThreadPoolExecutor configThreads = new ThreadPoolExecutor(0, 4, 30,
      TimeUnit.SECONDS, new SynchronousQueue<>(), r -> {
        Thread t = new Thread(r, "egret-config");
        t.setDaemon(true);
        return t;
      });

  private ConfigReloader reloader() {
    return new ConfigReloader(() -> serving.get().config(), file -> {
          EgretConfig loaded = ConfigCompiler.load(file);
          // Here, off the event loops and before the swap, so no hop of the new version waits.
          loaded.tlsProfiles().forEach(TlsProfile::prepareNow);
          return loaded;
        }, configThreads,
        (ms, task) -> {
          long id = vertx.setTimer(ms, t -> task.run());
          return () -> vertx.cancelTimer(id);
        },
        ATTEMPT_DEADLINE_MS,
        new ConfigReloader.Events() {
          @Override
          public String loaded(EgretConfig next) {
            if (next.clients().gateway() != config().clients().gateway()) {
              // The per-hop metrics carry a client label in gateway mode only, and one metric
              // name cannot be exported with two label sets at once: switching needs a restart.
              return (next.clients().gateway() ? "adding" : "removing") + " clients: switches "
                  + "between sidecar and gateway mode, which changes the metrics' labels; "
                  + "restart Egret to switch";
            }
            swapIn(next);
            return null;
          }

          @Override
          public void refused(String why) {
            notice("config reload refused, the last good config keeps serving:\n" + why);
            telemetry.configReloadFailed(why);
          }

          @Override
          public void notice(String line) {
            EgretServer.this.notice(line);
          }
        });
  }

  private Future<Void> reloadAttempt(boolean forced) {
    return Future.fromCompletionStage(reloader.attempt(forced));
  }

  /**
   * Serves {@code next} from now on. Always swapped in, even with the same config hash: a file
   * it names (a trust PEM, a key) may be what changed.
   */
  private void swapIn(EgretConfig next) {
    EgretConfig current = serving.get().config();
    List<String> restart = restartOnly(current, next);
    if (!restart.isEmpty()) {
      notice("config reloaded, but these settings take effect only on restart: "
          + String.join(", ", restart) + " (the listeners keep their addresses until then)");
    }
    Serving previous = serving.get();
    // The SDK and its exporter thread are kept while the tracing settings stay the same.
    boolean sameTracing = next.tracing().equals(current.tracing());
    Tracing tracing = sameTracing ? previous.tracing() : Tracing.start(next.tracing(), telemetry);
    Serving old = serving.getAndSet(new Serving(next, new UpstreamClient(vertx, next), tracing));
    telemetry.configLoaded(next.sha256());
    telemetry.downstreamConnectionsLimit(next.limits().maxConnections());
    notice("config reloaded from " + next.file() + " (sha256 " + next.sha256() + ")");
    // A hop takes its Serving when it arrives and asks that Serving's client for a connection
    // only after DNS and the address guard; a client already shut down answers "Pool closed"
    // (ConfigReloadTest saw 14 of those in 20 s of reloads). So the old client starts its
    // shutdown only after timeouts.response, then lets requests in flight finish there.
    // TODO(reload): a Serving reference-counted per Exchange would retire it exactly; with the
    // timer an old client lives a bounded time (timeouts.response, then at most idle + response).
    vertx.setTimer(Math.max(1, current.timeouts().response().toMillis()), id -> {
      old.upstream().retire(current.timeouts().idle().plus(current.timeouts().response()));
      if (!sameTracing) {
        // Hops still in flight on the old config end their spans into a closed SDK: dropped.
        vertx.executeBlocking(() -> {
          old.tracing().close();
          return null;
        });
      }
    });
  }

  /**
   * The settings a reload cannot apply, by key; empty when none of them changed. Only where the
   * listeners bind: a reload cannot move a bound socket. Everything else applies on reload: the
   * policy, TLS, addresses and upstream timeouts to each hop that starts after it, the downstream
   * connections' limits and timeouts ({@code limits.*}, {@code timeouts.idle}, {@code
   * timeouts.requestHead}) and {@code listen.proxyProtocol} to each connection accepted after it, {@code shutdown} to the next
   * drain.
   */
  static List<String> restartOnly(EgretConfig current, EgretConfig next) {
    List<String> changed = new ArrayList<>();
    if (!next.listen().proxy().equals(current.listen().proxy())) {
      changed.add("listen.proxy");
    }
    if (!next.listen().admin().equals(current.listen().admin())) {
      changed.add("listen.admin");
    }
    if (!next.listen().transparent().equals(current.listen().transparent())) {
      changed.add("listen.transparent");
    }
    return changed;
  }

  /** What a drain did, for its one log line. */
  public record DrainReport(long graceMillis, long drainedMillis, Map<String, Integer> cut) {
    public int cutCount() {
      return cut.values().stream().mapToInt(Integer::intValue).sum();
    }
  }

  /**
   * Drains, as SIGTERM and Lambda's SHUTDOWN ask (docs: "Shutdown"): idle kept-alive connections
   * close at once and every response from now says {@code Connection: close}; the listeners
   * keep accepting for {@code grace}, then stop; hops in flight run until {@code deadline}
   * (counted from now), when what is left is closed and counted. Completes when no downstream
   * connection is left.
   */
  public Future<DrainReport> drain(Duration grace, Duration deadline) {
    long start = System.nanoTime();
    if (watchTimer >= 0) {
      vertx.cancelTimer(watchTimer);
    }
    Future<Void> drained = connections.drain();
    Promise<Long> graceOver = Promise.promise();
    vertx.setTimer(Math.max(1, grace.toMillis()), id -> (listener == null
        ? Future.<Void>succeededFuture() : listener.stopAccepting())
        .onComplete(ar -> graceOver.complete((System.nanoTime() - start) / 1_000_000)));
    Promise<Map<String, Integer>> cut = Promise.promise();
    java.util.concurrent.atomic.AtomicBoolean cutting = new java.util.concurrent.atomic.AtomicBoolean();
    long timer = vertx.setTimer(Math.max(1, deadline.toMillis()), id -> {
      cutting.set(true); // the connections this closes must be counted, not seen as drained
      connections.cutAll().onComplete(ar -> {
          Map<String, Integer> counts = ar.succeeded() ? ar.result() : Map.of();
          counts.forEach(telemetry::shutdownCut);
          cut.tryComplete(counts);
        });
    });
    drained.onSuccess(v -> {
      if (!cutting.get()) {
        vertx.cancelTimer(timer);
        cut.tryComplete(Map.of());
      }
    });
    // The listeners stop at the grace's end even when every connection is gone before it, so a
    // client that has not yet noticed the drain is still served.
    return Future.all(graceOver.future(), cut.future()).compose(v -> {
      long drainedMillis = (System.nanoTime() - start) / 1_000_000;
      return serving.get().upstream().close().otherwise((Void) null)
          .compose(x -> closeTracing())
          .map(x -> new DrainReport(graceOver.future().result(), drainedMillis,
              cut.future().result()));
    });
  }

  public Future<Void> close() {
    if (watchTimer >= 0) {
      vertx.cancelTimer(watchTimer);
    }
    Future<Void> l = listener == null ? Future.succeededFuture()
        : listener.stopAccepting().compose(v -> connections.cutAll()).mapEmpty();
    return Future.join(l, serving.get().upstream().close()).compose(v -> closeTracing(),
        e -> closeTracing()).mapEmpty();
  }

  /** Lambda: the current invocation's trace header, for hops with no parent of their own. */
  public void invocation(String xrayTraceHeader) {
    serving.get().tracing().invocation(xrayTraceHeader);
  }

  /**
   * Exports the spans queued so far, waiting at most {@code deadline}; true when all went. Blocks:
   * for the Lambda extension's thread between events, never an event loop.
   */
  public boolean flushTraces(java.time.Duration deadline) {
    return serving.get().tracing().flush(deadline);
  }

  /** Exports the spans still queued (bounded by the exporter's timeout), off the event loop. */
  private Future<Void> closeTracing() {
    Tracing tracing = serving.get().tracing();
    if (!tracing.on()) {
      return Future.succeededFuture();
    }
    return vertx.<Void>executeBlocking(() -> {
      tracing.close();
      return null;
    }).otherwise((Void) null);
  }
}
