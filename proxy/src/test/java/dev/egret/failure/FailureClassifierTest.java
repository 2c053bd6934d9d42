package dev.egret.failure;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.tls.Pins;
import io.netty.channel.ConnectTimeoutException;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.dns.DefaultDnsQuestion;
import io.netty.handler.codec.dns.DnsRecordType;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import io.netty.resolver.dns.DnsNameResolverTimeoutException;
import io.vertx.core.http.ConnectionPoolTooBusyException;
import io.vertx.core.http.HttpClosedException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import io.netty.handler.ssl.NotSslRecordException;
import java.security.cert.CertPathBuilderException;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.PKIXReason;
import java.util.List;
import javax.net.ssl.SSLHandshakeException;
import org.junit.jupiter.api.Test;

/**
 * TLS failures as Vert.x and the JDK wrap them (shapes taken from real runs of UpstreamTlsTest):
 * the classifier must see through the wrapping to the right kind and a sentence that teaches.
 */
class FailureClassifierTest {
  private static final String HOST = "api.partner.test";

  /** Vert.x's outer "Failed to create SSL connection" around the JDK's real reason. */
  private static Throwable wrapped(Throwable reason) {
    return new SSLHandshakeException("Failed to create SSL connection") {
      {
        initCause(reason);
      }
    };
  }

  private static SSLHandshakeException handshake(String message, Throwable cause) {
    SSLHandshakeException e = new SSLHandshakeException(message);
    e.initCause(cause);
    return e;
  }

  @Test
  void expiredCertificateSaysExpiredNotPkixJargon() {
    CertificateException validator = new CertificateException(
        "PKIX path validation failed: java.security.cert.CertPathValidatorException: validity"
            + " check failed",
        new CertPathValidatorException("validity check failed",
            new CertificateExpiredException("NotAfter: Tue Nov 24 19:19:04 UTC 2026")));
    ProxyFailure f = FailureClassifier.classify(
        wrapped(handshake(validator.getMessage(), validator)), HOST).failure();
    assertThat(f.kind()).isEqualTo(ErrorKind.TLS_CERTIFICATE_ERROR);
    assertThat(f.details()).isEqualTo("upstream certificate of api.partner.test refused: the"
        + " certificate has expired (NotAfter: Tue Nov 24 19:19:04 UTC 2026)");
  }

  @Test
  void unbuildablePathNamesBothUsualCauses() {
    CertificateException validator = new CertificateException("PKIX path building failed",
        new CertPathBuilderException("unable to find valid certification path"));
    ProxyFailure f =
        FailureClassifier.classify(wrapped(handshake("x", validator)), HOST).failure();
    assertThat(f.kind()).isEqualTo(ErrorKind.TLS_CERTIFICATE_ERROR);
    assertThat(f.details()).contains("no chain to a trusted root", "tls.trust",
        "intermediate certificates");
  }

  @Test
  void egretsOwnCertificateRefusalPassesThrough() {
    CertificateException own = new CertificateException(
        "certificate pinning failure for api.partner.test: the verified chain has sha256/A=");
    ProxyFailure f =
        FailureClassifier.classify(wrapped(handshake(own.getMessage(), own)), HOST).failure();
    assertThat(f.kind()).isEqualTo(ErrorKind.TLS_CERTIFICATE_ERROR);
    assertThat(f.details()).endsWith("refused: " + own.getMessage());
  }

  @Test
  void protocolVersionAlertIsAProtocolError() {
    ProxyFailure f = FailureClassifier.classify(
        wrapped(new SSLHandshakeException("Received fatal alert: protocol_version")), HOST)
        .failure();
    assertThat(f.kind()).isEqualTo(ErrorKind.TLS_PROTOCOL_ERROR);
    assertThat(f.details()).contains("no TLS version that Egret allows",
        "Received fatal alert: protocol_version");
  }

