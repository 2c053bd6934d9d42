package dev.egret.testing;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;

/**
 * One request as a {@link TlsTestServer} read it off the wire, so a test can assert what the
 * upstream saw: {@code assertThat(server.requests().get(0).header("Host")).contains("a.test:443")}.
 *
 * @param tlsProtocol the connection's protocol ({@code TLSv1.3}), or {@code none} in plain mode
 * @param sni the server name the client asked for, or empty when it sent none
 */
public record ReceivedRequest(String method, String target, String version,
    List<Header> headers, byte[] body, String tlsProtocol, Optional<String> sni) {

  /** A header line as received; names keep their case and repeated names stay separate. */
  public record Header(String name, String value) {}

  /** The first value of a header, matching the name case-insensitively. */
  public Optional<String> header(String name) {
    return headers.stream().filter(h -> h.name().equalsIgnoreCase(name)).map(Header::value)
        .findFirst();
  }

  /** Every value of a header, in order. */
  public List<String> headerValues(String name) {
    return headers.stream().filter(h -> h.name().equalsIgnoreCase(name)).map(Header::value)
        .toList();
  }

  public String bodyText() {
    return new String(body, StandardCharsets.UTF_8);
  }
}
