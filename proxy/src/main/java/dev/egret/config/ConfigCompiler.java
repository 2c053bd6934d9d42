package dev.egret.config;

import dev.egret.address.AddressPolicy;
import dev.egret.address.Cidr;
import dev.egret.identity.Clients;
import dev.egret.policy.Allowlist;
import dev.egret.policy.HeaderRules;
import dev.egret.policy.HostPattern;
import dev.egret.policy.Mode;
import dev.egret.policy.PathPattern;
import dev.egret.policy.Plaintext;
import dev.egret.policy.Rule;
import dev.egret.tls.Pem;
import dev.egret.tls.Pins;
import dev.egret.tls.ProxyTlsContext;
import dev.egret.tls.StrictTrustManager;
import dev.egret.tls.TlsBaseline;
import dev.egret.tls.TlsProfile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import javax.net.ssl.X509KeyManager;

/**
 * Turns a config file into an {@link EgretConfig}, or a {@link ConfigException} listing every
 * problem as {@code FILE:LINE:COLUMN: message}. Nothing is defaulted silently: unknown keys,
 * wrong types, TLS below 1.2, malformed pins or CIDRs and unreadable PEM files are all errors.
 *
 * <p>Blocking: reads the file, PEM files and the JDK's CA set. Run it on a worker thread
 * ({@code executeBlocking}) or before the event loops start.
 */
public final class ConfigCompiler {
  private static final Set<String> TOP = keys("version", "listen", "mode", "plaintext", "tls",
      "addresses", "timeouts", "shutdown", "allow", "limits", "deny", "tracing", "identity",
      "clients", "upstreamProxies", "routing");
  private static final Set<String> RULE = keys("host", "ports", "methods", "paths", "pins",
      "plaintext", "trust", "clientCert", "allowAddresses", "upgradePort", "ech", "headers",
      "tunnel", "upstreamProxy");

  private ConfigCompiler() {}

  private static Set<String> keys(String... k) {
    return new LinkedHashSet<>(List.of(k));
  }

  /**
   * Reads and compiles a config file: a regular file of at most 4 MiB, and every file it names a
   * regular file of at most 1 MiB. A failure's {@link ConfigException#inputs()} are the files the
   * attempt read, so a reload can wait for one of them to change before trying again.
   */
  public static EgretConfig load(Path file) throws ConfigException {
    ConfigFiles.Read read;
    try {
      read = ConfigFiles.read(file, ConfigFiles.MAX_CONFIG_BYTES);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(List.of(new ConfigError(file.toString(), 1, 1,
          "cannot read the config file: " + e.getMessage())),
          List.of(new ConfigFiles.Input(file, ConfigFiles.MAX_CONFIG_BYTES,
              ConfigFiles.stamp(file), null, e.getMessage())));
    }
    return compile(read, System::getenv);
  }

  /** Compiles config bytes; relative paths resolve against {@code file}'s folder. */
  public static EgretConfig compile(Path file, byte[] bytes) throws ConfigException {
    return compile(file, bytes, System::getenv);
  }

  /** {@link #compile(Path, byte[])} with {@code ${env:NAME}} read from {@code env}. */
  static EgretConfig compile(Path file, byte[] bytes,
      java.util.function.Function<String, String> env) throws ConfigException {
    return compile(new ConfigFiles.Read(file, ConfigFiles.stamp(file), bytes,
        ConfigFiles.sha256(bytes)), env);
  }

  private static EgretConfig compile(ConfigFiles.Read read,
      java.util.function.Function<String, String> env) throws ConfigException {
    Path file = read.path();
    List<ConfigFiles.Input> inputs = new ArrayList<>();
    inputs.add(new ConfigFiles.Input(file, ConfigFiles.MAX_CONFIG_BYTES, read.stamp(),
        read.sha256(), null));
    ConfigErrors errors = new ConfigErrors(file.toString());
    YamlNode root = YamlReader.read(new String(read.bytes(), StandardCharsets.UTF_8), errors);
    if (root == null) {
      throw new ConfigException(errors.sorted(), inputs);
    }
    Path base = file.toAbsolutePath().getParent();
    EgretConfig config = new Compilation(errors, base, inputs, env)
        .config(root, file, read.sha256());
    if (!errors.isEmpty()) {
      throw new ConfigException(errors.sorted(), inputs);
    }
    return config;
  }

