package dev.egret;

import dev.egret.address.AddressGuard;
import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigException;
import dev.egret.config.EgretConfig;
import dev.egret.exchange.Route;
import dev.egret.listener.Connections;
import dev.egret.listener.ProxyListener;
import dev.egret.listener.Stages;
import dev.egret.listener.StrictHeadParser;
import dev.egret.telemetry.Telemetry;
import dev.egret.tunnel.Tunnel;
import dev.egret.upgrade.Upgrade;
import dev.egret.upgrade.UpstreamClient;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.net.InetSocketAddress;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.HexFormat;
import java.util.Set;
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
  /** Why the watched file could not be read, while it cannot; touched on one event loop. */
  private String unreadable;
  /** The named files' content last reloaded for; touched on one event loop. */
  private String filesTried;

  public EgretServer(Vertx vertx, EgretConfig config, Telemetry telemetry) {
    this.vertx = vertx;
    this.telemetry = telemetry;
    this.serving = new AtomicReference<>(new Serving(config, new UpstreamClient(vertx, config)));
    byte[] id = new byte[4];
    new SecureRandom().nextBytes(id);
    this.viaToken = "egret-" + HexFormat.of().formatHex(id);
    this.connections = new Connections(telemetry, config.limits().maxConnections());
    Route route = new Route(new AddressGuard(vertx), viaToken, () -> ownAddresses);
    this.stages = new Stages(serving::get, route, new Upgrade(vertx, telemetry, "1.1 " + viaToken),
        new Tunnel(vertx, telemetry, route, connections::track), telemetry, connections);
  }

  /** Binds the proxy port and the transparent listeners; completes with the proxy's port. */
  public Future<Integer> start() {
    EgretConfig config = serving.get().config();
    telemetry.configLoaded(config.sha256());
    EgretConfig.Limits limits = config.limits();
    StrictHeadParser parser = new StrictHeadParser(StrictHeadParser.DEFAULT_MAX_REQUEST_LINE_BYTES,
        limits.maxHeaderBytes(), StrictHeadParser.DEFAULT_MAX_HEADER_COUNT);
    listener = new ProxyListener(vertx, stages, parser, config.timeouts().requestHead(),
        config.timeouts().idle());
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

  /** Client connections open now (every listener). */
  public int clientConnections() {
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
   * Watches the config file: every {@code periodMs} it is read (asynchronously) and, if its bytes
   * changed, reloaded.
   */
  public void watch(long periodMs) {
    watchTimer = vertx.setPeriodic(periodMs, id -> {
      EgretConfig current = serving.get().config();
      vertx.fileSystem().readFile(current.file().toString()).onComplete(ar -> {
        if (ar.failed()) {
          // Reported once per outage, not every period, until the file can be read again.
          String why = current.file() + ": cannot read the config file: " + ar.cause().getMessage();
          if (!why.equals(unreadable)) {
            unreadable = why;
            refused(why);
          }
          return;
        }
        unreadable = null;
        if (!ConfigCompiler.sha256(ar.result().getBytes()).equals(current.sha256())) {
          reload(ar.result());
        } else if (!current.referencedFiles().isEmpty()) {
          // A file the config names (a rotated ${file:} secret, a renewed CA) changed: reload,
          // once per new content, so a broken secret file is refused once, not every period.
          vertx.executeBlocking(() -> current.namedFiles().fingerprintOnDisk(), false)
              .onSuccess(now -> {
                if (!now.equals(current.namedFiles().fingerprint()) && !now.equals(filesTried)
                    && serving.get().config() == current) {
                  filesTried = now;
                  reload(ar.result());
                }
              });
        }
      });
    });
  }

  private void refused(String why) {
    notice("config reload refused, the last good config keeps serving:\n" + why);
    telemetry.configReloadFailed(why);
  }

  /** Re-reads the config file now (SIGHUP). */
  public Future<Void> reload() {
    String file = serving.get().config().file().toString();
    return vertx.fileSystem().readFile(file)
        .recover(e -> {
          // A file that cannot be read (deleted, mid-swap, no permission) is a refused reload too.
          refused(file + ": cannot read the config file: " + e.getMessage());
          return Future.failedFuture(e);
        })
        .compose(this::reload);
  }

  private Future<Void> reload(Buffer bytes) {
    EgretConfig current = serving.get().config();
    return vertx.<EgretConfig>executeBlocking(() -> ConfigCompiler.compile(current.file(), bytes.getBytes()))
        .onSuccess(next -> {
          if (next.sameSources(serving.get().config())) {
            return;
          }
          String restart = restartOnly(current, next);
          if (restart != null) {
            notice("config reloaded, but " + restart + " change only on restart");
          }
          Serving old = serving.getAndSet(new Serving(next, new UpstreamClient(vertx, next)));
          telemetry.configLoaded(next.sha256());
          notice("config reloaded from " + next.file() + " (sha256 " + next.sha256() + ")");
          // Requests in flight on the old pools finish there; only then do those connections close.
          old.upstream().retire(current.timeouts().idle().plus(current.timeouts().response()));
        })
        .onFailure(e -> refused(e instanceof ConfigException ce ? ce.getMessage() : String.valueOf(e)))
        .mapEmpty();
  }

  /**
   * The settings a reload cannot apply, because the proxy listener and its connections were set
   * up with them; null when none of them changed.
   */
  private static String restartOnly(EgretConfig current, EgretConfig next) {
    java.util.List<String> changed = new java.util.ArrayList<>();
    if (!next.listen().equals(current.listen())) {
      changed.add("listen");
    }
    if (next.limits().maxConnections() != current.limits().maxConnections()) {
      changed.add("limits.maxConnections");
    }
    if (next.limits().maxHeaderBytes() != current.limits().maxHeaderBytes()) {
      changed.add("limits.maxHeaderBytes");
    }
    if (!next.timeouts().idle().equals(current.timeouts().idle())) {
      changed.add("timeouts.idle (for client connections)");
    }
    return changed.isEmpty() ? null : String.join(", ", changed);
  }

  /** What a drain did, for its one log line. */
  public record DrainReport(long graceMillis, long drainedMillis, Map<String, Integer> cut) {
    public int cutCount() {
      return cut.values().stream().mapToInt(Integer::intValue).sum();
    }
  }

  /**
   * Drains, as SIGTERM and Lambda's SHUTDOWN ask (SPEC "Shutdown"): idle kept-alive connections
   * close at once and every response from now says {@code Connection: close}; the listeners
   * keep accepting for {@code grace}, then stop; hops in flight run until {@code deadline}
   * (counted from now), when what is left is closed and counted. Completes when no client
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
    return Future.join(l, serving.get().upstream().close()).mapEmpty();
  }
}
