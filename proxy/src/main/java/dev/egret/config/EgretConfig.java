package dev.egret.config;

import dev.egret.address.AddressPolicy;
import dev.egret.policy.Allowlist;
import dev.egret.tls.TlsBaseline;
import dev.egret.tls.TlsProfile;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A loaded, validated config: the one immutable value the proxy serves from. A reload compiles
 * a new one and swaps the reference; hops in flight keep the one they started with.
 *
 * @param file where it was read from
 * @param sha256 hex SHA-256 of the file's bytes ({@code egret_config_info})
 * @param inputs every file this config was compiled from, as read: the config file first, then
 *     each file it names; what a reload watches
 */
public record EgretConfig(
    Path file,
    String sha256,
    Listen listen,
    Allowlist allowlist,
    AddressPolicy addresses,
    TlsBaseline tlsBaseline,
    TlsProfile defaultTls,
    Timeouts timeouts,
    Limits limits,
    java.util.List<ConfigFiles.Input> inputs) {

  /** The files the config names (PEM files, keys, {@code ${file:}} values), in reading order. */
  public java.util.List<Path> referencedFiles() {
    return inputs.stream().skip(1).map(ConfigFiles.Input::path).toList();
  }

  /** {@code listen:}: where the proxy and admin listeners bind. */
  public record Listen(HostPort proxy, HostPort admin) {}

  public record HostPort(String host, int port) {
    @Override
    public String toString() {
      return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }
  }

  /** {@code timeouts:}. */
  public record Timeouts(Duration connect, Duration handshake, Duration response, Duration idle) {}

  /** {@code limits:}. */
  public record Limits(int maxConnections, int maxConnectionsPerDestination, int maxHeaderBytes) {}
}
