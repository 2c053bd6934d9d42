package dev.egret.identity;

import dev.egret.address.Cidr;
import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The compiled {@code clients:} and {@code identity.onMissing}: who may use a gateway, and how
 * each is recognised. Immutable; a reload builds a new one. {@link #NONE} is the sidecar's: no
 * clients, and the top-level allowlist decides every request as it always did.
 *
 * <pre>{@code
 * Identified id = config.clients().identify(Credentials.request(cert, address, authValues));
 * if (id.refused()) throw id.refusal();        // 403 or 407, counted by source and reason
 * Decision d = id.client().allowlist().decide(target);
 * }</pre>
 */
public final class Clients {
  /** The most clients one config may have: each is a value of the {@code client} label. */
  public static final int MAX_CLIENTS = 512;
  /** The {@code client} label and log {@code identity} of a request no client was found for. */
  public static final String UNIDENTIFIED = "unidentified";

  public static final Clients NONE = new Clients(List.of(), null);

  private final List<Client> clients;
  private final Map<String, Client> byName = new HashMap<>();
  private final Map<String, Client> bySpiffe = new HashMap<>();
  private final Map<String, Client> byDns = new HashMap<>();
  private final TokenDigests tokens;
  private final boolean usesCertificates;
  private final boolean usesAddresses;
  /** The client a request with no identity gets; null for {@code onMissing: deny}. */
  private final Client onMissing;

  /**
   * @param clients in config order (address matches are tried in this order); names, SPIFFE IDs,
   *     DNS names and token digests must be unique across them (the compiler checks)
   * @param onMissing the client of a request that presents no identity, or null to refuse it
   */
  public Clients(List<Client> clients, Client onMissing) {
    if (clients.size() > MAX_CLIENTS) {
      throw new IllegalArgumentException("at most " + MAX_CLIENTS + " clients");
    }
    this.clients = List.copyOf(clients);
    boolean certs = false;
    boolean addresses = false;
    for (Client c : clients) {
      byName.put(c.name(), c);
      c.spiffe().forEach(s -> bySpiffe.put(s, c));
      c.dns().forEach(d -> byDns.put(d.toLowerCase(Locale.ROOT), c));
      certs |= !c.spiffe().isEmpty() || !c.dns().isEmpty();
      addresses |= !c.addresses().isEmpty();
    }
    this.tokens = new TokenDigests(this.clients);
    this.usesCertificates = certs;
    this.usesAddresses = addresses;
    this.onMissing = onMissing;
  }

  /** True with a {@code clients:} list: gateway mode, with a {@code client} metric label. */
  public boolean gateway() {
    return !clients.isEmpty();
  }

  public List<Client> all() {
    return clients;
  }

  /** The client of this name, or null. */
  public Client named(String name) {
    return byName.get(name);
  }

  public Client onMissing() {
    return onMissing;
  }

  /** True when some client is recognised by a token: a missing identity is then asked for (407). */
  public boolean usesTokens() {
    return !tokens.isEmpty();
  }

  /**
   * Who a request is from. The sources, strongest first: the verified client certificate (its
   * URI SANs against {@code match.spiffe}, its DNS SANs against {@code match.dns}), then a
   * {@code Proxy-Authorization} token, then the client address; the first that names a client
   * decides, and {@code identity.onMissing} covers a request that none names. A credential that
   * is presented but names no client is refused, never passed over for a weaker source: a
   * certificate (403) or a token (407); a malformed {@code Proxy-Authorization} is refused
   * (407); a certificate and a token that name different clients are refused (403). A request
   * inside a CONNECT tunnel is the CONNECT's client.
   */
  public Identified identify(Credentials c) {
    if (c.tunnel() != null) {
      Client k = byName.get(c.tunnel().client());
      if (k != null) {
        return Identified.as(k, "tunnel");
      }
      String source = c.tunnel().source().equals("onMissing") ? "address" : c.tunnel().source();
      return Identified.refused(source, "unknown", denied("this tunnel was opened by client '"
          + c.tunnel().client() + "', which a config reload removed; open a new connection"));
    }
    Client byCertificate = null;
    if (c.certificate() != null) {
      Identified fromCertificate = certificate(c.certificate());
      if (fromCertificate.refused()) {
        return fromCertificate;
      }
      byCertificate = fromCertificate.client();
    }
    Client byToken = null;
    if (!c.authorization().isEmpty() && !c.transparent()) {
      Identified fromToken = token(c.authorization());
      if (fromToken.refused()) {
        return fromToken;
      }
      byToken = fromToken.client();
    }
    if (byCertificate != null && byToken != null && byCertificate != byToken) {
      return Identified.refused("token", "conflict", denied("the client certificate names "
          + "client '" + byCertificate.name() + "' but the Proxy-Authorization token names '"
          + byToken.name() + "'; present the credentials of one client"));
    }
    if (byCertificate != null) {
      return Identified.as(byCertificate, "certificate");
    }
    if (byToken != null) {
      return Identified.as(byToken, "token");
    }
    if (c.address() != null) {
      byte[] address = c.address().getAddress();
      for (Client k : clients) {
        for (Cidr cidr : k.addresses()) {
          if (cidr.contains(address)) {
            return Identified.as(k, "address");
          }
        }
      }
    }
    if (onMissing != null) {
      return Identified.as(onMissing, "onMissing");
    }
    return missing(c);
  }

  private Identified certificate(X509Certificate leaf) {
    List<String> uris = new ArrayList<>();
    List<String> names = new ArrayList<>();
    try {
      Collection<List<?>> sans = leaf.getSubjectAlternativeNames();
      if (sans != null) {
        for (List<?> san : sans) {
          if (san.size() >= 2 && san.get(0) instanceof Integer type
              && san.get(1) instanceof String value) {
            if (type == 6) {
              uris.add(value);
            } else if (type == 2) {
              names.add(value.toLowerCase(Locale.ROOT));
            }
          }
        }
      }
    } catch (CertificateParsingException e) {
      return Identified.refused("certificate", "malformed",
          denied("the client certificate's subject alternative names cannot be read"));
    }
    Map<String, Client> named = new LinkedHashMap<>();
    for (String u : uris) {
      Client k = bySpiffe.get(u);
      if (k != null) {
        named.put(k.name(), k);
      }
    }
    for (String d : names) {
      Client k = byDns.get(d);
      if (k != null) {
        named.put(k.name(), k);
      }
    }
    if (named.size() > 1) {
      return Identified.refused("certificate", "conflict", denied("the client certificate names "
          + "the clients " + String.join(", ", named.keySet()) + "; a certificate must name one"));
    }
    if (named.isEmpty()) {
      return Identified.refused("certificate", "unknown", denied("the client certificate "
          + describeSans(uris, names) + " names no configured client (match.spiffe, match.dns)"));
    }
    return Identified.as(named.values().iterator().next(), "certificate");
  }

  private Identified token(List<String> values) {
    if (tokens.isEmpty()) {
      return Identified.refused("token", "unknown", denied("the request carries "
          + "Proxy-Authorization, but no client of this gateway is recognised by a token"));
    }
    if (values.size() > 1) {
      return Identified.refused("token", "malformed", authenticate("the request carries "
          + values.size() + " Proxy-Authorization headers; send one"));
    }
    ProxyAuthorization.Presented presented;
    try {
      presented = ProxyAuthorization.parse(values.get(0));
    } catch (ProxyAuthorization.Malformed e) {
      return Identified.refused("token", "malformed", authenticate(e.getMessage()));
    }
    Client k = tokens.find(TokenDigests.sha256(presented.token()));
    // Basic names the client too; a token of another client under this name is as unknown as
    // any wrong token, and the answer does not say which of the two was wrong.
    if (k == null || (presented.user() != null && !presented.user().equals(k.name()))) {
      return Identified.refused("token", "unknown", authenticate("the Proxy-Authorization "
          + "credential names no client of this gateway"));
    }
    return Identified.as(k, "token");
  }

  private Identified missing(Credentials c) {
    List<String> absent = new ArrayList<>();
    if (usesCertificates && !c.transparent()) {
      absent.add("no client certificate");
    }
    if (usesTokens() && !c.transparent()) {
      absent.add("no Proxy-Authorization token");
    }
    if (usesAddresses || absent.isEmpty()) {
      absent.add("its address " + (c.address() == null ? "(unknown)"
          : c.address().getHostAddress()) + " is in no client's match.addresses");
    }
    String details = "no identity: the request has " + String.join(", ", absent)
        + " (identity.onMissing: deny)";
    String source = usesTokens() && !c.transparent() ? "token"
        : usesCertificates && !c.transparent() ? "certificate" : "address";
    ProxyFailure refusal = usesTokens() && !c.transparent() ? authenticate(details)
        : denied(details);
    return Identified.refused(source, "missing", refusal);
  }

  private static String describeSans(List<String> uris, List<String> names) {
    if (uris.isEmpty() && names.isEmpty()) {
      return "(no URI or DNS subject alternative names)";
    }
    List<String> all = new ArrayList<>();
    uris.forEach(u -> all.add("URI " + u));
    names.forEach(d -> all.add("DNS " + d));
    return "(" + String.join(", ", all.size() > 4 ? all.subList(0, 4) : all)
        + (all.size() > 4 ? ", ..." : "") + ")";
  }

  private static ProxyFailure denied(String details) {
    return new ProxyFailure(ErrorKind.IDENTITY_DENIED, details);
  }

  private static ProxyFailure authenticate(String details) {
    return new ProxyFailure(ErrorKind.PROXY_AUTHENTICATION_REQUIRED, details);
  }

  /**
   * The digest a config value writes: {@code sha256:} and 64 lower-case hex digits.
   *
   * @throws IllegalArgumentException saying what is wrong, without quoting the value
   */
  public static byte[] tokenDigest(String written) {
    return TokenDigests.parse(written);
  }
}
