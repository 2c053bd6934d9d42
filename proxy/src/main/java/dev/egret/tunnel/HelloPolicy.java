package dev.egret.tunnel;

import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import dev.egret.address.HostName;

/**
 * What a tunnel's hellos must say, from the rule that admitted it: the ClientHello must name the
 * tunnel's host and hide no other destination (ECH) unless the rule allows it, and the server
 * must choose at least {@code tls.minVersion}. Each judgement is null when the hello may go on,
 * else the failure that cuts the tunnel, worded for the log.
 *
 * @param host the tunnel's host, normalised (the CONNECT authority or the transparent SNI)
 * @param minVersion the lowest wire version the server may choose, e.g. 0x0303
 * @param echAllowed whether the rule says {@code ech: allow}
 */
record HelloPolicy(String host, int minVersion, boolean echAllowed) {

  ProxyFailure judge(HelloInspection.ClientHello hello) {
    String mismatch = sniMismatch(hello.sni());
    if (mismatch != null) {
      return new ProxyFailure(ErrorKind.REQUEST_DENIED, mismatch);
    }
    if (hello.encryptedClientHello() && !echAllowed) {
      return new ProxyFailure(ErrorKind.REQUEST_DENIED, "the ClientHello carries "
          + ClientHelloInspector.extensionName(hello.encryptedHello()) + ", which hides its real "
          + "destination behind the outer name " + host + "; Egret refuses it unless the rule "
          + "says 'ech: allow'");
    }
    return null;
  }

  ProxyFailure judge(HelloInspection.ServerHello hello) {
    if (hello.version() < minVersion) {
      return new ProxyFailure(ErrorKind.TLS_PROTOCOL_ERROR, host + " negotiated "
          + hello.versionName() + ", below tls.minVersion " + TlsVersions.name(minVersion));
    }
    return null;
  }

  /** Null if the SNI fits the tunnel's host, else the reason to cut. */
  private String sniMismatch(String sni) {
    if (sni == null) {
      return HostName.isIpLiteral(host) ? null
          : "the ClientHello names no server (no SNI) but the tunnel is for " + host;
    }
    String normalized;
    try {
      normalized = HostName.normalize(sni);
    } catch (IllegalArgumentException e) {
      return "the ClientHello's SNI '" + sni + "' is not a valid host name";
    }
    return normalized.equals(host) ? null
        : "the ClientHello names " + normalized + " but the tunnel is for " + host;
  }
}
