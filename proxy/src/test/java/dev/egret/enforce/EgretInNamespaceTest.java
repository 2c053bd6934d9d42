package dev.egret.enforce;

import static dev.egret.testing.NetNamespace.UPSTREAM_IP;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.NetNamespace;
import dev.egret.testing.NetNamespace.Output;
import dev.egret.testing.NetNamespace.Spawned;
import dev.egret.testing.TestCert;
import dev.egret.testing.TestPki;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real Egret in the task namespace, as uid 10001 behind the rules `egret iptables` printed,
 * with an HTTPS upstream (test PKI) in the upstream namespace reached by a name from the
 * namespace's hosts file. An app (uid 1000) that uses the proxy is served; Egret's own upstream
 * connections are not redirected (or the upgrade would loop into its own listener); an app that
 * ignores the proxy gets nothing upstream that Egret did not handle and log; any other port is
 * rejected; and {@code egret explain} resolves the hosts-file name and judges its address.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EgretInNamespaceTest {
  private static final int APP = 1000;
  private static final int EGRET = 10001;
  private static final String HOST = "api.test.example";
  private static final Duration T = Duration.ofSeconds(30);

  @TempDir static Path dir;
  private NetNamespace net;
  private Spawned upstream;
  private Spawned egret;
  private String classPath;
  private Path rootPem;
  private Path config;

  @BeforeAll
  void setUp() throws Exception {
    net = NetNamespace.create();
    Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/sbin/iptables-restore"))
        && Files.isExecutable(Path.of("/usr/bin/curl")) && Files.isExecutable(Path.of("/usr/bin/python3")),
        "iptables-restore, curl or /usr/bin/python3 is missing (.ci/run installs them)");
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    net.names(UPSTREAM_IP + " " + HOST, UPSTREAM_IP);
    classPath = readableClassPath();

    TestCert root = TestPki.rootCa("Namespace Test Root").issue();
    TestCert leaf = root.leaf(HOST).issue();
    rootPem = root.writePem(dir).cert();
    TestCert.PemFiles leafPem = leaf.writePem(dir);
    for (Path p : List.of(rootPem, leafPem.cert(), leafPem.key())) {
      Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rw-r--r--"));
    }
    upstream = net.upstream().start(List.of("/usr/bin/python3", resource("netns/https_server.py"),
        UPSTREAM_IP, "443", leafPem.cert().toString(), leafPem.key().toString(), "upstream-tls"));
    upstream.await("ready"::equals, T);
    net.upstream().start(List.of("/usr/bin/python3", resource("netns/https_server.py"),
        UPSTREAM_IP, "8443", leafPem.cert().toString(), leafPem.key().toString(), "upstream-8443"))
        .await("ready"::equals, T);

    config = readable(Files.writeString(dir.resolve("egret.yaml"), """
        version: 1
        listen:
          proxy: 127.0.0.1:3128
          admin: 127.0.0.1:9901
          transparent:
            - {address: 127.0.0.1:3129, port: 443, protocol: tls}
            - {address: 127.0.0.1:3130, port: 80, protocol: http}
        tls: {trust: [%s]}
        addresses: {allow: [%s/32]}
        allow:
          - host: %s
            ports: [443, 8443]
        """.formatted(rootPem, UPSTREAM_IP, HOST)));

    Output rules = net.task().run(Duration.ofSeconds(60), java("iptables", "--config", config.toString()));
    assertThat(rules.code()).as(rules.text()).isZero();
    Output applied = net.task().run(T, rules.text(), List.of("iptables-restore"));
    assertThat(applied.code()).as(applied.text()).isZero();

    egret = net.task().startAs(EGRET, java("run", "--config", config.toString()));
    egret.await(l -> l.startsWith("egret: proxy on"), Duration.ofSeconds(60));
  }

  @AfterAll
  void tearDown() {
    if (net != null) {
      net.close();
    }
  }

  private List<String> java(String... args) {
    List<String> c = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Xmx128m", "-cp", classPath, "dev.egret.cli.Egret"));
    c.addAll(List.of(args));
    return c;
  }

  /** curl as the app, with no proxy variables but the ones given. */
  private Output curl(String... args) throws Exception {
    List<String> c = new ArrayList<>(List.of("env", "-i", "PATH=/usr/bin:/bin", "curl", "-sS",
        "--max-time", "10", "--cacert", rootPem.toString(), "-w", "\\n%{http_code}"));
    c.addAll(List.of(args));
    return net.task().runAs(APP, T, c);
  }

  private long upstreamSaw(String path) {
    return upstream.lines().stream().filter(l -> l.equals("request " + path)).count();
  }

  @Test
  void anAppUsingTheProxyIsUpgradedByEgretWhoseOwnConnectionIsNotRedirected() throws Exception {
    Output o = curl("-x", "http://127.0.0.1:3128", "http://" + HOST + "/via-proxy");
    assertThat(o.text()).as(o.text()).endsWith("\n200").contains("upstream-tls /via-proxy");
    upstream.await("request /via-proxy"::equals, T);
    egret.await(l -> l.contains("\"kind\":\"upgrade\"") && l.contains(HOST), T);
  }

  @Test
  void anAppUsingTheProxyTunnelsHttps() throws Exception {
    Output o = curl("-x", "http://127.0.0.1:3128", "https://" + HOST + "/via-tunnel");
    assertThat(o.text()).as(o.text()).endsWith("\n200").contains("upstream-tls /via-tunnel");
  }

  @Test
  void anAppIgnoringTheProxyGetsNothingUpstreamThatEgretDidNotHandle() throws Exception {
    int before = egret.lines().size();
    Output o = curl("https://" + HOST + "/direct");
    if (o.text().endsWith("\n200")) {
      // Once the transparent listeners are in: served, but through Egret, which logged it.
      // The access-log line is written just after the answer: await it.
      egret.await(l -> l.contains(HOST) && l.contains("\"origin\":\"transparent\""), T);
    } else {
      // Until then nothing listens on 3129: refused in the namespace, never sent upstream.
      assertThat(o.text()).contains("Failed to connect");
      assertThat(upstreamSaw("/direct")).isZero();
    }
  }

  @Test
  void anAppCannotReachAnyOtherPort() throws Exception {
    Output o = curl("https://" + HOST + ":8443/other-port");
    assertThat(o.text()).contains("Failed to connect").endsWith("\n000");
    // Egret may: the same port through the proxy works, so the refusal above was the rules.
    Output viaEgret = curl("-x", "http://127.0.0.1:3128", "https://" + HOST + ":8443/via-proxy-8443");
    assertThat(viaEgret.text()).as(viaEgret.text()).endsWith("\n200").contains("upstream-8443");
  }

  @Test
  void explainResolvesTheHostsFileNameAndJudgesItsAddress() throws Exception {
    Output allowed = net.task().run(Duration.ofSeconds(60), java("explain", "--config", config.toString(),
        "https://" + HOST + "/"));
    assertThat(allowed.text()).contains("address:  " + UPSTREAM_IP + " allowed");
    Path strict = readable(Files.writeString(dir.resolve("strict.yaml"),
        "version: 1\nallow:\n  - host: " + HOST + "\n"));
    Output refused = net.task().run(Duration.ofSeconds(60), java("explain", "--config", strict.toString(),
        "http://" + HOST + "/"));
    assertThat(refused.text()).contains("address:  " + UPSTREAM_IP
        + " refused: in denied range 198.18.0.0/15 (destination_ip_prohibited)");
  }

  private static Path readable(Path p) throws Exception {
    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rw-r--r--"));
    return p;
  }

  private static String resource(String name) throws Exception {
    return Path.of(EgretInNamespaceTest.class.getClassLoader().getResource(name).toURI()).toString();
  }

  /**
   * This JVM's class path, with jars from places uid 10001 cannot read (the Maven repository
   * under /root) copied into the test's folder.
   */
  private static String readableClassPath() throws Exception {
    String cp = System.getProperty("surefire.test.class.path");
    if (cp == null || cp.isBlank()) {
      cp = System.getProperty("java.class.path");
    }
    Path lib = Files.createDirectories(dir.resolve("lib"));
    Files.setPosixFilePermissions(lib, PosixFilePermissions.fromString("rwxr-xr-x"));
    List<String> out = new ArrayList<>();
    int i = 0;
    for (String entry : cp.split(File.pathSeparator)) {
      Path p = Path.of(entry);
      if (Files.isRegularFile(p) && p.toAbsolutePath().startsWith("/root")) {
        Path copy = lib.resolve((i++) + "-" + p.getFileName());
        Files.copy(p, copy, StandardCopyOption.REPLACE_EXISTING);
        readable(copy);
        out.add(copy.toString());
      } else {
        out.add(entry);
      }
    }
    return String.join(File.pathSeparator, out);
  }
}
