package dev.egret.listener;

import dev.egret.exchange.RequestHead;
import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.buffer.ByteBuf;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpRequestDecoder;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.LastHttpContent;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * A differential oracle: whatever Egret's strict decoder accepts, Netty's {@link
 * HttpRequestDecoder} (the parser of Vert.x and of many an upstream) must read the same way. For
 * every request Egret passes on, Netty must see a request at the same place in the stream with
 * the same method, target, version and header fields (names and values, in order; Content-Length
 * as framing, since Netty rewrites it), the same body
 * framing (Content-Length and its value, chunked, or none) and the same body bytes, ending where
 * Egret's ends, so the next request starts at the same byte for both. Egret is stricter and may
 * refuse what Netty reads; the other way round (Netty refusing or reading otherwise what Egret
 * accepted) fails the test: that is how request smuggling starts.
 *
 * <p>Netty's limits are set above Egret's, so a size limit is never the difference.
 *
 * <p>Regression inputs: {@code src/test/resources/dev/egret/listener/
 * NettyDifferentialFuzzTestInputs}; fuzzing: {@code bench/fuzz.sh
 * dev.egret.listener.NettyDifferentialFuzzTest}.
 */
class NettyDifferentialFuzzTest {
  private static final StrictHeadParser PARSER = new StrictHeadParser();
  private static final List<StrictHeadParser.TargetForm> FORMS = List.of(
      StrictHeadParser.TargetForm.PROXY,
      new StrictHeadParser.TargetForm.Origin(new RequestHead.Authority("http", "a.example", 80), 80));

  /** A request as Netty read it. */
  private static final class Read {
    String method;
    String uri;
    String version;
    final List<Map.Entry<String, String>> headers = new ArrayList<>();
    String framing;
    final ByteArrayOutputStream body = new ByteArrayOutputStream();
    boolean ended;
    /** Netty's decoder refused this request (its head or its body). */
    Throwable failure;

    @Override
    public String toString() {
      return method + " " + uri + " " + version + " " + headers + " " + framing + " body="
          + HexFormat.of().formatHex(body.toByteArray()) + " ended=" + ended
          + (failure == null ? "" : " failure=" + failure);
    }
  }

  @FuzzTest(maxDuration = "10m")
  void nettyReadsWhatEgretAcceptsTheSameWay(byte[] input) {
    List<Read> netty = netty(input);
    for (StrictHeadParser.TargetForm form : FORMS) {
      DecoderRun egret = DecoderRun.of(PARSER, form, input, new int[0], true);
      compare(input, egret, netty);
    }
  }

