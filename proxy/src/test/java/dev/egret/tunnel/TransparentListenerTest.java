package dev.egret.tunnel;

import dev.egret.testing.EgretFixture;
import dev.egret.testing.RecordingTelemetry;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.failure.ErrorKind;
import dev.egret.policy.Kind;
import dev.egret.telemetry.Hop;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import dev.egret.testing.TlsTestServer;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SNIHostName;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The transparent listeners (docs: "Transparent listeners"), on loopback: a client that dials
 * the listener directly, as an iptables redirect would deliver it, is held to what a CONNECT
 * (tls) or an absolute-form http:// request (http) gets. The redirect itself is tested in
 * network namespaces by the enforcement tests.
 */
class TransparentListenerTest {
  private static final String HOST = "api.partner.test";
  private static final Duration WAIT = Duration.ofSeconds(10);

  @TempDir static Path dir;
  static TlsTestServer upstream;
  static TlsTestServer plainSide;
  static SSLContext trust;
  static TestCert root;
  static RecordingTelemetry telemetry;
  static EgretFixture egret;
  static int tlsPort;
  static int httpPort;

  @BeforeAll
  static void start() throws Exception {
    root = TestPki.rootCa("Transparent Root").issue();
    TestCert leaf = root.leaf(HOST).issue();
    upstream = TlsTestServer.https(leaf).name("partner").start();
    plainSide = TlsTestServer.https(leaf).name("partner").start();
    trust = root.clientContext();
    Path rootPem = root.writePem(dir).cert();
    tlsPort = freePort();
    httpPort = freePort();
    telemetry = new RecordingTelemetry();
    // Each listener stands for one upstream's port; the http one is upgraded to that same port,
    // since it is not 80.
    egret = EgretFixture.builder()
        .hosts(Map.of(HOST, "127.0.0.1", "other.partner.test", "127.0.0.1")).telemetry(telemetry)
        .start(dir, """
        version: 1
        listen:
          proxy: 127.0.0.1:0
          admin: 127.0.0.1:0
          transparent:
            - {address: 127.0.0.1:%d, port: %d, protocol: tls}
            - {address: 127.0.0.1:%d, port: %d, protocol: http}
        tls: {trust: [%s]}
        addresses: {allow: [127.0.0.1/32]}
        allow:
          - host: %s
            ports: [%d, %d]
        """.formatted(tlsPort, upstream.port(), httpPort, plainSide.port(),
            rootPem.getFileName(), HOST, upstream.port(), plainSide.port()));
  }

  @AfterAll
  static void stop() throws Exception {
    egret.close();
    upstream.close();
    plainSide.close();
  }

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static SSLSocket tls(String sni) throws Exception {
    // A fresh context per connection: the JDK resumes a cached session with its first SNI.
    SSLSocket s = (SSLSocket) root.clientContext().getSocketFactory()
        .createSocket("127.0.0.1", tlsPort);
    s.setSoTimeout(10_000);
    SSLParameters p = s.getSSLParameters();
    p.setServerNames(java.util.List.of(new SNIHostName(sni)));
    s.setSSLParameters(p);
    return s;
  }

  @Test
  void relaysTlsToTheHostTheClientHelloNames() throws Exception {
    try (SSLSocket s = tls(HOST)) {
      s.startHandshake();
      OutputStream out = s.getOutputStream();
      out.write(("GET /t HTTP/1.1\r\nHost: " + HOST + "\r\nConnection: close\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      String answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
      assertThat(answer).startsWith("HTTP/1.1 200").endsWith("hello from partner");
    }
    Hop hop = telemetry.awaitHop(h -> (HOST + ":" + upstream.port()).equals(h.url)
        && h.error == null, WAIT);
    assertThat(hop.kind).isEqualTo(Kind.TUNNEL);
    assertThat(hop.origin).isEqualTo("transparent");
    assertThat(hop.tlsVersion).startsWith("TLSv1.");
  }

  @Test
  void refusesAClientHelloForAHostNoRuleAllows() throws Exception {
    try (SSLSocket s = tls("other.partner.test")) {
      // The handshake may complete before the client learns anything: the refusal closes the
      // connection instead, and nothing reaches the upstream.
      try {
        s.startHandshake();
        assertThat(s.getInputStream().read()).isEqualTo(-1);
      } catch (java.io.IOException refused) {
        // refused during the handshake: as good
      }
    }
    Hop hop = telemetry.awaitHop(h -> ("other.partner.test:" + upstream.port()).equals(h.url)
        && h.error == ErrorKind.REQUEST_DENIED, WAIT);
    assertThat(hop.errorDetails).contains("no allow rule names other.partner.test");
    assertThat(upstream.handshakes()).noneMatch(h -> h.sni().orElse("").equals("other.partner.test"));
  }

  @Test
  void refusesAClientHelloWithoutSni() throws Exception {
    try (Socket s = new Socket("127.0.0.1", tlsPort)) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write(HelloBytes.jdkClientHello(null));
      s.getOutputStream().flush();
      assertThat(s.getInputStream().read()).isEqualTo(-1);
    }
    Hop hop = telemetry.awaitHop(h -> h.error == ErrorKind.REQUEST_DENIED
        && h.errorDetails.contains("no SNI"), WAIT);
    assertThat(hop.origin).isEqualTo("transparent");
  }

  @Test
  void upgradesOriginFormHttpToTheHostTheHostHeaderNames() throws Exception {
    try (Socket s = new Socket("127.0.0.1", httpPort)) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write(("GET /plain?q=1 HTTP/1.1\r\nHost: " + HOST + "\r\nConnection: close\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      InputStream in = s.getInputStream();
      String answer = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
      assertThat(answer).startsWith("HTTP/1.1 200").contains("hello from partner");
    }
    Hop hop = telemetry.awaitHop(h -> h.url != null && h.url.endsWith("/plain"), WAIT);
    assertThat(hop.kind).isEqualTo(Kind.UPGRADE);
    assertThat(hop.origin).isEqualTo("transparent");
    assertThat(hop.tlsVersion).startsWith("TLSv1.");
  }

  @Test
  void refusesAnHttpRequestForAHostNoRuleAllowsWithProxyStatus() throws Exception {
    try (Socket s = new Socket("127.0.0.1", httpPort)) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write(("GET / HTTP/1.1\r\nHost: other.partner.test\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      s.getOutputStream().flush();
      byte[] head = new byte[512];
      String answer = new String(head, 0, s.getInputStream().read(head),
          StandardCharsets.ISO_8859_1);
      assertThat(answer).startsWith("HTTP/1.1 403")
          .contains("Proxy-Status: egret; error=http_request_denied");
    }
  }
}