  /** Hex SHA-256 of the config bytes, as exported by {@code egret_config_info}. */
  public static String sha256(byte[] bytes) {
    return ConfigFiles.sha256(bytes);
  }

  /** One compilation: the error list and the folder relative paths resolve against. */
  private static final class Compilation {
    private final ConfigErrors errors;
    private final Path base;
    /** Every file read (or tried), the config first: what the compiled config is watched by. */
    private final List<ConfigFiles.Input> inputs;
    /** {@code timeouts.handshake}, read before any TLS profile is built. */
    private Duration handshakeTimeout;
    private final InjectedHeaders headers;
    /** {@code upstreamProxies:}, read before the rules that name them. */
    private UpstreamProxies proxies;

    Compilation(ConfigErrors errors, Path base, List<ConfigFiles.Input> inputs,
        java.util.function.Function<String, String> env) {
      this.errors = errors;
      this.base = base;
      this.inputs = inputs;
      this.headers = new InjectedHeaders(errors, base, env, this::readNamed);
    }

    /**
     * Reads a file the config names (relative to the config's folder): a regular file of at most
     * 1 MiB, recorded so a change to it reloads the config. Every file a config names is read
     * here ({@code ${file:}} values too), never with {@code Files} directly.
     *
     * @throws IllegalArgumentException naming the file and the problem
     */
    byte[] readNamed(String written) {
      Path path = base.resolve(written);
      try {
        ConfigFiles.Read r = ConfigFiles.read(path, ConfigFiles.MAX_FILE_BYTES);
        inputs.add(new ConfigFiles.Input(path, ConfigFiles.MAX_FILE_BYTES, r.stamp(), r.sha256(),
            null));
        return r.bytes();
      } catch (IllegalArgumentException e) {
        inputs.add(new ConfigFiles.Input(path, ConfigFiles.MAX_FILE_BYTES,
            ConfigFiles.stamp(path), null, e.getMessage()));
        throw e;
      }
    }

    EgretConfig config(YamlNode root, Path file, String sha) {
      Fields top = Fields.of(root, Fields.TOP, TOP, errors);
      if (top == null) {
        return null;
      }
      YamlNode version = top.get("version");
      if (version == null) {
        errors.add(root, "the config needs 'version: 1' as its first line");
      } else {
        top.integer("version", 1, 1, null);
      }
      Mode mode = Mode.valueOf(top.choice("mode", List.of("enforce", "report"), "enforce")
          .toUpperCase(Locale.ROOT));
      Plaintext plaintext = plaintext(top, Plaintext.UPGRADE);

      Fields tls = sub(top, "tls", keys("minVersion", "trust"));
      TlsBaseline baseline = TlsBaseline.forMinVersion("TLSv1.2");
      List<X509Certificate> extraRoots = List.of();
      boolean systemTrust = true;
      if (tls != null) {
        YamlNode min = tls.get("minVersion");
        if (min != null) {
          String v = tls.string(min, "tls.minVersion");
          if (v != null) {
            try {
              baseline = TlsBaseline.forMinVersion(v);
            } catch (IllegalArgumentException e) {
              errors.add(min, "tls.minVersion: " + e.getMessage()
                  + "; Egret never speaks TLS below 1.2 upstream");
            }
          }
        }
        Trust trust = trust(tls, "trust");
        if (trust != null) {
          systemTrust = trust.system;
          extraRoots = trust.roots;
        }
      }
      EgretConfig.Timeouts timeouts = timeouts(sub(top, "timeouts",
          keys("connect", "handshake", "response", "idle", "requestHead")));
      handshakeTimeout = timeouts.handshake();
      // After the timeouts: listen.proxyTls takes timeouts.handshake.
      EgretConfig.Listen listen = listen(top.get("listen"));
      TlsProfile defaultTls = profile("tls", systemTrust, extraRoots, Pins.NONE, null, baseline);

      TlsBaseline proxyBaseline = baseline;
      proxies = new UpstreamProxies(errors, headers, (f, where) -> {
        Trust t = trust(f, "trust");
        return profile(where, t == null || t.system, t == null ? List.of() : t.roots, Pins.NONE,
            null, proxyBaseline);
      });
      proxies.compile(top.get("upstreamProxies"));
      dev.egret.policy.Routing routing = proxies.routing(top.get("routing"));

      AddressPolicy addresses = addresses(sub(top, "addresses", keys("deny", "allow")));
      EgretConfig.Limits limits = limits(sub(top, "limits",
          keys("maxConnections", "maxConnectionsPerDestination", "maxHeaderBytes",
              "maxAdminConnections")));
      EgretConfig.Shutdown shutdown = shutdown(sub(top, "shutdown", keys("grace", "deadline")));
      EgretConfig.Tracing tracing = tracing(sub(top, "tracing",
          keys("exporter", "endpoint", "sampleRatio", "propagate", "xray")));

      List<HostPattern> deny = new ArrayList<>();
      List<YamlNode> denyItems = top.list("deny");
      if (denyItems != null) {
        for (int i = 0; i < denyItems.size(); i++) {
          Fields d = Fields.of(denyItems.get(i), "deny[" + i + "]", keys("host"), errors);
          String host = d == null ? null : d.requiredString("host");
          if (host != null) {
            try {
              deny.add(HostPattern.compile(host));
            } catch (IllegalArgumentException e) {
              errors.add(d.get("host"), "deny[" + i + "].host: " + e.getMessage());
            }
          }
        }
      }

      List<Rule> rules = new ArrayList<>();
      List<YamlNode> allowItems = top.list("allow");
      if (allowItems == null && top.get("allow") == null && top.get("clients") == null) {
        errors.add(root, "the config has no 'allow:' list, so Egret would deny everything; "
            + "add at least one rule such as '- host: api.example.com'");
      } else if (allowItems != null) {
        for (int i = 0; i < allowItems.size(); i++) {
          Rule r = rule(allowItems.get(i), "allow[" + i + "]", plaintext, defaultTls, baseline,
              systemTrust, extraRoots);
          if (r != null) {
            rules.add(r);
          }
        }
      }
      Plaintext topPlaintext = plaintext;
      TlsBaseline topBaseline = baseline;
      boolean topSystemTrust = systemTrust;
      List<X509Certificate> topRoots = extraRoots;
      Clients clients = GatewayClients.compile(top, deny, rules, mode, routing,
          (node, where) -> rule(node, where, topPlaintext, defaultTls, topBaseline, topSystemTrust,
              topRoots), headers);
      return new EgretConfig(file, sha, listen, new Allowlist(deny, rules, mode, routing, null),
          addresses, baseline, defaultTls, timeouts, limits, shutdown, tracing,
          List.copyOf(inputs), clients);
    }

