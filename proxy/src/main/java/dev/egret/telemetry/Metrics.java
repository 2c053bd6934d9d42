package dev.egret.telemetry;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.micrometer.Label;
import io.vertx.micrometer.MicrometerMetricsFactory;
import io.vertx.micrometer.MetricsDomain;
import io.vertx.micrometer.MicrometerMetricsOptions;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.logging.Logger;

/**
 * The one Prometheus registry of a running Egret, with JVM and process meters bound, and the way
 * to point Vert.x's own meters at it. Usage, before anything else starts ({@link
 * #withJvmGaugesLater} to bind the JVM's gauges after start-up):
 *
 * <pre>{@code
 * Metrics metrics = new Metrics();
 * Vertx vertx = metrics.newVertx(new VertxOptions());   // or Vertx.builder()
 * //   .with(options.setMetricsOptions(Metrics.vertxMetricsOptions(metrics.registry())))
 * //   .withMetrics(new MicrometerMetricsFactory(metrics.registry())).build()
 * ... new Observability(metrics.registry(), AccessLog.toStdout()) ...
 * metrics.close();   // after vertx.close()
 * }</pre>
 */
public final class Metrics implements AutoCloseable {
  /** Vert.x labels whose values are host names, addresses or client-chosen text. */
  static final Set<String> UNBOUNDED_VERTX_LABELS = Set.of(Label.REMOTE.toString(),
      Label.POOL_NAME.toString(), Label.HTTP_PATH.toString(), Label.HTTP_ROUTE.toString(),
      Label.EB_ADDRESS.toString());

  /**
   * Micrometer warns when a gauge is registered a second time (micrometer-metrics/micrometer
   * #5617), and vertx-micrometer-metrics registers its pool gauges once per pool by design,
   * sharing one LongAdder per meter id, so the values are right and the warning is noise at
   * every start: vert-x3/vertx-micrometer-metrics#259, micrometer-metrics/micrometer#6931.
   * Only that warning about a {@code vertx.} meter is dropped; any other gauge registered twice
   * is still reported. Held here because the JDK keeps loggers, and their filters, only weakly.
   */
  static final Logger MICROMETER_REGISTRY_LOG = quietVertxGaugeReRegistration(
      Logger.getLogger("io.micrometer.core.instrument.MeterRegistry"));

  static Logger quietVertxGaugeReRegistration(Logger log) {
    log.setFilter(r -> r.getMessage() == null
        || !(r.getMessage().startsWith("This Gauge has been already registered")
            && r.getMessage().contains("name='vertx.")));
    return log;
  }

  private final PrometheusMeterRegistry registry;
  private final JvmGcMetrics gc;
  /** Completed once the JVM's and the process's gauges are in the registry. */
  private final CompletableFuture<Void> gaugesBound = new CompletableFuture<>();

  /** The registry with every JVM and process meter bound now. */
  public Metrics() {
    this(true);
  }

  private Metrics(boolean gaugesNow) {
    this.registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    // The second lock behind vertxMetricsOptions' labels: should a Vert.x meter ever carry a
    // label whose values clients or upstreams choose, it is not exported at all.
    registry.config().meterFilter(MeterFilter.deny(id -> id.getName().startsWith("vertx.")
        && id.getTags().stream().anyMatch(t -> UNBOUNDED_VERTX_LABELS.contains(t.getKey()))));
    // Always now: its meters count GC notifications, and one missed is gone for good.
    this.gc = new JvmGcMetrics();
    gc.bindTo(registry);
    if (gaugesNow) {
      bindJvmGauges();
    }
  }

  /**
   * The registry and the GC meters now; the JVM's and the process's gauges only when {@link
   * #bindJvmGauges} is called. {@code egret run} binds them at the first scrape: they read their
   * values at each scrape, so nothing is lost by binding them late, and their binding (the
   * management beans behind them) was a sixth of the main thread's CPU to ready. A scrape that
   * calls {@link #bindJvmGauges} first holds the same series as before.
   */
  public static Metrics withJvmGaugesLater() {
    return new Metrics(false);
  }

  /**
   * Binds the JVM's and the process's gauges, once; later calls do nothing, and a call while
   * another binds waits for it.
   */
  public void bindJvmGauges() {
    synchronized (gaugesBound) {
      if (gaugesBound.isDone()) {
        return;
      }
      try {
        new JvmMemoryMetrics().bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        // A proxy holds two sockets per hop: running out of descriptors is a classic outage.
        new FileDescriptorMetrics().bindTo(registry);
      } finally {
        // Even after a failure: a scrape must not wait forever for gauges that will never come.
        gaugesBound.complete(null);
      }
    }
  }

  /** Completes once {@link #bindJvmGauges} has run (at once for {@code new Metrics()}). */
  public CompletableFuture<Void> jvmGaugesBound() {
    return gaugesBound;
  }

  public PrometheusMeterRegistry registry() {
    return registry;
  }

  /**
   * Options that make Vert.x report into {@code registry}. Labels are limited to bounded ones:
   * the local listen address (tells the proxy listener from the admin one), HTTP status and pool
   * type. Never a remote address (one series per upstream or client port), an HTTP path or method
   * (chosen by clients), or a pool name: Vert.x names each upstream HTTP pool
   * {@code "<host>:<port>"}, so under a wildcard rule every host reached would add about ten
   * {@code vertx_pool_*} series, kept after the pool is gone. Without the label Vert.x adds the
   * pools of a type into one series. JVM meters are off here because {@link Metrics} binds them
   * once itself. The registry name is unique per registry because vertx-micrometer-metrics
   * caches backends by name, and two Vert.x instances in one JVM (tests) would otherwise share
   * the first one's.
   */
  public static MicrometerMetricsOptions vertxMetricsOptions(MeterRegistry registry) {
    MicrometerMetricsOptions options = new MicrometerMetricsOptions()
        .setRegistryName("egret-" + Integer.toHexString(System.identityHashCode(registry)))
        .setJvmMetricsEnabled(false)
        .setLabels(EnumSet.of(Label.LOCAL, Label.HTTP_CODE, Label.POOL_TYPE))
        // vertx_http_client_* repeat what egret_request_* and egret_upstream_* say about the
        // upstream calls, at 2-3% of the upgrade path's CPU (a gauge registered per request in
        // vertx-micrometer-metrics 5.0.7); the pool meters (vertx_pool_*) stay.
        .addDisabledMetricsCategory(MetricsDomain.HTTP_CLIENT);
    options.setEnabled(true);
    return options;
  }

  /** {@code options} with {@link #vertxMetricsOptions} set on it. */
  public VertxOptions vertxOptions(VertxOptions options) {
    return options.setMetricsOptions(vertxMetricsOptions(registry));
  }

  /**
   * A Vert.x whose meters go to this registry. In Vert.x 5 the registry travels in the metrics
   * factory given to the builder; the options only switch metrics on and shape the labels.
   */
  public Vertx newVertx(VertxOptions options) {
    return Vertx.builder()
        .with(vertxOptions(options))
        .withMetrics(new MicrometerMetricsFactory(registry))
        .build();
  }

  /** Unhooks the GC listeners and closes the registry. */
  @Override
  public void close() {
    gc.close();
    registry.close();
  }
}
