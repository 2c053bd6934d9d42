package dev.egret.failure;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.NotSslRecordException;
import java.security.cert.CertPathBuilderException;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
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
}