    private Fields sub(Fields parent, String key, Set<String> known) {
      YamlNode n = parent.get(key);
      return n == null ? null : Fields.of(n, key, known, errors);
    }

    private Plaintext plaintext(Fields f, Plaintext fallback) {
      String p = f.choice("plaintext", List.of("upgrade", "block"), null);
      return p == null ? fallback : Plaintext.valueOf(p.toUpperCase(Locale.ROOT));
    }

    private EgretConfig.Listen listen(YamlNode node) {
      EgretConfig.HostPort proxy = new EgretConfig.HostPort("127.0.0.1", 3128);
      EgretConfig.HostPort admin = new EgretConfig.HostPort("127.0.0.1", 9901);
      if (node != null) {
        Fields f = Fields.of(node, "listen", keys("proxy", "admin", "transparent", "proxyTls",
            "proxyProtocol"), errors);
        if (f != null) {
          proxy = hostPort(f, "proxy", proxy);
          admin = hostPort(f, "admin", admin);
          return new EgretConfig.Listen(proxy, admin, Transparents.compile(f, proxy, admin, errors),
              proxyTls(sub(f, "proxyTls", keys("cert", "key", "clientCa", "clientAuth"))),
              proxyProtocol(f));
        }
      }
      return new EgretConfig.Listen(proxy, admin);
    }

    /** {@code listen.proxyProtocol}; null when absent. */
    private EgretConfig.ProxyProtocol proxyProtocol(Fields listen) {
      YamlNode n = listen.get("proxyProtocol");
      Fields f = n == null ? null
          : Fields.of(n, listen.path("proxyProtocol"), keys("trustedPeers"), errors);
      if (f == null) {
        return null;
      }
      if (f.get("trustedPeers") == null) {
        errors.add(f.node(), "listen.proxyProtocol needs 'trustedPeers', the CIDRs of the load "
            + "balancers that send the PROXY header, such as [10.0.0.0/16]");
        return null;
      }
      List<Cidr> peers = f.stringList("trustedPeers", Cidr::parse);
      if (peers == null) {
        return null;
      }
      if (peers.isEmpty() && f.list("trustedPeers").isEmpty()) {
        errors.add(f.get("trustedPeers"), "listen.proxyProtocol.trustedPeers is empty, so every "
            + "connection would be closed; list the load balancers' CIDRs, such as [10.0.0.0/16], "
            + "or remove listen.proxyProtocol");
        return null;
      }
      return new EgretConfig.ProxyProtocol(peers);
    }

