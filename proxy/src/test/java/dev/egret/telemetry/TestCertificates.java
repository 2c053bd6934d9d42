package dev.egret.telemetry;

import java.math.BigInteger;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Date;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/** Self-signed leaf certificates with a chosen notAfter, for the expiry gauge. */
final class TestCertificates {
  private TestCertificates() {}

  /** A certificate for {@code host} valid until {@code notAfter} (whole seconds, as X.509 keeps). */
  static X509Certificate leaf(String host, Instant notAfter) throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
    generator.initialize(256);
    KeyPair keys = generator.generateKeyPair();
    X500Name name = new X500Name("CN=" + host);
    Instant notBefore = notAfter.minus(90, ChronoUnit.DAYS);
    var builder = new JcaX509v3CertificateBuilder(name, BigInteger.valueOf(notAfter.getEpochSecond()),
        Date.from(notBefore), Date.from(notAfter), name, keys.getPublic());
    var signer = new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate());
    return new JcaX509CertificateConverter().getCertificate(builder.build(signer));
  }
}
