package dev.egret.lambda;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
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
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * The build's training run for the layer's class-data archive (not a user command): runs the
 * real {@code egret lambda} start-up against an Extensions API it fakes on loopback, sends an
 * upgraded {@code http://} request (twice: a new upstream connection, then a pooled one) and a
 * {@code CONNECT} tunnel carrying TLS to an HTTPS server it runs on loopback, and two refused
 * requests through the proxy, then {@code SHUTDOWN}. The JVM that runs it with
 * {@code -XX:ArchiveClassesAtExit} records every class a cold start and its first requests load,
 * which is what makes the layer and the image start fast (the layer, the image and {@code mvn
 * package} make their {@code egret.jsa} with it, in the {@code --static-archive} form below).
 *
 * <pre>
 * jre/bin/java -XX:ArchiveClassesAtExit=egret.jsa -cp egret.jar dev.egret.lambda.Training
 * </pre>
 *
 * Exits 0 through the extension's own SHUTDOWN path; exits 1 if a step failed or took over 60 s.
 *
 * <p>With arguments, they are the command of the JVM to train, and this JVM only drives it: the
 * upstream, the Extensions API and the requests stay here, so the child's archive holds what its
 * start and first requests load and not the training's own classes (the JDK's TLS server and
 * client, the Vert.x HTTP server). The child gets the config and the Extensions API's address in
 * its environment (EGRET_CONFIG, AWS_LAMBDA_RUNTIME_API); its standard output (the access log) is
 * dropped, its errors are this JVM's. A child whose command says {@code lambda} (the layer's) is
 * exercised when it asks for its first event and ends through SHUTDOWN; any other ({@code egret
 * run}: the image's and the build's archive, which then holds neither the extension's Extensions
 * API client nor Jackson's data binding, 700 classes a sidecar never loads) is exercised once its
 * /readyz answers 200 and ends by SIGTERM, its drain:
 *
 * <pre>
 * java -cp egret.jar dev.egret.lambda.Training \
 *     java -XX:ArchiveClassesAtExit=egret.jsa &#64;sidecar.flags -cp egret.jar dev.egret.cli.Egret run
 * </pre>
 *
 * Exits 1 if the child did not exit through that path within the 60 s.
 *
 * <p>With {@code --static-archive FILE} first, the build's form: the child records the classes it
 * loads as a class list ({@code -XX:DumpLoadedClassList}, added here), and once it exited through
 * its path, the same java with the same flags and class path (the command up to the class path's
 * value) dumps one static archive of that list into FILE ({@code -Xshare:dump}). That one archive
 * replaces the JDK's default archive and a dynamic one on top of it: it holds only the JDK's
 * classes Egret loads, where the default archive holds a fixed set of 1,200, some of which Egret
 * never loads (on Java 17 every page of a mapped archive is written when it is relocated to a
 * random address, so the classes nobody loads cost memory too):
 *
 * <pre>
 * java -cp egret.jar dev.egret.lambda.Training --static-archive egret.jsa \
 *     java &#64;sidecar.flags -cp egret.jar dev.egret.cli.Egret run
 * </pre>
 */
public final class Training {
  /** The first argument of the build's form (see the class comment). */
  static final String STATIC_ARCHIVE = "--static-archive";

  private Training() {}

  public static void main(String[] args) throws Exception {
    Path archive = null;
    if (args.length > 0 && args[0].equals(STATIC_ARCHIVE)) {
      if (args.length < 3) {
        System.err.println("egret training: " + STATIC_ARCHIVE + " FILE JAVA [FLAGS] -cp JAR MAIN [ARGS]");
        System.exit(2);
      }
      archive = Path.of(args[1]).toAbsolutePath();
      args = Arrays.copyOfRange(args, 2, args.length);
    }
    Vertx vertx = Vertx.vertx();
    int proxyPort = freePort();
    int adminPort = freePort();
    Path dir = Files.createTempDirectory("egret-training");
    // A loopback HTTPS upstream with a certificate made here, trusted beside the JDK's CA set (as
    // a default config trusts that set): the upgraded request and the tunnel below go through
    // the classes of a first request (the TLS handshake, the pools, the relay), which would
    // otherwise be loaded and linked on the first request of every start.
    KeyPairGenerator keys = KeyPairGenerator.getInstance("EC");
    keys.initialize(256);
    KeyPair key = keys.generateKeyPair();
    byte[] cert = selfSigned(key);
    Path certFile = Files.writeString(dir.resolve("upstream.pem"), pem("CERTIFICATE", cert));
    HttpServer upstream = vertx.createHttpServer(new HttpServerOptions().setSsl(true)
        .setKeyCertOptions(new PemKeyCertOptions()
            .setKeyValue(Buffer.buffer(pem("PRIVATE KEY", key.getPrivate().getEncoded())))
            .setCertValue(Buffer.buffer(pem("CERTIFICATE", cert)))))
        .requestHandler(request -> request.response().end("trained"));
    int upstreamPort = upstream.listen(0, "127.0.0.1").await(30, TimeUnit.SECONDS).actualPort();
    Path config = Files.writeString(dir.resolve("egret.yaml"), """
        version: 1
        listen: {proxy: 127.0.0.1:%d, admin: 127.0.0.1:%d}
        tls: {trust: [system, %s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: api.example.com
          - host: "**.example.org"
            methods: [GET, POST]
            paths: ["/v1/**"]
          - host: 127.0.0.1
            ports: [%d]
        """.formatted(proxyPort, adminPort, certFile, upstreamPort));
    HttpServer api = vertx.createHttpServer().requestHandler(request -> {
      String path = request.path();
      if (path.endsWith("/register")) {
        request.response().putHeader(ExtensionsApi.ID_HEADER, "training").end("{}");
      } else if (path.endsWith("/event/next")) {
        // The extension asks for its first event only once it serves: exercise it, then stop.
        vertx.executeBlocking(() -> {
          exercise(proxyPort, upstreamPort, cert);
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
    Map<String, String> env = Map.of(
        "AWS_LAMBDA_RUNTIME_API", "127.0.0.1:" + apiPort,
        "EGRET_CONFIG", config.toString(),
        "EGRET_METRICS_INTERVAL", "60s");
    if (archive != null) {
      Path classList = dir.resolve("classes.list");
      String[] trained = new String[args.length + 1];
      trained[0] = args[0];
      trained[1] = "-XX:DumpLoadedClassList=" + classList;
      System.arraycopy(args, 1, trained, 2, args.length - 1);
      int code = drive(trained, env, adminPort, proxyPort, upstreamPort, cert);
      System.exit(code != 0 ? code : dump(args, classList, archive, dir.resolve("dump.log")));
    }
    if (args.length > 0) {
      System.exit(drive(args, env, adminPort, proxyPort, upstreamPort, cert));
    }
    // A build step's time limit: a training run that hangs fails the build instead.
    vertx.setTimer(60_000, t -> {
      System.err.println("egret training: no SHUTDOWN within 60 s");
      Runtime.getRuntime().halt(1);
    });
    int code = Extension.main(new ArrayDeque<>(), env,
        new PrintStream(OutputStream.nullOutputStream()), System.err);
    if (code >= 0) {
      System.err.println("egret training: the extension did not start (exit " + code + ")");
      Runtime.getRuntime().halt(1);
    }
  }

  /**
   * The requests of a first start: an upgraded request twice (a new upstream connection, then a
   * pooled one), a tunnel, two refusals.
   */
  private static void exercise(int proxyPort, int upstreamPort, byte[] cert) throws Exception {
    for (int i = 0; i < 2; i++) {
      upgraded(proxyPort, upstreamPort);
    }
    tunnelled(proxyPort, upstreamPort, cert);
    refused(proxyPort, "CONNECT denied.example.net:443 HTTP/1.1\r\nHost: denied.example.net:443\r\n\r\n");
    refused(proxyPort, "GET http://denied.example.net/ HTTP/1.1\r\nHost: denied.example.net\r\n\r\n");
  }

  /** Runs and exercises the JVM to train (see the class comment); its exit code for ours. */
  private static int drive(String[] command, Map<String, String> env, int adminPort, int proxyPort,
      int upstreamPort, byte[] cert) throws Exception {
    // This JVM's TLS server warmed first (one request straight to it): its first handshake is
    // slow on a loaded machine, and the child's first upstream handshake must not time out on it.
    try (Socket s = new Socket(InetAddress.getLoopbackAddress(), upstreamPort)) {
      s.setSoTimeout(30_000);
      tlsGet(s, upstreamPort, cert, "the warm-up request");
    }
    ProcessBuilder trained = new ProcessBuilder(command)
        .redirectOutput(ProcessBuilder.Redirect.DISCARD)
        .redirectError(ProcessBuilder.Redirect.INHERIT);
    trained.environment().putAll(env);
    Process child = trained.start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    try {
      boolean lambda = Arrays.asList(command).contains("lambda");
      if (!lambda) {
        awaitReady(child, adminPort, deadline);
        exercise(proxyPort, upstreamPort, cert);
        child.destroy(); // SIGTERM: the drain, then the exit that writes the archive
      }
      if (!child.waitFor(deadline - System.nanoTime(), TimeUnit.NANOSECONDS)) {
        System.err.println("egret training: " + command[0] + " did not exit within 60 s");
        return 1;
      }
      // 143: the JVM's exit after SIGTERM (128 + 15), which `egret run` ends with.
      int code = child.exitValue();
      if (code != 0 && !(code == 143 && !lambda)) {
        System.err.println("egret training: " + command[0] + " exited " + code);
        return 1;
      }
      return 0;
    } catch (Exception e) {
      System.err.println("egret training: " + e.getMessage());
      return 1;
    } finally {
      child.destroyForcibly();
    }
  }

  /**
   * Dumps the static archive FILE of the class list with the trained command's java, flags and
   * class path (the archive maps only for the same class path and compatible flags); its exit
   * code, and the dump's output on a failure.
   */
  private static int dump(String[] command, Path classList, Path archive, Path log) throws Exception {
    int cp = Arrays.asList(command).indexOf("-cp");
    if (cp < 1 || cp + 1 >= command.length) {
      System.err.println("egret training: " + STATIC_ARCHIVE
          + " needs the trained command's class path as -cp JAR");
      return 2;
    }
    String[] dump = new String[cp + 5];
    dump[0] = command[0];
    dump[1] = "-Xshare:dump";
    dump[2] = "-XX:SharedClassListFile=" + classList;
    dump[3] = "-XX:SharedArchiveFile=" + archive;
    System.arraycopy(command, 1, dump, 4, cp + 1);
    Process p = new ProcessBuilder(dump).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    if (!p.waitFor(120, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      System.err.println("egret training: the archive dump did not end within 120 s");
      return 1;
    }
    if (p.exitValue() != 0 || !Files.isRegularFile(archive)) {
      List<String> out = Files.readAllLines(log);
      System.err.println("egret training: the archive dump exited " + p.exitValue() + ":\n"
          + String.join("\n", out.subList(Math.max(0, out.size() - 10), out.size())));
      return 1;
    }
    return 0;
  }

  /** Polls the child's /readyz until it answers 200; fails if the child exits or time runs out. */
  private static void awaitReady(Process child, int adminPort, long deadline) throws Exception {
    while (true) {
      if (!child.isAlive()) {
        throw new IOException("the trained JVM exited " + child.exitValue() + " before it was ready");
      }
      if (System.nanoTime() > deadline) {
        throw new IOException("the trained JVM was not ready within 60 s");
      }
      try (Socket s = new Socket(InetAddress.getLoopbackAddress(), adminPort)) {
        s.setSoTimeout(10_000);
        s.getOutputStream().write(("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + "Connection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        if (new String(s.getInputStream().readNBytes(12), StandardCharsets.US_ASCII)
            .startsWith("HTTP/1.1 200")) {
          return;
        }
      } catch (IOException notYet) {
        // not listening yet
      }
      Thread.sleep(20);
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

  /** An absolute-form {@code http://} request through the proxy, upgraded to TLS upstream. */
  private static void upgraded(int proxyPort, int upstreamPort) throws IOException {
    try (Socket s = new Socket(InetAddress.getLoopbackAddress(), proxyPort)) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write(("GET http://127.0.0.1:" + upstreamPort + "/ HTTP/1.1\r\nHost: "
          + "127.0.0.1:" + upstreamPort + "\r\nConnection: close\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII));
      expect200(s.getInputStream().readAllBytes(), "the upgraded request");
    }
  }

  /** A {@code CONNECT} tunnel through the proxy, and a TLS request inside it. */
  private static void tunnelled(int proxyPort, int upstreamPort, byte[] cert) throws Exception {
    try (Socket s = new Socket(InetAddress.getLoopbackAddress(), proxyPort)) {
      s.setSoTimeout(10_000);
      String authority = "127.0.0.1:" + upstreamPort;
      s.getOutputStream().write(("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority
          + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      InputStream in = s.getInputStream();
      StringBuilder head = new StringBuilder();
      while (!head.toString().endsWith("\r\n\r\n")) {
        int b = in.read();
        if (b < 0) {
          throw new IOException("the proxy closed the CONNECT: '" + head + "'");
        }
        head.append((char) b);
      }
      expect200(head.toString().getBytes(StandardCharsets.US_ASCII), "the CONNECT");
      tlsGet(s, upstreamPort, cert, "the request inside the tunnel");
    }
  }

  /** A TLS GET / over {@code s} to the upstream, trusting its certificate; expects a 200. */
  private static void tlsGet(Socket s, int upstreamPort, byte[] cert, String what)
      throws Exception {
    String authority = "127.0.0.1:" + upstreamPort;
    KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
    trust.load(null, null);
    trust.setCertificateEntry("upstream", CertificateFactory.getInstance("X.509")
        .generateCertificate(new ByteArrayInputStream(cert)));
    TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
    tmf.init(trust);
    SSLContext tls = SSLContext.getInstance("TLS");
    tls.init(null, tmf.getTrustManagers(), null);
    try (SSLSocket t = (SSLSocket) tls.getSocketFactory()
        .createSocket(s, "127.0.0.1", upstreamPort, false)) {
      t.getOutputStream().write(("GET / HTTP/1.1\r\nHost: " + authority
          + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      expect200(t.getInputStream().readAllBytes(), what);
    }
  }

  private static void expect200(byte[] response, String what) throws IOException {
    String text = new String(response, StandardCharsets.US_ASCII);
    if (!text.startsWith("HTTP/1.1 200")) {
      throw new IOException("expected a 200 for " + what + ", got '"
          + text.lines().findFirst().orElse("") + "'");
    }
  }

  /**
   * A self-signed certificate for 127.0.0.1 (subject alternative name IP 127.0.0.1), valid for a
   * day, in DER: the JDK has no public API that makes one, and the training JVM must not need
   * more than the jar.
   */
  static byte[] selfSigned(KeyPair key) throws GeneralSecurityException {
    byte[] ecdsaSha256 = der(0x30, der(0x06, new byte[] {0x2a, (byte) 0x86, 0x48, (byte) 0xce,
        0x3d, 0x04, 0x03, 0x02}));
    byte[] name = der(0x30, der(0x31, der(0x30, der(0x06, new byte[] {0x55, 0x04, 0x03}),
        der(0x0c, "egret training".getBytes(StandardCharsets.UTF_8)))));
    DateTimeFormatter utc = DateTimeFormatter.ofPattern("yyMMddHHmmss'Z'").withZone(ZoneOffset.UTC);
    Instant now = Instant.now();
    byte[] validity = der(0x30,
        der(0x17, utc.format(now.minus(Duration.ofHours(1))).getBytes(StandardCharsets.US_ASCII)),
        der(0x17, utc.format(now.plus(Duration.ofDays(1))).getBytes(StandardCharsets.US_ASCII)));
    byte[] san = der(0x30, der(0x06, new byte[] {0x55, 0x1d, 0x11}),
        der(0x04, der(0x30, der(0x87, new byte[] {127, 0, 0, 1}))));
    byte[] tbs = der(0x30, der(0xa0, der(0x02, new byte[] {2})), der(0x02, new byte[] {1}),
        ecdsaSha256, name, validity, name, key.getPublic().getEncoded(),
        der(0xa3, der(0x30, san)));
    Signature signer = Signature.getInstance("SHA256withECDSA");
    signer.initSign(key.getPrivate());
    signer.update(tbs);
    byte[] signature = signer.sign();
    byte[] bits = new byte[signature.length + 1]; // a leading 0: no unused bits
    System.arraycopy(signature, 0, bits, 1, signature.length);
    return der(0x30, tbs, ecdsaSha256, der(0x03, bits));
  }

  /** One DER element: tag, definite length, the parts' bytes one after the other. */
  private static byte[] der(int tag, byte[]... parts) {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      body.writeBytes(p);
    }
    int n = body.size();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(tag);
    if (n < 0x80) {
      out.write(n);
    } else if (n < 0x100) {
      out.write(0x81);
      out.write(n);
    } else {
      out.write(0x82);
      out.write(n >> 8);
      out.write(n & 0xff);
    }
    out.writeBytes(body.toByteArray());
    return out.toByteArray();
  }

  private static String pem(String type, byte[] der) {
    return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'})
        .encodeToString(der) + "\n-----END " + type + "-----\n";
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
