package dev.egret.lambda;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The build's training run for the layer's class-data archive (not a user command): runs the
 * real {@code egret lambda} start-up against an Extensions API it fakes on loopback, sends two
 * refused requests through the proxy (so the listener and refusal classes load), then
 * {@code SHUTDOWN}. The JVM that runs it with {@code -XX:ArchiveClassesAtExit} records every
 * class a Lambda cold start loads, which is what makes the layer start fast.
 *
 * <pre>
 * jre/bin/java -XX:ArchiveClassesAtExit=egret.jsa -cp egret.jar dev.egret.lambda.Training
 * </pre>
 *
 * Exits 0 through the extension's own SHUTDOWN path; exits 1 if a step failed or took over 60 s.
 */
public final class Training {
  private Training() {}

  public static void main(String[] args) throws Exception {
    Vertx vertx = Vertx.vertx();
    int proxyPort = freePort();
    Path dir = Files.createTempDirectory("egret-training");
    Path config = Files.writeString(dir.resolve("egret.yaml"), """
        version: 1
        listen: {proxy: 127.0.0.1:%d, admin: 127.0.0.1:0}
        allow:
          - host: api.example.com
          - host: "**.example.org"
            methods: [GET, POST]
            paths: ["/v1/**"]
        """.formatted(proxyPort));
    HttpServer api = vertx.createHttpServer().requestHandler(request -> {
      String path = request.path();
      if (path.endsWith("/register")) {
        request.response().putHeader(ExtensionsApi.ID_HEADER, "training").end("{}");
      } else if (path.endsWith("/event/next")) {
        // The extension asks for its first event only once it serves: exercise it, then stop.
        vertx.executeBlocking(() -> {
          refused(proxyPort, "CONNECT denied.example.net:443 HTTP/1.1\r\nHost: denied.example.net:443\r\n\r\n");
          refused(proxyPort, "GET http://denied.example.net/ HTTP/1.1\r\nHost: denied.example.net\r\n\r\n");
          return null;
        }).onComplete(ar -> {
          if (ar.failed()) {
            System.err.println("egret training: " + ar.cause().getMessage());
            Runtime.getRuntime().halt(1);
          }
          request.response().end(new JsonObject()
            .put("eventType", "SHUTDOWN").put("shutdownReason", "spindown")
              .put("deadlineMs", System.currentTimeMillis() + 2000).encode());
        });
      } else {
        request.response().setStatusCode(202).end();
      }
    });
    int apiPort = api.listen(0, "127.0.0.1").await(30, TimeUnit.SECONDS).actualPort();
    // A build step's time limit: a training run that hangs fails the build instead.
    vertx.setTimer(60_000, t -> {
      System.err.println("egret training: no SHUTDOWN within 60 s");
      Runtime.getRuntime().halt(1);
    });
    int code = Extension.main(new ArrayDeque<>(), Map.of(
        "AWS_LAMBDA_RUNTIME_API", "127.0.0.1:" + apiPort,
        "EGRET_CONFIG", config.toString(),
        "EGRET_METRICS_INTERVAL", "60s"), new PrintStream(OutputStream.nullOutputStream()), System.err);
    if (code >= 0) {
      System.err.println("egret training: the extension did not start (exit " + code + ")");
      Runtime.getRuntime().halt(1);
    }
  }

  private static void refused(int port, String request) throws IOException {
    try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
      InputStream in = s.getInputStream();
      byte[] head = in.readNBytes(12);
      if (!new String(head, StandardCharsets.US_ASCII).startsWith("HTTP/1.1 403")) {
        throw new IOException("expected a 403 from the proxy, got '"
            + new String(head, StandardCharsets.US_ASCII) + "'");
      }
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
