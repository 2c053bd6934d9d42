package dev.egret;

import dev.egret.config.ConfigCompiler;
import dev.egret.config.ConfigException;
import dev.egret.config.EgretConfig;
import dev.egret.telemetry.Telemetry;
import io.vertx.core.Vertx;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** {@code egret run}: load the config (refusing to start on any error), then serve until stopped. */
final class Run {
  private Run() {}

  static int serve(Path configPath, PrintStream err) throws ConfigException {
    EgretConfig config = ConfigCompiler.load(configPath);
    Vertx vertx = Vertx.vertx();
    Telemetry telemetry = Telemetry.NONE;
    EgretServer server = new EgretServer(vertx, config, telemetry);
    try {
      int port = server.start().await(30, TimeUnit.SECONDS);
      err.println("egret: proxy on " + config.listen().proxy().host() + ":" + port
          + ", config " + config.file() + " (sha256 " + config.sha256() + ")");
    } catch (Exception e) {
      err.println("egret: cannot start: " + e.getMessage());
      vertx.close();
      return 1;
    }
    server.watch(2000);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        server.close().await(10, TimeUnit.SECONDS);
        vertx.close().await(10, TimeUnit.SECONDS);
      } catch (Exception e) {
        // exiting anyway
      }
    }, "egret-shutdown"));
    return -1;
  }
}
