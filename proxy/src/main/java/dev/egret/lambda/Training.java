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
import java.util.Base64;
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
 * which is what makes the layer and the image start fast (the image and {@code mvn package}
 * train their {@code egret.jsa} with it too).
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
        listen: {proxy: 127.0.0.1:%d, admin: 127.0.0.1:0}
        tls: {trust: [system, %s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: api.example.com
          - host: "**.example.org"
            methods: [GET, POST]
            paths: ["/v1/**"]
          - host: 127.0.0.1
            ports: [%d]
        """.formatted(proxyPort, certFile, upstreamPort));
    HttpServer api = vertx.createHttpServer().requestHandler(request -> {
      String path = request.path();
      if (path.endsWith("/register")) {
        request.response().putHeader(ExtensionsApi.ID_HEADER, "training").end("{}");
      } else if (path.endsWith("/event/next")) {
        // The extension asks for its first event only once it serves: exercise it, then stop.
        vertx.executeBlocking(() -> {
          for (int i = 0; i < 2; i++) { // a new upstream connection, then a pooled one
            upgraded(proxyPort, upstreamPort);
          }
          tunnelled(proxyPort, upstreamPort, cert);
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
        expect200(t.getInputStream().readAllBytes(), "the request inside the tunnel");
      }
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
