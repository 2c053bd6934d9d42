package dev.egret.tunnel;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Arrays;
import java.util.Date;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * Hellos for the inspector tests: real ones from the JDK's SSLEngine, and hand-built ones laid
 * out field by field so a test can break exactly one field.
 */
final class HelloBytes {
  static final int HANDSHAKE = 22;
  static final int ALERT = 21;
  static final int CLIENT_HELLO = 1;
  static final int SERVER_HELLO = 2;

  private HelloBytes() {}

  // ---- real hellos from the JDK ----

  /** The JDK client's first flight (its ClientHello record) for an engine made with host. */
  static byte[] jdkClientHello(String host, String... protocols) throws Exception {
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(null, null, null);
    SSLEngine engine =
        host == null ? context.createSSLEngine() : context.createSSLEngine(host, 443);
    engine.setUseClientMode(true);
    if (protocols.length > 0) {
      engine.setEnabledProtocols(protocols);
    }
    return wrapOnce(engine);
  }

  /** As {@link #jdkClientHello} for an engine with no host and an explicit SNI. */
  static byte[] jdkClientHelloWithSni(String sni) throws Exception {
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(null, null, null);
    SSLEngine engine = context.createSSLEngine();
    engine.setUseClientMode(true);
    SSLParameters parameters = engine.getSSLParameters();
    parameters.setServerNames(List.of(new SNIHostName(sni)));
    engine.setSSLParameters(parameters);
    return wrapOnce(engine);
  }

  private static byte[] wrapOnce(SSLEngine engine) throws SSLException {
    ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
    engine.wrap(ByteBuffer.allocate(0), out);
    out.flip();
    byte[] bytes = new byte[out.remaining()];
    out.get(bytes);
    return bytes;
  }

  /**
   * Runs a JDK client against a JDK server in memory until the server has answered the
   * ClientHello, and returns every byte the server sent in that first flight (a ServerHello and
   * what follows it, or an alert).
   */
  static byte[] jdkServerFirstFlight(String[] clientProtocols, String[] serverProtocols)
      throws Exception {
    SSLContext clientContext = SSLContext.getInstance("TLS");
    clientContext.init(null, null, null);
    SSLEngine client = clientContext.createSSLEngine("localhost", 443);
    client.setUseClientMode(true);
    client.setEnabledProtocols(clientProtocols);

    SSLEngine server = serverContext().createSSLEngine();
    server.setUseClientMode(false);
    server.setEnabledProtocols(serverProtocols);

    ByteBuffer clientHello = ByteBuffer.wrap(wrapOnce(client));
    ByteBuffer sink = ByteBuffer.allocate(server.getSession().getApplicationBufferSize());
    try {
      server.unwrap(clientHello, sink);
      runTasks(server);
    } catch (SSLException refused) {
      // The server refused the hello; its alert is still queued for wrap() below.
    }
    ByteArrayOutputStream flight = new ByteArrayOutputStream();
    ByteBuffer out = ByteBuffer.allocate(server.getSession().getPacketBufferSize());
    for (int round = 0; round < 16; round++) {
      out.clear();
      try {
        server.wrap(ByteBuffer.allocate(0), out);
      } catch (SSLException refused) {
        // A failed handshake task surfaces here first; the alert comes from the next wrap.
        continue;
      }
      out.flip();
      flight.write(out.array(), 0, out.limit());
      runTasks(server);
      if (server.getHandshakeStatus() != HandshakeStatus.NEED_WRAP) {
        break;
      }
    }
    return flight.toByteArray();
  }

  private static void runTasks(SSLEngine engine) {
    Runnable task;
    while ((task = engine.getDelegatedTask()) != null) {
      task.run();
    }
  }