  private static void compare(byte[] input, DecoderRun egret, List<Read> netty) {
    for (int i = 0; i < egret.requests.size(); i++) {
      DecoderRun.Request e = egret.requests.get(i);
      String where = "request " + i + " of " + HexFormat.of().formatHex(input) + "\negret: " + e
          + "\nnetty: " + netty;
      assertThat(netty.size()).as("Netty sees request %d too: %s", i, where).isGreaterThan(i);
      Read n = netty.get(i);
      assertThat(n.method).as(where).isNotNull();
      assertThat(n.method).as("method, " + where).isEqualTo(e.head.method());
      assertThat(n.uri).as("target, " + where).isEqualTo(e.head.target());
      assertThat(n.version).as("version, " + where).isEqualTo(e.head.version());
      // Netty rewrites Content-Length (lower-case name, value without leading zeros, moved to
      // the end); its value is compared as framing.
      List<Map.Entry<String, String>> headers = e.head.headers().stream()
          .filter(h -> !h.name().equalsIgnoreCase("content-length"))
          .map(h -> Map.entry(h.name(), h.value())).toList();
      assertThat(n.headers.stream().filter(h -> !h.getKey().equalsIgnoreCase("content-length"))
          .toList())
          .as("headers, " + where).isEqualTo(headers);
      assertThat(n.framing).as("framing, " + where).isEqualTo(framing(e.head.framing()));
      if (e.head.isConnect()) {
        return; // what follows is the tunnel's, not HTTP
      }
      byte[] eb = e.body.toByteArray();
      byte[] nb = n.body.toByteArray();
      boolean refusedHere = egret.failure != null && egret.failedAt == i;
      if (e.ended) {
        assertThat(n.failure).as("Netty refuses a body Egret accepted: " + where).isNull();
        assertThat(n.ended).as("Netty ends the body where Egret does: " + where).isTrue();
        assertThat(nb).as("body, " + where).isEqualTo(eb);
      } else if (refusedHere) {
        // Egret refused in the body: what it passed on before must be what Netty reads.
        assertThat(nb.length).as("Netty stops the body before Egret refused it: " + where)
            .isGreaterThanOrEqualTo(eb.length);
        assertThat(java.util.Arrays.copyOf(nb, eb.length)).as("body, " + where).isEqualTo(eb);
      } else {
        // The input ended inside the body: both have read all of it as data.
        assertThat(n.failure).as("Netty refuses a body Egret is still reading: " + where).isNull();
        assertThat(n.ended).as("Netty ends a body Egret is still reading: " + where).isFalse();
        assertThat(nb).as("body, " + where).isEqualTo(eb);
      }
    }
    int next = egret.requests.size();
    boolean egretWaits = egret.failure == null
        && (next == 0 || egret.requests.get(next - 1).ended);
    if (egretWaits && netty.size() > next) {
      // Egret is still reading a head (or has nothing yet): Netty must not have read one there.
      Read n = netty.get(next);
      assertThat(n.failure != null || n.method == null)
          .as("Netty read a head where Egret is still waiting for one: %s\nnetty: %s",
              HexFormat.of().formatHex(input), netty)
          .isTrue();
    }
  }

  private static String framing(RequestHead.Framing f) {
    return switch (f.type()) {
      case NONE -> "none";
      case CHUNKED -> "chunked";
      case CONTENT_LENGTH -> "length " + f.contentLength();
    };
  }

  /** Netty's reading of the whole input, request by request, up to its first refusal. */
  private static List<Read> netty(byte[] input) {
    HttpDecoderConfig config = new HttpDecoderConfig()
        .setMaxInitialLineLength(2 * StrictHeadParser.DEFAULT_MAX_REQUEST_LINE_BYTES)
        .setMaxHeaderSize(2 * StrictHeadParser.DEFAULT_MAX_HEADER_BYTES)
        .setMaxChunkSize(8192);
    EmbeddedChannel channel = new EmbeddedChannel(new HttpRequestDecoder(config));
    List<Read> reads = new ArrayList<>();
    try {
      ByteBuf in = channel.alloc().buffer(input.length).writeBytes(input);
      channel.writeInbound(in);
      Read current = null;
      for (Object msg; (msg = channel.readInbound()) != null; ) {
        try {
          if (msg instanceof HttpRequest req) {
            Read head = new Read();
            current = head;
            reads.add(head);
            if (req.decoderResult().isFailure()) {
              head.failure = req.decoderResult().cause();
              break;
            }
            head.method = req.method().name();
            head.uri = req.uri();
            head.version = req.protocolVersion().text();
            req.headers().iteratorAsString().forEachRemaining(h ->
                head.headers.add(Map.entry(h.getKey(), h.getValue())));
            head.framing = HttpUtil.isTransferEncodingChunked(req) ? "chunked"
                : HttpUtil.isContentLengthSet(req) ? "length " + HttpUtil.getContentLength(req)
                : "none";
          }
          if (msg instanceof HttpContent content) {
            if (current == null) {
              current = new Read();
              reads.add(current);
            }
            if (((HttpObject) content).decoderResult().isFailure()) {
              current.failure = content.decoderResult().cause();
              break;
            }
            ByteBuf data = content.content();
            byte[] b = new byte[data.readableBytes()];
            data.getBytes(data.readerIndex(), b);
            current.body.writeBytes(b);
            if (msg instanceof LastHttpContent) {
              current.ended = true;
              current = null;
            }
          }
        } finally {
          io.netty.util.ReferenceCountUtil.release(msg);
        }
      }
    } finally {
      channel.finishAndReleaseAll();
    }
    return reads;
  }
}
