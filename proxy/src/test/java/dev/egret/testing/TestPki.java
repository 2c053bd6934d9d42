package dev.egret.testing;

import java.math.BigInteger;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.regex.Pattern;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.CertIOException;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A certificate about to be issued, for tests. Start from a root, issue down the chain, and
 * change only what the test is about:
 *
 * <pre>
 * TestCert root = TestPki.rootCa("Test Root").issue();
 * TestCert inter = root.intermediate("Test Intermediate").issue();
 * TestCert leaf = inter.leaf("api.partner.test").key(KeyKind.EC_P256).issue();
 * TestCert old = root.leaf("old.partner.test").signature("SHA1withRSA").expired().issue();
 * </pre>
 *
 * <p>Each method returns a new spec; a spec can be issued many times. Defaults: an RSA-2048 key,
 * signed with SHA-256 by the issuer's key type, valid from an hour ago for 30 days (a CA for a
 * year); a CA has {@code basicConstraints CA:true} and {@code keyCertSign, cRLSign}; a leaf has
 * {@code CA:false}, {@code digitalSignature} (plus {@code keyEncipherment} for RSA, which static
 * RSA suites need), EKU {@code serverAuth}, and its name as SAN (DNS, or IP for an IP literal).
 *
 * <p>Keys are cached per (key kind, slot) for the whole test JVM, because RSA generation is slow.
 * The slot is the subject name unless {@link #keySlot} says otherwise: re-issuing a name reuses
 * its key (as a renewal that keeps the key would), while different names never share one, so a
 * pin on the root never accidentally matches the leaf.
 */
public final class TestPki {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Pattern IPV4 = Pattern.compile("\\d{1,3}(\\.\\d{1,3}){3}");

  private final TestCert issuer;
  private final String name;
  private final boolean ca;
  private final KeyKind key;
  private final String keySlot;
  private final String signature;
  private final Instant notBefore;
  private final Instant notAfter;
  private final List<String> dnsNames;
  private final List<String> ipAddresses;
  private final boolean forClients;
  /** A SPIFFE X509-SVID's ID: the only SAN (a URI, critical), with an empty subject. */
  private final String spiffeId;

  private TestPki(TestCert issuer, String name, boolean ca, KeyKind key, String keySlot,
      String signature, Instant notBefore, Instant notAfter, List<String> dnsNames,
      List<String> ipAddresses, boolean forClients) {
    this(issuer, name, ca, key, keySlot, signature, notBefore, notAfter, dnsNames, ipAddresses,
        forClients, null);
  }

  private TestPki(TestCert issuer, String name, boolean ca, KeyKind key, String keySlot,
      String signature, Instant notBefore, Instant notAfter, List<String> dnsNames,
      List<String> ipAddresses, boolean forClients, String spiffeId) {
    this.spiffeId = spiffeId;
    this.issuer = issuer;
    this.name = name;
    this.ca = ca;
    this.key = key;
    this.keySlot = keySlot;
    this.signature = signature;
    this.notBefore = notBefore;
    this.notAfter = notAfter;
    this.dnsNames = dnsNames;
    this.ipAddresses = ipAddresses;
    this.forClients = forClients;
  }

  /** A self-signed root CA named {@code CN=name}. */
  public static TestPki rootCa(String name) {
    return ca(null, name);
  }

  static TestPki ca(TestCert issuer, String name) {
    Instant now = Instant.now();
    return new TestPki(issuer, name, true, KeyKind.RSA_2048, name, null,
        now.minus(Duration.ofDays(1)), now.plus(Duration.ofDays(365)), List.of(), List.of(),
        false);
  }

  static TestPki leaf(TestCert issuer, String name) {
    Instant now = Instant.now();
    boolean ip = isIpLiteral(name);
    return new TestPki(issuer, name, false, KeyKind.RSA_2048, name, null,
        now.minus(Duration.ofHours(1)), now.plus(Duration.ofDays(30)),
        ip ? List.of() : List.of(name), ip ? List.of(unbracket(name)) : List.of(), false);
  }

  /** The kind of key this certificate carries (its own key, not the signer's). */
  public TestPki key(KeyKind kind) {
    return new TestPki(issuer, name, ca, kind, keySlot, signature, notBefore, notAfter, dnsNames,
        ipAddresses, forClients);
  }

  /** Certificates of the same key kind and slot share one key pair; the default is the name. */
  public TestPki keySlot(String slot) {
    return new TestPki(issuer, name, ca, key, slot, signature, notBefore, notAfter, dnsNames,
        ipAddresses, forClients);
  }

  /**
   * How the issuer signs this certificate, e.g. {@code SHA1withRSA}, {@code SHA256withRSA},
   * {@code SHA256withECDSA}. It must fit the <em>issuer's</em> key.
   */
  public TestPki signature(String algorithm) {
    return new TestPki(issuer, name, ca, key, keySlot, algorithm, notBefore, notAfter, dnsNames,
        ipAddresses, forClients);
  }

  public TestPki validity(Instant from, Instant until) {
    return new TestPki(issuer, name, ca, key, keySlot, signature, from, until, dnsNames,
        ipAddresses, forClients);
  }

  /** Valid from 30 days ago until yesterday. */
  public TestPki expired() {
    Instant now = Instant.now();
    return validity(now.minus(Duration.ofDays(30)), now.minus(Duration.ofDays(1)));
  }

  /** Valid from tomorrow for 30 days. */
  public TestPki notYetValid() {
    Instant now = Instant.now();
    return validity(now.plus(Duration.ofDays(1)), now.plus(Duration.ofDays(31)));
  }

  /** Replaces the DNS names in the SAN (none: {@code dns()}). */
  public TestPki dns(String... names) {
    return new TestPki(issuer, name, ca, key, keySlot, signature, notBefore, notAfter,
        List.of(names), ipAddresses, forClients);
  }

  /** Replaces the IP addresses in the SAN, written as literals ({@code 127.0.0.1}, {@code ::1}). */
  public TestPki ip(String... addresses) {
    List<String> literals = new ArrayList<>();
    for (String a : addresses) {
      literals.add(unbracket(a));
    }
    return new TestPki(issuer, name, ca, key, keySlot, signature, notBefore, notAfter, dnsNames,
        List.copyOf(literals), forClients);
  }

  /**
   * A client certificate for mTLS: EKU {@code clientAuth} instead of {@code serverAuth}, since a
   * JDK server refuses a client certificate whose extended key usage leaves client auth out.
   */
  public TestPki forClients() {
    return new TestPki(issuer, name, ca, key, keySlot, signature, notBefore, notAfter, dnsNames,
        ipAddresses, true);
  }

  /**
   * A SPIFFE X509-SVID for mTLS clients: an EMPTY subject, and the ID as the only subject
   * alternative name (a URI, marked critical as RFC 5280 asks when the subject is empty); EKU
   * clientAuth. Call it last: the other builder methods do not carry the ID over.
   */
  public TestPki svid(String id) {
    return new TestPki(issuer, name, ca, key, keySlot, signature, notBefore, notAfter, List.of(),
        List.of(), true, id);
  }

  /** Creates the key (or takes it from the cache) and signs the certificate. */
  public TestCert issue() {
    KeyPair keyPair = key.keyPair(keySlot);
    PrivateKey signerKey = issuer == null ? keyPair.getPrivate() : issuer.privateKey();
    X500Name subject = spiffeId != null ? new X500Name(new org.bouncycastle.asn1.x500.RDN[0])
        : distinguishedName(name);
    X500Name issuerName = issuer == null ? subject
        : X500Name.getInstance(issuer.certificate().getSubjectX500Principal().getEncoded());
    String algorithm = signature != null ? signature
        : issuer == null ? key.defaultSignature() : issuer.keyKind().defaultSignature();
    try {
      X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(issuerName,
          new BigInteger(63, RANDOM).add(BigInteger.ONE), Date.from(notBefore),
          Date.from(notAfter), subject, keyPair.getPublic());
      addExtensions(builder, keyPair);
      // BouncyCastle signs so that the BC-only keys can issue too; the result is parsed by the
      // JDK below, so tests only ever see the JDK's own X509Certificate.
      ContentSigner signer = new JcaContentSignerBuilder(algorithm)
          .setProvider(KeyKind.bouncyCastle()).build(signerKey);
      X509Certificate cert = new JcaX509CertificateConverter().getCertificate(builder.build(signer));
      return new TestCert(name, cert, keyPair, key, issuer);
    } catch (CertIOException | OperatorCreationException | CertificateException e) {
      throw new IllegalStateException("cannot issue a test certificate for " + name, e);
    }
  }

  private void addExtensions(X509v3CertificateBuilder builder, KeyPair keyPair)
      throws CertIOException {
    try {
      JcaX509ExtensionUtils utils = new JcaX509ExtensionUtils();
      builder.addExtension(Extension.subjectKeyIdentifier, false,
          utils.createSubjectKeyIdentifier(keyPair.getPublic()));
      builder.addExtension(Extension.authorityKeyIdentifier, false,
          utils.createAuthorityKeyIdentifier(
              issuer == null ? keyPair.getPublic() : issuer.certificate().getPublicKey()));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK always has SHA-1 for key identifiers", e);
    }
    builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(ca));
    if (ca) {
      builder.addExtension(Extension.keyUsage, true,
          new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign | KeyUsage.digitalSignature));
    } else {
      int usage = KeyUsage.digitalSignature;
      if (key.algorithm().equals("RSA")) {
        usage |= KeyUsage.keyEncipherment;
      }
      builder.addExtension(Extension.keyUsage, true, new KeyUsage(usage));
      builder.addExtension(Extension.extendedKeyUsage, false,
          new ExtendedKeyUsage(
              forClients ? KeyPurposeId.id_kp_clientAuth : KeyPurposeId.id_kp_serverAuth));
    }
    List<GeneralName> sans = new ArrayList<>();
    for (String dns : dnsNames) {
      sans.add(new GeneralName(GeneralName.dNSName, dns));
    }
    for (String ip : ipAddresses) {
      sans.add(new GeneralName(GeneralName.iPAddress, ip));
    }
    if (spiffeId != null) {
      sans.add(new GeneralName(GeneralName.uniformResourceIdentifier, spiffeId));
    }
    if (!sans.isEmpty()) {
      builder.addExtension(Extension.subjectAlternativeName, spiffeId != null,
          new GeneralNames(sans.toArray(GeneralName[]::new)));
    }
  }

  private static X500Name distinguishedName(String cn) {
    return new X500NameBuilder(BCStyle.INSTANCE)
        .addRDN(BCStyle.CN, cn)
        .addRDN(BCStyle.O, "Egret Tests")
        .build();
  }

  private static boolean isIpLiteral(String name) {
    return IPV4.matcher(name).matches() || name.contains(":");
  }

  /** Checks an IP literal (no lookup happens for literals) and drops IPv6 brackets. */
  private static String unbracket(String address) {
    String literal = address.startsWith("[") && address.endsWith("]")
        ? address.substring(1, address.length() - 1) : address;
    if (!IPV4.matcher(literal).matches() && !literal.contains(":")) {
      throw new IllegalArgumentException("'" + address + "' is not an IP literal");
    }
    try {
      return InetAddress.getByName(literal).getHostAddress();
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("'" + address + "' is not an IP literal", e);
    }
  }
}