  private static SSLContext serverContext() throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
    generator.initialize(2048);
    KeyPair pair = generator.generateKeyPair();
    X500Name name = new X500Name("CN=localhost");
    Instant now = Instant.now();
    X509Certificate certificate = new JcaX509CertificateConverter().getCertificate(
        new JcaX509v3CertificateBuilder(name, BigInteger.ONE,
            Date.from(now.minus(1, ChronoUnit.DAYS)), Date.from(now.plus(1, ChronoUnit.DAYS)),
            name, pair.getPublic())
            .build(new JcaContentSignerBuilder("SHA256withRSA").build(pair.getPrivate())));
    KeyStore store = KeyStore.getInstance("PKCS12");
    store.load(null, null);
    char[] password = "test".toCharArray();
    store.setKeyEntry("server", pair.getPrivate(), password, new X509Certificate[] {certificate});
    KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    keys.init(store, password);
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(keys.getKeyManagers(), null, null);
    return context;
  }

  // ---- taking records apart and putting them back together ----

  /** The concatenated payloads of the handshake records at the start of a flight. */
  static byte[] handshakePayload(byte[] flight) {
    ByteArrayOutputStream payload = new ByteArrayOutputStream();
    int at = 0;
    while (at + 5 <= flight.length && flight[at] == HANDSHAKE) {
      int length = ((flight[at + 3] & 0xff) << 8) | (flight[at + 4] & 0xff);
      payload.write(flight, at + 5, length);
      at += 5 + length;
    }
    return payload.toByteArray();
  }

  /** The payload cut at the given offsets, each piece in its own record. */
  static byte[] records(int type, int version, byte[] payload, int... cuts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int from = 0;
    for (int cut : cuts) {
      out.writeBytes(record(type, version, Arrays.copyOfRange(payload, from, cut)));
      from = cut;
    }
    out.writeBytes(record(type, version, Arrays.copyOfRange(payload, from, payload.length)));
    return out.toByteArray();
  }

  /** The payload in records of at most size bytes each. */
  static byte[] fragmented(int type, int version, byte[] payload, int size) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int from = 0; from < payload.length; from += size) {
      out.writeBytes(record(type, version,
          Arrays.copyOfRange(payload, from, Math.min(payload.length, from + size))));
    }
    return out.toByteArray();
  }

  // ---- hand-built messages: TLSPlaintext, Handshake, hellos, extensions ----

  /** TLSPlaintext: type(1) version(2) length(2) fragment. */
  static byte[] record(int type, int version, byte[] fragment) {
    return concat(bytes(type), u16(version), u16(fragment.length), fragment);
  }

  /** Handshake: msg_type(1) length(3) body. */
  static byte[] handshake(int type, byte[] body) {
    return concat(bytes(type, body.length >>> 16, body.length >>> 8, body.length), body);
  }

  /** A whole ClientHello record (version 0x0301 on the record, as clients send). */
  static byte[] clientHelloRecord(byte[]... extensions) {
    return record(HANDSHAKE, 0x0301, handshake(CLIENT_HELLO, clientHelloBody(extensions)));
  }

  /**
   * ClientHello body: legacy_version(2)=0x0303, random(32), session_id<0..32> (empty),
   * cipher_suites<2..> (one suite 0x1301), compression_methods<1..> (null), extensions<..>.
   */
  static byte[] clientHelloBody(byte[]... extensions) {
    byte[] all = concat(extensions);
    return concat(u16(0x0303), new byte[32], bytes(0), u16(2), u16(0x1301), bytes(1, 0),
        u16(all.length), all);
  }

  /**
   * ServerHello body: server_version(2), random(32), session_id_echo<0..32> (empty),
   * cipher_suite(2), compression_method(1)=0, then extensions<..> only if any are given.
   */
  static byte[] serverHelloBody(int version, byte[] random, int suite, byte[]... extensions) {
    byte[] head = concat(u16(version), random, bytes(0), u16(suite), bytes(0));
    if (extensions.length == 0) {
      return head;
    }
    byte[] all = concat(extensions);
    return concat(head, u16(all.length), all);
  }

  /** Extension: extension_type(2) extension_data<0..2^16-1>. */
  static byte[] extension(int type, byte[] data) {
    return concat(u16(type), u16(data.length), data);
  }

  /** server_name extension data: ServerNameList<1..> of name_type(1) HostName<1..>. */
  static byte[] serverName(String... hosts) {
    ByteArrayOutputStream list = new ByteArrayOutputStream();
    for (String host : hosts) {
      byte[] name = host.getBytes(StandardCharsets.ISO_8859_1);
      list.writeBytes(concat(bytes(0), u16(name.length), name));
    }
    byte[] entries = list.toByteArray();
    return extension(0, concat(u16(entries.length), entries));
  }

  /** supported_versions as a client sends it: versions<2..254>. */
  static byte[] clientSupportedVersions(int... versions) {
    ByteArrayOutputStream list = new ByteArrayOutputStream();
    for (int v : versions) {
      list.writeBytes(u16(v));
    }
    return extension(43, concat(bytes(versions.length * 2), list.toByteArray()));
  }

  static byte[] u16(int v) {
    return bytes(v >>> 8, v);
  }

  static byte[] bytes(int... values) {
    byte[] out = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = (byte) values[i];
    }
    return out;
  }

  static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] part : parts) {
      out.writeBytes(part);
    }
    return out.toByteArray();
  }
}
