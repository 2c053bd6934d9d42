package dev.egret.telemetry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.egret.failure.ErrorKind;
import dev.egret.policy.Kind;
import dev.egret.policy.Target;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class AccessLogTest {
  private static final Set<String> DOCUMENTED_FIELDS = Set.of("time", "client", "method", "url", "kind", "origin",
      "destination", "host", "outcome", "error", "status", "upstream", "upstream_proxy",
      "tls_version", "tls_cipher",
      "dns_ms", "connect_ms", "handshake_ms", "first_byte_ms", "total_ms", "bytes_upstream",
      "bytes_downstream", "rule", "details");
  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void writesOneJsonObjectPerHopWithTheSpecFields() throws Exception {
    Hop upgrade = Hops.upgrade("api.example.com", "/v1/items");
    upgrade.upstreamAddress = "203.0.113.7:443";
    upgrade.tlsVersion = "TLSv1.3";
    upgrade.tlsCipher = "TLS_AES_128_GCM_SHA256";
    upgrade.dnsNanos = 1_234_567;
    upgrade.connectNanos = 2_000_000;
    upgrade.handshakeNanos = 9_500_000;
    upgrade.firstByteNanos = 25_000_001;
    upgrade.bytesUpstream = 321;
    upgrade.bytesDownstream = 4096;
    Hop denied = Hops.hop(Hops.ALLOWLIST, new Target(Kind.TLS, "evil.example.net", 443, "GET",
        "/"), ErrorKind.REQUEST_DENIED, 403, 150_000);
    denied.errorDetails = null; // the decision's own sentence stands in

    List<JsonNode> lines = logged(upgrade, denied);

    assertThat(lines).hasSize(2);
    for (JsonNode line : lines) {
      List<String> fields = new ArrayList<>();
      line.fieldNames().forEachRemaining(fields::add);
      assertThat(fields).containsExactlyInAnyOrderElementsOf(DOCUMENTED_FIELDS);
    }
    JsonNode ok = lines.get(0);
    assertThat(Instant.parse(ok.get("time").asText()))
        .isEqualTo(Instant.ofEpochMilli(upgrade.startEpochMillis));
    assertThat(ok.get("time").asText()).endsWith("Z");
    assertThat(ok.get("client").asText()).isEqualTo("127.0.0.1:50123");
    assertThat(ok.get("method").asText()).isEqualTo("GET");
    assertThat(ok.get("url").asText()).isEqualTo("http://api.example.com/v1/items");
    assertThat(ok.get("kind").asText()).isEqualTo("upgrade");
    assertThat(ok.get("destination").asText()).isEqualTo("api.example.com");
    assertThat(ok.get("host").asText()).isEqualTo("api.example.com");
    assertThat(ok.get("outcome").asText()).isEqualTo("allowed");
    assertThat(ok.get("error").asText()).isEqualTo("none");
    assertThat(ok.get("status").asInt()).isEqualTo(200);
    assertThat(ok.get("upstream").asText()).isEqualTo("203.0.113.7:443");
    assertThat(ok.get("tls_version").asText()).isEqualTo("TLSv1.3");
    assertThat(ok.get("tls_cipher").asText()).isEqualTo("TLS_AES_128_GCM_SHA256");
    assertThat(ok.get("dns_ms").asDouble()).isEqualTo(1.235);
    assertThat(ok.get("connect_ms").asDouble()).isEqualTo(2.0);
    assertThat(ok.get("handshake_ms").asDouble()).isEqualTo(9.5);
    assertThat(ok.get("first_byte_ms").asDouble()).isEqualTo(25.0);
    assertThat(ok.get("total_ms").asDouble()).isEqualTo(3.0);
    assertThat(ok.get("bytes_upstream").asLong()).isEqualTo(321);
    assertThat(ok.get("bytes_downstream").asLong()).isEqualTo(4096);
    assertThat(ok.get("rule").asText()).isEqualTo("api.example.com");

    JsonNode no = lines.get(1);
    assertThat(no.get("kind").asText()).isEqualTo("tls");
    assertThat(no.get("destination").asText()).isEqualTo("denied");
    assertThat(no.get("host").asText()).as("raw host names belong in the log")
        .isEqualTo("evil.example.net");
    assertThat(no.get("outcome").asText()).isEqualTo("denied");
    assertThat(no.get("error").asText()).isEqualTo("http_request_denied");
    assertThat(no.get("status").asInt()).isEqualTo(403);
    assertThat(no.get("details").asText()).isEqualTo("no allow rule names evil.example.net");
    assertThat(no.get("rule").isNull()).isTrue();
    assertThat(no.get("dns_ms").isNull()).as("a stage that did not happen").isTrue();
    assertThat(no.get("upstream").isNull()).isTrue();
  }

  @Test
  void neverLogsQueryStringsFragmentsOrUserinfo() throws Exception {
    Hop withQuery = Hops.upgrade("api.example.com", "/v1/items");
    withQuery.url = "http://alice:s3cr3t@api.example.com/v1/items?token=t0k3n&x=1#frag";
    Hop tunnel = Hops.tunnel("na1.salesforce.com");
    tunnel.url = "bob:hunter2@na1.salesforce.com:443";
    Hop atInPath = Hops.upgrade("api.example.com", "/users/me@example.com");
    atInPath.url = "http://api.example.com/users/me@example.com?sig=abc";

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    List<JsonNode> lines = logged(out, withQuery, tunnel, atInPath);

    assertThat(lines).extracting(l -> l.get("url").asText()).containsExactly(
        "http://api.example.com/v1/items",
        "na1.salesforce.com:443",
        "http://api.example.com/users/me@example.com");
    assertThat(out.toString(StandardCharsets.UTF_8))
        .doesNotContain("s3cr3t", "alice", "t0k3n", "frag", "hunter2", "bob", "sig=", "?");
  }

  @Test
  void keepsOneLinePerHopWhateverTheDetailsContain() throws Exception {
    Hop hop = Hops.hop(Hops.ALLOWLIST, new Target(Kind.TLS, "api.example.com", 443, "GET", "/"),
        ErrorKind.DESTINATION_UNAVAILABLE, 502, 1_000);
    hop.errorDetails = "upstream said \"bye\"\n{\"outcome\":\"allowed\"}\u0000";

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    List<JsonNode> lines = logged(out, hop);

    assertThat(out.toString(StandardCharsets.UTF_8).split("\n")).hasSize(1);
    assertThat(lines.get(0).get("details").asText()).isEqualTo(hop.errorDetails);
    assertThat(lines.get(0).get("outcome").asText()).isEqualTo("failed");
  }

  @Test
  void writesAValueThatIsNoValidUtf16AsValidUtf8() throws Exception {
    // A lone surrogate has no UTF-8 form. Written as an escape (\\ud83d, as Jackson does), strict
    // parsers (Rust's serde_json, for one) refuse the whole line; U+FFFD keeps it readable.
    Hop broken = Hops.hop(Hops.ALLOWLIST, new Target(Kind.TLS, "api.example.com", 443, "GET",
        "/"), ErrorKind.DESTINATION_UNAVAILABLE, 502, 1_000);
    broken.errorDetails = "half an emoji: \ud83d, then text";
    Hop next = Hops.tunnel("na1.salesforce.com");

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    List<JsonNode> lines = logged(out, broken, next);

    assertThat(lines).hasSize(2);
    assertThat(lines.get(0).get("details").asText()).isEqualTo("half an emoji: \ufffd, then text");
    assertThat(lines.get(1).get("host").asText()).isEqualTo("na1.salesforce.com");
  }

  @Test
  void dropsAndCountsLinesWhenTheWriterIsStuckWithoutBlockingTheCaller() throws Exception {
    StuckStream stuck = new StuckStream();
    int capacity = 4;
    AccessLog log = new AccessLog(stuck, capacity);
    try {
      assertThat(log.write(Hops.tunnel("na1.salesforce.com"))).isTrue();
      assertThat(stuck.entered.await(10, TimeUnit.SECONDS)).as("writer reached the stream").isTrue();

      // The writer holds one line inside write(); the queue takes `capacity` more, then drops.
      List<Boolean> accepted = assertTimeoutPreemptively(Duration.ofSeconds(5), () -> {
        List<Boolean> results = new ArrayList<>();
        for (int i = 0; i < capacity + 50; i++) {
          results.add(log.write(Hops.tunnel("na1.salesforce.com")));
        }
        return results;
      });

      assertThat(accepted.subList(0, capacity)).containsOnly(true);
      assertThat(accepted.subList(capacity, accepted.size())).containsOnly(false);
      assertThat(log.dropped()).isEqualTo(50);
    } finally {
      stuck.release.countDown();
      log.close();
    }
    assertThat(log.written()).isEqualTo(1 + capacity);
    assertThat(stuck.lines()).isEqualTo(1 + capacity);
  }

  @Test
  void countsLinesWrittenAfterCloseAsDropped() {
    AccessLog log = new AccessLog(new ByteArrayOutputStream(), 10);
    log.close();

    assertThat(log.write(Hops.tunnel("na1.salesforce.com"))).isFalse();
    assertThat(log.dropped()).isEqualTo(1);
  }

  private static List<JsonNode> logged(Hop... hops) throws IOException {
    return logged(new ByteArrayOutputStream(), hops);
  }

  /** Writes the hops, closes the log (which drains it), and parses every line. */
  private static List<JsonNode> logged(ByteArrayOutputStream out, Hop... hops) throws IOException {
    AccessLog log = new AccessLog(out, 100);
    for (Hop hop : hops) {
      assertThat(log.write(hop)).isTrue();
    }
    log.close();
    List<JsonNode> lines = new ArrayList<>();
    for (String line : out.toString(StandardCharsets.UTF_8).split("\n")) {
      lines.add(JSON.readTree(line));
    }
    return lines;
  }

  /** A stdout whose reader stopped: the first write blocks until released. */
  private static final class StuckStream extends OutputStream {
    final CountDownLatch entered = new CountDownLatch(1);
    final CountDownLatch release = new CountDownLatch(1);
    private final ByteArrayOutputStream received = new ByteArrayOutputStream();

    @Override
    public synchronized void write(int b) {
      received.write(b);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      entered.countDown();
      try {
        if (!release.await(30, TimeUnit.SECONDS)) {
          throw new IOException("never released");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException(e);
      }
      synchronized (this) {
        received.write(b, off, len);
      }
    }

    synchronized long lines() {
      return received.toString(StandardCharsets.UTF_8).lines().count();
    }
  }
}