    /** {@code listen.proxyTls}: the proxy port as an HTTPS proxy; null when absent or wrong. */
    private EgretConfig.ProxyTls proxyTls(Fields f) {
      if (f == null) {
        return null;
      }
      String cert = f.requiredString("cert");
      String key = f.requiredString("key");
      X509KeyManager keyManager = null;
      if (cert != null && key != null) {
        try {
          keyManager = Pem.keyManager(cert, readNamed(cert), key, readNamed(key));
        } catch (IllegalArgumentException e) {
          errors.add(f.node(), "listen.proxyTls: " + e.getMessage()
              + " (relative paths resolve against the config file's folder)");
        }
      }
      List<X509Certificate> clientCa = new ArrayList<>();
      List<YamlNode> caItems = f.list("clientCa");
      if (caItems != null) {
        for (int i = 0; i < caItems.size(); i++) {
          String s = f.string(caItems.get(i), "listen.proxyTls.clientCa[" + i + "]");
          if (s == null) {
            continue;
          }
          try {
            clientCa.addAll(Pem.certificates(s, readNamed(s)));
          } catch (IllegalArgumentException e) {
            errors.add(caItems.get(i), "listen.proxyTls.clientCa[" + i + "]: " + e.getMessage()
                + " (relative paths resolve against the config file's folder)");
          }
        }
      }
      String auth = f.choice("clientAuth", List.of("none", "optional", "required"),
          clientCa.isEmpty() && caItems == null ? "none" : "optional");
      EgretConfig.ClientAuth clientAuth =
          EgretConfig.ClientAuth.valueOf(auth.toUpperCase(Locale.ROOT));
      if (clientAuth != EgretConfig.ClientAuth.NONE && caItems == null) {
        errors.add(f.get("clientAuth"), "listen.proxyTls.clientAuth is " + auth + " but no "
            + "clientCa is listed to verify client certificates against; add clientCa: [FILE]");
      }
      if (caItems != null && caItems.isEmpty()) {
        errors.add(f.get("clientCa"), "listen.proxyTls.clientCa is empty; list the PEM files of "
            + "the CAs that issue client certificates, or leave it out with clientAuth: none");
      }
      if (keyManager == null) {
        return null;
      }
      try {
        return new EgretConfig.ProxyTls(ProxyTlsContext.server(keyManager, clientCa,
            clientAuth != EgretConfig.ClientAuth.NONE && !clientCa.isEmpty()), clientAuth,
            handshakeTimeout);
      } catch (IllegalArgumentException e) {
        errors.add(f.node(), "listen.proxyTls: " + e.getMessage());
        return null;
      }
    }

    private EgretConfig.HostPort hostPort(Fields f, String key, EgretConfig.HostPort fallback) {
      YamlNode n = f.get(key);
      if (n == null) {
        return fallback;
      }
      EgretConfig.HostPort hp = Transparents.hostPort(n, f.string(n, "listen." + key), "listen." + key,
          errors);
      return hp == null ? fallback : hp;
    }

    private record Trust(boolean system, List<X509Certificate> roots) {}

    /** A trust list: "system" and/or PEM files. Returns null when absent. */
    private Trust trust(Fields f, String key) {
      List<YamlNode> items = f.list(key);
      if (items == null) {
        return null;
      }
      boolean system = false;
      List<X509Certificate> roots = new ArrayList<>();
      for (int i = 0; i < items.size(); i++) {
        YamlNode item = items.get(i);
        String s = f.string(item, f.path(key) + "[" + i + "]");
        if (s == null) {
          continue;
        }
        if (s.equals("system")) {
          system = true;
          continue;
        }
        try {
          roots.addAll(Pem.certificates(s, readNamed(s)));
        } catch (IllegalArgumentException e) {
          errors.add(item, f.path(key) + "[" + i + "]: " + e.getMessage()
              + " (relative paths resolve against the config file's folder)");
        }
      }
      if (items.isEmpty()) {
        errors.add(f.node(), f.path(key) + " is empty, so nothing would be trusted; "
            + "use [system] and/or PEM files");
      }
      return new Trust(system, roots);
    }