  @Test
  void handshakeFailureAlertMeansNoSharedSuite() {
    ProxyFailure f = FailureClassifier.classify(
        wrapped(new SSLHandshakeException("Received fatal alert: handshake_failure")), HOST)
        .failure();
    assertThat(f.kind()).isEqualTo(ErrorKind.TLS_PROTOCOL_ERROR);
    assertThat(f.details()).contains("shares no cipher suite", "forward secrecy");
  }

  @Test
  void certificateAlertFromTheServerPointsAtTheClientCertificate() {
    // TLS 1.3: the server refuses the client's (missing) certificate after the client finished,
    // so the alert arrives while reading, inside Netty's DecoderException.
    ProxyFailure f = FailureClassifier.classify(new DecoderException(
        new SSLHandshakeException("Received fatal alert: bad_certificate")), HOST).failure();
    assertThat(f.kind()).isEqualTo(ErrorKind.TLS_CERTIFICATE_ERROR);
    assertThat(f.details()).contains("clientCert", "bad_certificate");
  }

  @Test
  void plaintextAnswerIsAProtocolError() {
    ProxyFailure f = FailureClassifier.classify(new NotSslRecordException("not an SSL record"),
        HOST).failure();
    assertThat(f.kind()).isEqualTo(ErrorKind.TLS_PROTOCOL_ERROR);
    assertThat(f.details()).isEqualTo("api.partner.test did not answer with TLS");
  }

  @Test
  void validatorReasonCodesSpeakWithoutAnExceptionCause() {
    CertificateException expired = new CertificateException("PKIX path validation failed",
        new CertPathValidatorException("validity check failed", null, null, -1,
            CertPathValidatorException.BasicReason.EXPIRED));
    FailureClassifier.Classification c = FailureClassifier.classify(wrapped(expired), HOST);
    assertThat(c.kind()).isEqualTo(ErrorKind.TLS_CERTIFICATE_ERROR);
    assertThat(c.handshake()).isEqualTo(HandshakeResult.CERTIFICATE_ERROR);
    assertThat(c.details()).contains("the certificate has expired");

    CertificateException noAnchor = new CertificateException("PKIX path validation failed",
        new CertPathValidatorException("Path does not chain with any of the trust anchors", null,
            null, -1, PKIXReason.NO_TRUST_ANCHOR));
    assertThat(FailureClassifier.classify(wrapped(noAnchor), HOST).details())
        .contains("no chain to a trusted root");
  }

