package dev.egret.listener;

import dev.egret.exchange.RequestTarget;
import dev.egret.exchange.RequestHead;
import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.failure.ProxyFailure;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The strict decoder in a connection's pipeline: what reaches the connection handler (heads and
 * body data, framing removed), and what a bad request gets.
 */
class StrictRequestDecoderTest {
  private static final String GET = "GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n";
  private static final String POST = "POST http://a.example/upload HTTP/1.1\r\n"
      + "Content-Length: 5\r\n\r\nhello";
  private static final String CHUNKED = "POST http://a.example/c HTTP/1.1\r\n"
      + "Transfer-Encoding: chunked\r\n\r\n"
      + "5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 1\r\n\r\n";
  private static final String SMUGGLE = "POST http://a.example/ HTTP/1.1\r\n"
      + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

  private final List<ProxyFailure> violations = new ArrayList<>();
  private final Recorder downstream = new Recorder();
  private final List<ByteBuf> sent = new ArrayList<>();
  private final EmbeddedChannel channel = channel(new StrictHeadParser(), violations, downstream);

  private static EmbeddedChannel channel(StrictHeadParser parser, List<ProxyFailure> violations,
      Recorder recorder) {
    recorder.violations = violations;
    return new EmbeddedChannel(new StrictRequestDecoder(parser,
        StrictHeadParser.TargetForm.PROXY, java.time.Duration.ofSeconds(10)), recorder);
  }

  /** A stand-in for the failure package's renderer: enough to recognise the refusal. */
  private static ByteBuf render(ProxyFailure failure) {
    return Unpooled.copiedBuffer("HTTP/1.1 " + failure.status() + " Refused\r\n"
        + "Proxy-Status: egret; error=" + failure.kind().proxyStatusError() + "\r\n"
        + "Connection: close\r\nContent-Length: 0\r\n\r\n", StandardCharsets.US_ASCII);
  }

  /**
   * Plays the connection handler: writes each head back as text and each body's data as it
   * came (so a request without chunked framing reads as it was sent), answers a refusal and
   * closes, and asks for the next request as soon as one has been read (a prompt response).
   */
  private static final class Recorder extends ChannelInboundHandlerAdapter {
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    List<ProxyFailure> violations;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (msg instanceof RequestHead head) {
        StringBuilder sb = new StringBuilder(head.method() + " " + head.target() + " "
            + head.version() + "\r\n");
        head.headers().forEach(h -> sb.append(h.name()).append(": ").append(h.value())
            .append("\r\n"));
        bytes.writeBytes(sb.append("\r\n").toString().getBytes(StandardCharsets.ISO_8859_1));
      } else if (msg instanceof io.netty.handler.codec.http.HttpContent c) {
        ByteBuf buf = c.content();
        byte[] copy = new byte[buf.readableBytes()];
        buf.readBytes(copy);
        bytes.writeBytes(copy);
        c.release();
        if (msg instanceof io.netty.handler.codec.http.LastHttpContent) {
          ctx.executor().execute(() -> ctx.pipeline().get(StrictRequestDecoder.class).next());
        }
      } else if (msg instanceof ProxyFailure f) {
        violations.add(f);
        ctx.writeAndFlush(render(f)).addListener(io.netty.channel.ChannelFutureListener.CLOSE);
      }
    }

