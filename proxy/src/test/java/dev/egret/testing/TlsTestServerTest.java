package dev.egret.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class TlsTestServerTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(10);
  private static final TestCert ROOT = TestPki.rootCa("Test Root").issue();
  private static final TestCert RSA_LEAF = ROOT.leaf("api.partner.test").issue();

  @Test
  void servesTls13WithAP256LeafToAJdkClientTrustingTheRoot() throws Exception {
    TestCert leaf = ROOT.leaf("127.0.0.1").key(KeyKind.EC_P256).issue();
    try (TlsTestServer server =
        TlsTestServer.https(leaf).name("p256").protocols("TLSv1.3").start()) {
      HttpClient client = HttpClient.newBuilder().sslContext(ROOT.clientContext())
          .version(HttpClient.Version.HTTP_1_1).connectTimeout(TIMEOUT).build();

      HttpResponse<String> response = client.send(
          HttpRequest.newBuilder(URI.create("https://127.0.0.1:" + server.port() + "/hi?x=1"))
              .header("X-Task", "t-1").timeout(TIMEOUT).build(),
          HttpResponse.BodyHandlers.ofString());

      assertThat(response.statusCode()).isEqualTo(200);
      assertThat(response.body()).isEqualTo("hello from p256");
      assertThat(response.headers().firstValue("X-Echo-Target")).contains("/hi?x=1");
      assertThat(response.headers().firstValue("X-Echo-Tls")).contains("TLSv1.3");
      assertThat(server.handshakes()).singleElement()
          .satisfies(h -> assertThat(h.protocol()).isEqualTo("TLSv1.3"));
      ReceivedRequest seen = server.requests().get(0);
      assertThat(seen.method()).isEqualTo("GET");
      assertThat(seen.header("x-task")).contains("t-1");
    }
  }

  @Test
  void presentsLeafAndIntermediateAndRecordsTheSni() throws Exception {
    TestCert intermediate = ROOT.intermediate("Test Intermediate").issue();
    TestCert leaf = intermediate.leaf("api.partner.test").key(KeyKind.EC_P256).issue();
    try (TlsTestServer server = TlsTestServer.https(leaf).start();
        SSLSocket socket = connect(server, ROOT.clientContext(), "api.partner.test", null, null)) {

      assertThat(get(socket, "/chain")).startsWith("HTTP/1.1 200 OK");
      assertThat(socket.getSession().getPeerCertificates())
          .containsExactly(leaf.certificate(), intermediate.certificate());
      assertThat(server.handshakes().get(0).sni()).contains("api.partner.test");
      assertThat(server.requests().get(0).sni()).contains("api.partner.test");
    }
  }

  @Test
  void negotiatesTls10WhenThatIsAllTheServerSpeaks() throws Exception {
    try (TlsTestServer server = TlsTestServer.https(RSA_LEAF).protocols("TLSv1").start();
        SSLSocket socket = connect(server, ROOT.clientContext(), "api.partner.test",
            new String[] {"TLSv1", "TLSv1.2", "TLSv1.3"}, null)) {

      assertThat(get(socket, "/old")).startsWith("HTTP/1.1 200 OK");
      assertThat(socket.getSession().getProtocol()).isEqualTo("TLSv1");
      assertThat(server.handshakes().get(0).protocol()).isEqualTo("TLSv1");
    }
  }

  @Test
  void negotiatesTls11WhenThatIsAllTheServerSpeaks() throws Exception {
    try (TlsTestServer server = TlsTestServer.https(RSA_LEAF).protocols("TLSv1.1").start();
        SSLSocket socket = connect(server, ROOT.clientContext(), "api.partner.test",
            new String[] {"TLSv1.1"}, null)) {

      socket.startHandshake();
      assertThat(socket.getSession().getProtocol()).isEqualTo("TLSv1.1");
    }
  }

  @Test
  void recordsAFailedHandshakeAndNoRequest() throws Exception {
    try (TlsTestServer server = TlsTestServer.https(RSA_LEAF).protocols("TLSv1").start()) {
      assertThatThrownBy(() -> {
        try (SSLSocket socket = connect(server, ROOT.clientContext(), "api.partner.test",
            new String[] {"TLSv1.2", "TLSv1.3"}, null)) {
          socket.startHandshake();
        }
      }).isInstanceOf(SSLException.class);

      server.awaitHandshakeOutcomes(1, TIMEOUT);
      assertThat(server.connections()).isEqualTo(1);
      assertThat(server.handshakes()).isEmpty();
      assertThat(server.failedHandshakes()).hasSize(1);
      assertThat(server.requests()).isEmpty();
    }
  }

  static Stream<Arguments> weakSuites() {
    return Stream.of(
        Arguments.of("CBC", TlsTestServer.CBC_ONLY),
        Arguments.of("NULL", TlsTestServer.NULL_ONLY),
        Arguments.of("DHE", TlsTestServer.DHE_ONLY),
        Arguments.of("static RSA", TlsTestServer.STATIC_RSA_ONLY),
        Arguments.of("3DES", TlsTestServer.TRIPLE_DES_ONLY),
        Arguments.of("anonymous", TlsTestServer.ANONYMOUS_ONLY));
  }

  /** Proves each weak server really offers its suite, so refusing it is Egret's doing. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("weakSuites")
  void negotiatesOnlyTheWeakSuitesItWasGiven(String label, List<String> suites)
      throws Exception {
    try (TlsTestServer server = TlsTestServer.https(RSA_LEAF).protocols("TLSv1.2")
            .cipherSuites(suites).start();
        SSLSocket socket = connect(server, ROOT.clientContext(), "api.partner.test",
            new String[] {"TLSv1.2"}, suites.toArray(String[]::new))) {

      assertThat(get(socket, "/weak")).startsWith("HTTP/1.1 200 OK");
      assertThat(suites).contains(socket.getSession().getCipherSuite());
    }
  }

  static Stream<Arguments> weakCertificates() {
    return Stream.of(
        Arguments.of("RSA-1024 leaf", ROOT.leaf("api.partner.test").key(KeyKind.RSA_1024)),
        Arguments.of("SHA-1 signed leaf", ROOT.leaf("api.partner.test").signature("SHA1withRSA")),
        Arguments.of("RSA-1024 intermediate",
            ROOT.intermediate("Weak Intermediate").key(KeyKind.RSA_1024).issue()
                .leaf("api.partner.test")));
  }

  /** A JDK client in the test JVM accepts these chains, so refusing them is Egret's doing. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("weakCertificates")
  void servesWeakCertificatesOverTls13(String label, TestPki spec) throws Exception {
    TestCert leaf = spec.issue();
    try (TlsTestServer server = TlsTestServer.https(leaf).protocols("TLSv1.3").start();
        SSLSocket socket = connect(server, ROOT.clientContext(), "api.partner.test", null, null)) {

      assertThat(get(socket, "/weak-cert")).startsWith("HTTP/1.1 200 OK");
      assertThat(socket.getSession().getPeerCertificates()[0]).isEqualTo(leaf.certificate());
    }
  }

  @Test
  void givesDheClientsWithoutFfdheGroupsA1024BitGroup() {
    assumeTrue(OpenSsl.available(), "openssl is not installed");
    try (TlsTestServer server = TlsTestServer.https(RSA_LEAF).protocols("TLSv1.2")
        .cipherSuites(TlsTestServer.DHE_ONLY).start()) {

      String output = OpenSsl.run("openssl s_client -connect 127.0.0.1:" + server.port()
          + " -tls1_2 -groups X25519 -cipher 'DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0'");

      assertThat(output).contains("Server Temp Key: DH, 1024 bits");
    }
  }

  @Test
  void plainServerAnswersHttpAndRefusesAClientHello() throws Exception {
    try (TlsTestServer server = TlsTestServer.plain().name("cleartext").start()) {
      HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(TIMEOUT).build();
      HttpResponse<String> response = client.send(
          HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/plain"))
              .timeout(TIMEOUT).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(response.body()).isEqualTo("hello from cleartext");
      assertThat(response.headers().firstValue("X-Echo-Tls")).contains("none");

      assertThatThrownBy(() -> {
        try (SSLSocket socket = connect(server, ROOT.clientContext(), "api.partner.test",
            null, null)) {
          socket.startHandshake();
        }
      }).isInstanceOf(SSLException.class);
      // The server recorded the ClientHello before answering it, so no wait is needed.
      assertThat(server.notHttp()).singleElement().asString().contains("0x16");
      assertThat(server.requests()).hasSize(1);
      assertThat(server.handshakes()).isEmpty();
    }
  }

  @Test
  void readsContentLengthAndChunkedBodies() throws Exception {
    try (TlsTestServer server = TlsTestServer.plain().start();
        Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", server.port()), 5_000);
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(("POST /a HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n"
          + "\r\nhello"
          + "POST /b HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n"
          + "Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII));

      String responses = new String(socket.getInputStream().readAllBytes(),
          StandardCharsets.UTF_8);

      assertThat(responses.split("HTTP/1.1 200 OK", -1)).hasSize(3);
      assertThat(server.requests()).extracting(ReceivedRequest::bodyText)
          .containsExactly("hello", "abcde");
    }
  }

  @Test
  void refusesConnectionsOnceClosed() {
    TlsTestServer server = TlsTestServer.https(RSA_LEAF).start();
    int port = server.port();
    server.close();

    assertThatThrownBy(() -> new Socket("127.0.0.1", port).close())
        .isInstanceOf(ConnectException.class);
  }

  /**
   * A JDK client socket to the server's port, verifying the certificate for {@code host} the way
   * Egret does: connect to the address, check the name from the request.
   */
  private static SSLSocket connect(TlsTestServer server, SSLContext context, String host,
      String[] protocols, String[] suites) throws IOException {
    Socket tcp = new Socket();
    tcp.connect(new InetSocketAddress("127.0.0.1", server.port()), 5_000);
    tcp.setSoTimeout(10_000);
    SSLSocket socket = (SSLSocket) context.getSocketFactory()
        .createSocket(tcp, host, server.port(), true);
    SSLParameters params = socket.getSSLParameters();
    params.setEndpointIdentificationAlgorithm("HTTPS");
    params.setServerNames(List.of(new SNIHostName(host)));
    if (protocols != null) {
      params.setProtocols(protocols);
    }
    if (suites != null) {
      params.setCipherSuites(suites);
    }
    socket.setSSLParameters(params);
    return socket;
  }

  /** Sends a GET and returns the response up to the end of its head. */
  private static String get(SSLSocket socket, String path) throws IOException {
    socket.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nHost: api.partner.test\r\n"
        + "Connection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
    socket.getOutputStream().flush();
    return new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
  }
}