  @Test
  void decidesTheErrorKindAndTheHandshakeResultTogether() {
    record Case(Throwable failure, ErrorKind kind, HandshakeResult handshake) {}
    List<Case> cases = List.of(
        new Case(wrapped(handshake("pin", new Pins.PinMismatchException("no pin"))),
            ErrorKind.TLS_CERTIFICATE_ERROR, HandshakeResult.PIN_MISMATCH),
        new Case(wrapped(new CertificateExpiredException("NotAfter")),
            ErrorKind.TLS_CERTIFICATE_ERROR, HandshakeResult.CERTIFICATE_ERROR),
        // The server refused Egret's client certificate: a certificate problem on both counts.
        new Case(new DecoderException(new SSLHandshakeException(
            "Received fatal alert: certificate_required")),
            ErrorKind.TLS_CERTIFICATE_ERROR, HandshakeResult.CERTIFICATE_ERROR),
        new Case(wrapped(new SSLHandshakeException("Received fatal alert: protocol_version")),
            ErrorKind.TLS_PROTOCOL_ERROR, HandshakeResult.PROTOCOL_ERROR),
        new Case(new NotSslRecordException("not an SSL record"),
            ErrorKind.TLS_PROTOCOL_ERROR, HandshakeResult.PROTOCOL_ERROR),
        new Case(new SslHandshakeTimeoutException("handshake timed out after 500ms"),
            ErrorKind.TLS_PROTOCOL_ERROR, HandshakeResult.PROTOCOL_ERROR),
        new Case(new ConnectTimeoutException("connection timed out: /127.0.0.1:9"),
            ErrorKind.CONNECTION_TIMEOUT, null),
        new Case(new ConnectException("Connection refused"), ErrorKind.CONNECTION_REFUSED, null),
        new Case(new UnknownHostException("Failed to resolve 'nowhere.test'"),
            ErrorKind.DNS_ERROR, null),
        new Case(new DnsNameResolverTimeoutException(new InetSocketAddress("127.0.0.1", 53),
            new DefaultDnsQuestion("nowhere.test", DnsRecordType.A), "query timed out"),
            ErrorKind.DNS_ERROR, null),
        new Case(new ConnectionPoolTooBusyException("Connection pool reached max wait queue size"),
            ErrorKind.CONNECTION_LIMIT_REACHED, null),
        new Case(new TooLongHttpLineException("An HTTP line is larger than 8192 bytes."),
            ErrorKind.UPSTREAM_PROTOCOL_ERROR, null),
        new Case(new HttpClosedException("Connection was closed"),
            ErrorKind.DESTINATION_UNAVAILABLE, null),
        // The same words without the type are not trusted to mean the same thing.
        new Case(new RuntimeException("max wait queue size reached; invalid http; decoder"),
            ErrorKind.DESTINATION_UNAVAILABLE, null));
    for (Case c : cases) {
      FailureClassifier.Classification got = FailureClassifier.classify(c.failure(), HOST);
      assertThat(got.kind()).as(c.failure().toString()).isEqualTo(c.kind());
      assertThat(got.handshake()).as(c.failure().toString()).isEqualTo(c.handshake());
      assertThat(got.failure().getCause()).as("the raw cause is kept").isSameAs(c.failure());
    }
  }

  @Test
  void aFailureAStageAlreadyClassifiedKeepsItsKindAndGetsItsHandshakeResult() {
    ProxyFailure own = new ProxyFailure(ErrorKind.TLS_CERTIFICATE_ERROR, "pins",
        new Pins.PinMismatchException("no pin"));
    FailureClassifier.Classification c = FailureClassifier.classify(own, HOST);
    assertThat(c.failure()).isSameAs(own);
    assertThat(c.handshake()).isEqualTo(HandshakeResult.PIN_MISMATCH);
    assertThat(FailureClassifier.classify(new ProxyFailure(ErrorKind.DNS_ERROR, "x"), HOST)
        .handshake()).isNull();
  }

  @Test
  void aLoopingCauseChainEnds() {
    RuntimeException a = new RuntimeException("a");
    RuntimeException b = new RuntimeException("b", a);
    a.initCause(b);
    assertThat(FailureClassifier.classify(a, HOST).kind())
        .isEqualTo(ErrorKind.DESTINATION_UNAVAILABLE);
  }

  @Test
  void thePoolsOwnFailuresAreToldInTheConfigsWords() {
    FailureClassifier.PoolLimits limits = new FailureClassifier.PoolLimits(4, 16, 2000, 500);
    assertThat(FailureClassifier.classifyAcquire(new ConnectionPoolTooBusyException("busy"), HOST,
        limits).details()).contains("all 4 connections", "16 requests already wait",
        "limits.maxConnectionsPerDestination");
    FailureClassifier.Classification waited = FailureClassifier.classifyAcquire(
        new java.util.concurrent.TimeoutException("timeout"), HOST, limits);
    assertThat(waited.kind()).isEqualTo(ErrorKind.CONNECTION_LIMIT_REACHED);
    assertThat(waited.details()).contains("within 2000 ms");
    FailureClassifier.Classification slow = FailureClassifier.classifyAcquire(
        wrapped(new SslHandshakeTimeoutException("handshake timed out")), HOST, limits);
    assertThat(slow.kind()).isEqualTo(ErrorKind.TLS_PROTOCOL_ERROR);
    assertThat(slow.handshake()).isEqualTo(HandshakeResult.PROTOCOL_ERROR);
    assertThat(slow.details()).contains("within 500 ms (timeouts.handshake)");
  }
}