    String text() {
      return bytes.toString(StandardCharsets.ISO_8859_1);
    }
  }

  private void send(String s) {
    ByteBuf buf = Unpooled.copiedBuffer(s, StandardCharsets.ISO_8859_1);
    sent.add(buf);
    channel.writeInbound(buf);
    channel.runPendingTasks();
  }

  /** The chunked request as the handler reads it: the same head, the body's data alone. */
  private static final String CHUNKED_DECODED = "POST http://a.example/c HTTP/1.1\r\n"
      + "Transfer-Encoding: chunked\r\n\r\n" + "hello0123456789abcdef";

  private String written() {
    StringBuilder sb = new StringBuilder();
    for (ByteBuf buf; (buf = channel.readOutbound()) != null; ) {
      sb.append(buf.toString(StandardCharsets.ISO_8859_1));
      buf.release();
    }
    return sb.toString();
  }

  private void assertAllInputReleased() {
    assertThat(sent).allSatisfy(buf -> assertThat(buf.refCnt()).isZero());
  }

  private void assertRefused(int status, String details) {
    channel.runPendingTasks();
    assertThat(written()).startsWith("HTTP/1.1 " + status + " Refused\r\n")
        .contains("error=http_request_error");
    assertThat(channel.isOpen()).isFalse();
    assertThat(violations).singleElement().satisfies(v -> {
      assertThat(v.status()).isEqualTo(status);
      assertThat(v.details()).contains(details);
    });
    assertAllInputReleased();
  }

  @Test
  void forwardsAValidRequestUnchanged() {
    send(GET);

    assertThat(downstream.text()).isEqualTo(GET);
    assertThat(channel.isOpen()).isTrue();
    assertThat(written()).isEmpty();
    assertAllInputReleased();
  }

  @Test
  void forwardsPipelinedRequestsInOneBufferUnchanged() {
    send(POST + GET + CHUNKED);

    assertThat(downstream.text()).isEqualTo(POST + GET + CHUNKED_DECODED);
    assertThat(violations).isEmpty();
    assertAllInputReleased();
  }

  @Test
  void forwardsARequestSplitByteByByteUnchanged() {
    String all = POST + CHUNKED + GET;

    for (int i = 0; i < all.length(); i++) {
      send(all.substring(i, i + 1));
    }

    assertThat(downstream.text()).isEqualTo(POST + CHUNKED_DECODED + GET);
    assertThat(channel.isOpen()).isTrue();
    assertAllInputReleased();
  }

  @Test
  void forwardsAChunkedBodySplitAtEveryPoint() {
    String all = CHUNKED + GET;
    // One fresh pipeline per split point: every place a read can end, head or body.
    for (int cut = 1; cut < all.length(); cut++) {
      Recorder recorder = new Recorder();
      EmbeddedChannel ch = channel(new StrictHeadParser(), violations, recorder);
      ch.writeInbound(Unpooled.copiedBuffer(all.substring(0, cut), StandardCharsets.ISO_8859_1));
      ch.runPendingTasks();
      ch.writeInbound(Unpooled.copiedBuffer(all.substring(cut), StandardCharsets.ISO_8859_1));
      ch.runPendingTasks();

      assertThat(recorder.text()).as("cut at %d", cut).isEqualTo(CHUNKED_DECODED + GET);
      assertThat(ch.isOpen()).isTrue();
      ch.finishAndReleaseAll();
    }
    assertThat(violations).isEmpty();
  }

  @Test
  void dropsLeadingEmptyLines() {
    send("\r\n\r\n" + GET);
    send("\r\n" + GET);

    assertThat(downstream.text()).isEqualTo(GET + GET);
    assertThat(violations).isEmpty();
  }

  @Test
  void refusesTooManyLeadingEmptyLines() {
    send("\r\n".repeat(StrictRequestDecoder.MAX_LEADING_EMPTY_LINES + 1) + GET);

    assertThat(downstream.text()).isEmpty();
    assertRefused(400, "too many empty lines");
  }

  @Test
  void refusesSmugglingAndForwardsNothing() {
    send(SMUGGLE);

    assertThat(downstream.text()).isEmpty();
    assertRefused(400, "both Content-Length and Transfer-Encoding");
  }

  @Test
  void refusesOriginFormWithTheSpecMessage() {
    send("GET /path HTTP/1.1\r\nHost: a.example\r\n\r\n");

    assertThat(downstream.text()).isEmpty();
    assertRefused(400, "origin-form request on the proxy port");
  }

  @Test
  void forwardsOnlyTheValidRequestBeforeAnInvalidPipelinedOne() {
    send(POST + SMUGGLE + GET);

    assertThat(downstream.text()).isEqualTo(POST);
    assertRefused(400, "both Content-Length and Transfer-Encoding");
  }

  @Test
  void refusesAnInvalidRequestArrivingLaterOnAKeptAliveConnection() {
    send(GET);
    send("GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n");

    assertThat(downstream.text()).isEqualTo(GET);
    assertRefused(400, "names another host");
  }

  @Test
  void refusesAHeadWithBareLineFeedsWithoutWaitingForMore() {
    send("GET http://a.example/ HTTP/1.1\nHost: a.example\n\n");

    assertThat(downstream.text()).isEmpty();
    assertRefused(400, "bare LF");
  }

  @Test
  void refusesTheHttp2Preface() {
    send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

    assertThat(downstream.text()).isEmpty();
    assertRefused(505, "HTTP/2 connection preface");
  }

  @Test
  void refusesAnEndlessRequestLineOnceItPassesTheLimit() {
    send("GET http://a.example/" + "a".repeat(8200));

    assertThat(downstream.text()).isEmpty();
    assertRefused(414, "request line is longer than 8192 bytes");
  }

  @Test
  void refusesEndlessHeadersOnceTheyPassTheLimit() {
    send("GET http://a.example/ HTTP/1.1\r\n");
    for (int i = 0; i < 20 && channel.isOpen(); i++) {
      send("X-Filler: " + "f".repeat(1000) + "\r\n");
    }

    assertThat(downstream.text()).isEmpty();
    assertRefused(431, "larger than 16384 bytes");
  }

  @Test
  void refusesAMalformedChunkAfterForwardingTheValidPart() {
    String head = "POST http://a.example/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";

    send(head + "5\r\nhello\r\n");
    send("+5\r\nworld\r\n0\r\n\r\n" + GET);

    assertThat(downstream.text()).isEqualTo(head.replace(" HTTP", " HTTP") + "hello");
    channel.runPendingTasks();
    assertThat(written()).startsWith("HTTP/1.1 400 Refused\r\n")
        .contains("error=http_request_error");
    assertThat(channel.isOpen()).isFalse();
    // The refusal follows the head that was handed on; the next pipelined request never is.
    assertThat(violations).singleElement().satisfies(v ->
        assertThat(v.details()).contains("chunk size is not a hexadecimal number"));
    assertAllInputReleased();
  }

  @Test
  void holdsEverythingAfterConnectForTheTunnel() {
    String connect = "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n";
    // Not HTTP at all: the tunnel's bytes, which the decoder must not judge.
    String tunnel = "\u0016\u0003\u0001\n\n\r\u0000 Content-Length: 1\r\nTransfer-Encoding: x\n";

    send(connect + tunnel);
    send(tunnel);

    assertThat(downstream.text()).isEqualTo(connect);
    ByteBuf held = channel.pipeline().get(StrictRequestDecoder.class).detach();
    assertThat(held.toString(StandardCharsets.ISO_8859_1)).isEqualTo(tunnel + tunnel);
    held.release();
    assertThat(violations).isEmpty();
    assertThat(channel.isOpen()).isTrue();
    assertAllInputReleased();
  }

  @Test
  void readsAPipelinedRequestOnlyAfterTheResponseToTheOneBefore() {
    List<ProxyFailure> seen = new ArrayList<>();
    List<Object> messages = new ArrayList<>();
    EmbeddedChannel ch = new EmbeddedChannel(new StrictRequestDecoder(new StrictHeadParser(),
        StrictHeadParser.TargetForm.PROXY, java.time.Duration.ofSeconds(10)),
        new ChannelInboundHandlerAdapter() {
          @Override
          public void channelRead(ChannelHandlerContext ctx, Object msg) {
            messages.add(msg instanceof RequestHead h ? h.target() : msg);
            io.netty.util.ReferenceCountUtil.release(msg);
          }
        });

    ch.writeInbound(Unpooled.copiedBuffer(GET + SMUGGLE, StandardCharsets.ISO_8859_1));

    assertThat(messages).containsExactly("http://a.example/",
        io.netty.handler.codec.http.LastHttpContent.EMPTY_LAST_CONTENT);
    assertThat(ch.config().isAutoRead()).isFalse();
    ch.pipeline().get(StrictRequestDecoder.class).next();
    assertThat(messages).hasSize(3).last().isInstanceOf(ProxyFailure.class);
    assertThat(seen).isEmpty();
    ch.finishAndReleaseAll();
  }

  @Test
  void refusesAHeadNotCompleteWithinTheHeadTimeout() throws Exception {
    List<ProxyFailure> seen = new ArrayList<>();
    Recorder recorder = new Recorder();
    recorder.violations = seen;
    EmbeddedChannel ch = new EmbeddedChannel(new StrictRequestDecoder(new StrictHeadParser(),
        StrictHeadParser.TargetForm.PROXY, java.time.Duration.ofMillis(1)), recorder);
    ch.writeInbound(Unpooled.copiedBuffer("GET http://a.example/ HTTP/1.1\r\nHo",
        StandardCharsets.ISO_8859_1));
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (seen.isEmpty() && System.nanoTime() < deadline) {
      ch.runScheduledPendingTasks(); // the embedded loop's timers run when asked
    }

    assertThat(seen).singleElement().satisfies(f -> {
      assertThat(f.status()).isEqualTo(408);
      assertThat(f.details()).contains("timeouts.requestHead");
    });
    assertThat(recorder.text()).isEmpty();
    ch.finishAndReleaseAll();
  }

  @Test
  void readsOriginFormWithTheConnectAuthorityInsideATunnel() {
    Recorder recorder = new Recorder();
    List<ProxyFailure> seen = new ArrayList<>();
    recorder.violations = seen;
    List<RequestHead> heads = new ArrayList<>();
    EmbeddedChannel ch = new EmbeddedChannel(new StrictRequestDecoder(new StrictHeadParser(),
        new StrictHeadParser.TargetForm.Origin(new RequestHead.Authority("http", "a.example", 80),
            80), java.time.Duration.ofSeconds(10)),
        new ChannelInboundHandlerAdapter() {
          @Override
          public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof RequestHead h) {
              heads.add(h);
            }
            ctx.fireChannelRead(msg);
          }
        }, recorder);

    ch.writeInbound(Unpooled.copiedBuffer("GET /p?q=1 HTTP/1.1\r\nHost: a.example\r\n\r\n",
        StandardCharsets.ISO_8859_1));
    ch.runPendingTasks();
    ch.writeInbound(Unpooled.copiedBuffer("GET /x HTTP/1.1\r\nHost: b.example\r\n\r\n",
        StandardCharsets.ISO_8859_1));

    assertThat(heads).first().satisfies(h -> {
      assertThat(h.authority()).isEqualTo(new RequestHead.Authority("http", "a.example", 80));
      assertThat(RequestTarget.of(h).pathAndQuery()).isEqualTo("/p?q=1");
    });
    assertThat(seen).singleElement().satisfies(f ->
        assertThat(f.details()).contains("names another host"));
    ch.finishAndReleaseAll();
  }

  @Test
  void discardsBytesArrivingAfterARefusal() {
    StrictRequestDecoder guard = channel.pipeline().get(StrictRequestDecoder.class);
    ChannelHandlerContext ctx = channel.pipeline().context(guard);
    send(SMUGGLE);
    ByteBuf late = Unpooled.copiedBuffer(GET, StandardCharsets.ISO_8859_1);

    // A read already in flight when the close happened still reaches the guard.
    guard.channelRead(ctx, late);

    assertThat(downstream.text()).isEmpty();
    assertThat(late.refCnt()).isZero();
  }

  @Test
  void acceptsAHeadExactlyAtTheLimitsAndRefusesOneByteMore() {
    // Large enough that the guard's head buffer grows past its first size on the way.
    StrictHeadParser small = new StrictHeadParser(300, 400, 20);
    String line = "GET http://a.example/" + "p".repeat(270) + " HTTP/1.1";
    String headers = "X-A: 1234567890123\r\n".repeat(20);
    assertThat(line).hasSize(300);
    assertThat(headers).hasSize(400);

    assertThat(feedByteByByte(small, line + "\r\n" + headers + "\r\n")).isEmpty();
    assertThat(feedByteByByte(small, line + "\r\n" + headers + "X\r\n\r\n"))
        .singleElement().extracting(ProxyFailure::status).isEqualTo(431);
    assertThat(feedByteByByte(small, line + "p\r\n\r\n"))
        .singleElement().extracting(ProxyFailure::status).isEqualTo(414);
  }

  /** Feeds one byte per read through a fresh guard; returns its violations, checks the rest. */
  private static List<ProxyFailure> feedByteByByte(StrictHeadParser parser, String raw) {
    List<ProxyFailure> seen = new ArrayList<>();
    Recorder recorder = new Recorder();
    EmbeddedChannel ch = channel(parser, seen, recorder);
    for (int i = 0; i < raw.length() && ch.isOpen(); i++) {
      ch.writeInbound(Unpooled.copiedBuffer(raw.substring(i, i + 1), StandardCharsets.ISO_8859_1));
    }
    assertThat(recorder.text()).isEqualTo(seen.isEmpty() ? raw : "");
    ch.finishAndReleaseAll();
    return seen;
  }

  @Test
  void eitherForwardsOrRefusesRandomInputWithinItsLimits() {
    String[] pieces = {"GET ", "CONNECT ", "http://a.example/", "a.example:443", " HTTP/1.1",
        "\r\n", "\r", "\n", "a", ":", " ", "Content-Length: 3", "Transfer-Encoding: chunked",
        "0", "5", "\r\n\r\n", "Host: a.example"};
    StrictHeadParser small = new StrictHeadParser(24, 48, 4);
    java.util.Random random = new java.util.Random(20240611);
    for (int run = 0; run < 3000; run++) {
      StringBuilder input = new StringBuilder();
      for (int n = random.nextInt(30); n > 0; n--) {
        input.append(pieces[random.nextInt(pieces.length)]);
      }
      List<ProxyFailure> seen = new ArrayList<>();
      Recorder recorder = new Recorder();
      EmbeddedChannel ch = channel(small, seen, recorder);
      List<ByteBuf> reads = new ArrayList<>();
      for (int at = 0; at < input.length() && ch.isOpen(); ) {
        int to = Math.min(input.length(), at + 1 + random.nextInt(12));
        ByteBuf buf = Unpooled.copiedBuffer(input.substring(at, to), StandardCharsets.ISO_8859_1);
        reads.add(buf);
        ch.writeInbound(buf); // rethrows anything but the decoder's own refusals
        ch.runPendingTasks();
        at = to;
      }

      String context = "input " + input.toString().replace("\r", "\\r").replace("\n", "\\n");
      assertThat(ch.isOpen()).as(context).isEqualTo(seen.isEmpty());
      assertThat(seen).as(context).hasSizeLessThanOrEqualTo(1);
      assertThat(recorder.bytes.size()).as(context).isLessThanOrEqualTo(input.length() * 2);
      assertThat(reads).as(context).allSatisfy(buf -> assertThat(buf.refCnt()).isZero());
      ch.finishAndReleaseAll();
    }
  }
}