    private AddressPolicy addresses(Fields f) {
      List<Cidr> deny = AddressPolicy.defaultDeny();
      List<Cidr> allow = List.of();
      if (f != null) {
        List<YamlNode> denyItems = f.list("deny");
        if (denyItems != null) {
          deny = new ArrayList<>();
          for (int i = 0; i < denyItems.size(); i++) {
            String s = f.string(denyItems.get(i), "addresses.deny[" + i + "]");
            if (s == null) {
              continue;
            }
            if (s.equals("default")) {
              deny.addAll(AddressPolicy.defaultDeny());
            } else {
              try {
                deny.add(Cidr.parse(s));
              } catch (IllegalArgumentException e) {
                errors.add(denyItems.get(i), "addresses.deny[" + i + "]: " + e.getMessage());
              }
            }
          }
        }
        List<Cidr> a = f.stringList("allow", Cidr::parse);
        if (a != null) {
          allow = a;
        }
      }
      return new AddressPolicy(deny, allow);
    }

    private EgretConfig.Timeouts timeouts(Fields f) {
      Duration connect = Duration.ofSeconds(5);
      Duration handshake = Duration.ofSeconds(5);
      Duration response = Duration.ofSeconds(30);
      Duration idle = Duration.ofSeconds(60);
      Duration requestHead = Duration.ofSeconds(10);
      if (f != null) {
        connect = f.duration("connect", connect);
        handshake = f.duration("handshake", handshake);
        response = f.duration("response", response);
        idle = f.duration("idle", idle);
        requestHead = f.duration("requestHead", requestHead);
      }
      return new EgretConfig.Timeouts(connect, handshake, response, idle, requestHead);
    }

    private EgretConfig.Tracing tracing(Fields f) {
      if (f == null) {
        return EgretConfig.Tracing.OFF;
      }
      EgretConfig.Exporter exporter = EgretConfig.Exporter.valueOf(
          f.choice("exporter", List.of("none", "otlp"), "none").toUpperCase(Locale.ROOT));
      java.net.URI endpoint = EgretConfig.Tracing.DEFAULT_ENDPOINT;
      YamlNode e = f.get("endpoint");
      String text = e == null ? null : f.string(e, "tracing.endpoint");
      if (text != null) {
        try {
          java.net.URI u = new java.net.URI(text);
          String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
          if (!scheme.equals("http") && !scheme.equals("https") || u.getHost() == null
              || u.getRawUserInfo() != null || u.getRawQuery() != null) {
            throw new java.net.URISyntaxException(text, "not an http:// or https:// URL with a "
                + "host and no user name or query");
          }
          endpoint = u;
        } catch (java.net.URISyntaxException x) {
          errors.add(e, "tracing.endpoint: " + x.getReason() + "; write the collector's "
              + "OTLP/HTTP traces URL, such as http://127.0.0.1:4318/v1/traces");
        }
      }
      double ratio = f.number("sampleRatio", 0.0, 1.0, 0.0);
      EgretConfig.Propagation propagate = EgretConfig.Propagation.valueOf(f.choice("propagate",
          List.of("passthrough", "propagate", "restart"), "passthrough").toUpperCase(Locale.ROOT));
      boolean xray = f.bool("xray", false);
      return new EgretConfig.Tracing(exporter, endpoint, ratio, propagate, xray);
    }

    private EgretConfig.Shutdown shutdown(Fields f) {
      Duration grace = Duration.ofSeconds(3);
      Duration deadline = Duration.ofSeconds(25);
      if (f != null) {
        grace = f.duration("grace", grace);
        deadline = f.duration("deadline", deadline);
        if (deadline.compareTo(grace) < 0) {
          errors.add(f.get("deadline"), "shutdown.deadline (" + deadline.toMillis()
              + " ms) is shorter than shutdown.grace (" + grace.toMillis() + " ms); the deadline "
              + "counts from SIGTERM and must leave room for the grace");
        }
      }
      return new EgretConfig.Shutdown(grace, deadline);
    }

    private EgretConfig.Limits limits(Fields f) {
      int max = 4096;
      int perDest = 256;
      int header = 16384;
      int admin = 64;
      if (f != null) {
        max = f.integer("maxConnections", 1, 1_000_000, max);
        perDest = f.integer("maxConnectionsPerDestination", 1, 1_000_000, perDest);
        header = f.integer("maxHeaderBytes", 1024, 1 << 20, header);
        admin = f.integer("maxAdminConnections", 1, 65_536, admin);
      }
      return new EgretConfig.Limits(max, perDest, header, admin);
    }

    private Rule rule(YamlNode node, String where, Plaintext defaultPlaintext,
        TlsProfile defaultTls, TlsBaseline baseline, boolean systemTrust,
        List<X509Certificate> extraRoots) {
      Fields f = Fields.of(node, where, RULE, errors);
      if (f == null) {
        return null;
      }
      int before = errors.sorted().size();
      String hostText = f.requiredString("host");
      HostPattern host = null;
      if (hostText != null) {
        try {
          host = HostPattern.compile(hostText);
        } catch (IllegalArgumentException e) {
          errors.add(f.get("host"), where + ".host: " + e.getMessage());
        }
      }
      Set<Integer> ports = Set.of(443);
      List<YamlNode> portItems = f.list("ports");
      if (portItems != null) {
        Set<Integer> p = new LinkedHashSet<>();
        for (int i = 0; i < portItems.size(); i++) {
          Integer port = f.integer(portItems.get(i), where + ".ports[" + i + "]", 1, 65535);
          if (port != null) {
            p.add(port);
          }
        }
        if (portItems.isEmpty()) {
          errors.add(f.get("ports"), where + ".ports is empty; leave it out for [443]");
        }
        ports = Set.copyOf(p);
      }
      List<String> methods = f.stringList("methods", m -> {
        if (!m.matches("[A-Za-z]+")) {
          throw new IllegalArgumentException("'" + m + "' is not an HTTP method such as GET or POST");
        }
        return m.toUpperCase(Locale.ROOT);
      });
      List<PathPattern> paths = f.stringList("paths", PathPattern::compile);
      Plaintext plaintext = plaintext(f, defaultPlaintext);
      Integer upgradePort = f.integer("upgradePort", 1, 65535, null);
      boolean ech = "allow".equals(f.choice("ech", List.of("allow", "refuse"), "refuse"));
      List<Cidr> allowAddresses = f.stringList("allowAddresses", Cidr::parse);
      List<String> pinTexts = f.stringList("pins", pin -> {
        Pins.parseOne(pin);
        return pin;
      });
      Trust trust = trust(f, "trust");
      X509KeyManager clientKey = clientCert(f, where);
      HeaderRules injected = headers.compile(f, where);
      dev.egret.policy.UpstreamRoute route = proxies.ruleRoute(f, where);

      TlsProfile tls = defaultTls;
      boolean ownTls = (pinTexts != null && !pinTexts.isEmpty()) || trust != null || clientKey != null;
      if (ownTls) {
        Pins pins = pinTexts == null ? Pins.NONE : Pins.parse(pinTexts);
        tls = profile(where, trust == null ? systemTrust : trust.system,
            trust == null ? extraRoots : trust.roots, pins, clientKey, baseline);
      }
      if (errors.sorted().size() > before || host == null) {
        return null;
      }
      return new Rule(host, ports, Set.copyOf(methods == null ? List.of() : methods),
          paths == null ? List.of() : paths, plaintext, upgradePort,
          allowAddresses == null ? List.of() : allowAddresses, tls, ech, f.node().line(),
          injected, route);
    }

    private X509KeyManager clientCert(Fields f, String where) {
      YamlNode n = f.get("clientCert");
      if (n == null) {
        return null;
      }
      Fields c = Fields.of(n, where + ".clientCert", keys("cert", "key"), errors);
      if (c == null) {
        return null;
      }
      String cert = c.requiredString("cert");
      String key = c.requiredString("key");
      if (cert == null || key == null) {
        return null;
      }
      try {
        return Pem.keyManager(cert, readNamed(cert), key, readNamed(key));
      } catch (IllegalArgumentException e) {
        errors.add(n, where + ".clientCert: " + e.getMessage());
        return null;
      }
    }

    private TlsProfile profile(String name, boolean system, List<X509Certificate> roots, Pins pins,
        X509KeyManager clientKey, TlsBaseline baseline) {
      // The trust manager reads the JDK's CA file when system is set: built on first need
      // (TlsProfile says why), off the event loops.
      return new TlsProfile(name, pins, () -> StrictTrustManager.create(system, roots, pins),
          clientKey, baseline, handshakeTimeout);
    }
  }
}
