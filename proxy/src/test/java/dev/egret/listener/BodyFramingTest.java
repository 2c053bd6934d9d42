package dev.egret.listener;

import dev.egret.exchange.RequestHead;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.egret.failure.ProxyFailure;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.nio.charset.StandardCharsets;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Where a body ends, and which chunked codings are refused. */
class BodyFramingTest {
  private static final String NEXT = "GET http://a.example/ HTTP/1.1\r\n\r\n";

  static Stream<Arguments> wellFormedChunkedBodies() {
    return Stream.of(
        Arguments.of("one chunk", "5\r\nhello\r\n0\r\n\r\n"),
        Arguments.of("no chunks", "0\r\n\r\n"),
        Arguments.of("upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n"),
        Arguments.of("lower-case hex", "a\r\n0123456789\r\n0\r\n\r\n"),
        Arguments.of("leading zeros", "0005\r\nhello\r\n000\r\n\r\n"),
        Arguments.of("data holding CRLF and a fake last chunk", "7\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n"),
        Arguments.of("extension without value", "5;x\r\nhello\r\n0\r\n\r\n"),
        Arguments.of("extension with token", "5;name=value;n2=v2\r\nhello\r\n0;last\r\n\r\n"),
        Arguments.of("extension with quoted string", "5;a=\"x;y \\\" z\"\r\nhello\r\n0\r\n\r\n"),
        Arguments.of("trailers", "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-B:\t1\r\n\r\n"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("wellFormedChunkedBodies")
  void findsTheEndOfAChunkedBody(String name, String body) {
    ByteBuf buf = bytes(body + NEXT);
    BodyFraming framing = BodyFraming.of(RequestHead.Framing.CHUNKED);

    int consumed = framing.consume(buf, 0, buf.writerIndex());

    assertThat(consumed).isEqualTo(body.length());
    assertThat(framing.done()).isTrue();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("wellFormedChunkedBodies")
  void findsTheSameEndWhenFedByteByByte(String name, String body) {
    ByteBuf buf = bytes(body + NEXT);
    BodyFraming framing = BodyFraming.of(RequestHead.Framing.CHUNKED);

    int consumed = 0;
    for (int i = 0; i < buf.writerIndex() && !framing.done(); i++) {
      consumed += framing.consume(buf, i, i + 1);
    }

    assertThat(consumed).isEqualTo(body.length());
    assertThat(framing.done()).isTrue();
  }

  @Test
  void waitsForMoreBytesOfAnUnfinishedBody() {
    ByteBuf buf = bytes("5\r\nhel");
    BodyFraming framing = BodyFraming.of(RequestHead.Framing.CHUNKED);

    assertThat(framing.consume(buf, 0, buf.writerIndex())).isEqualTo(6);
    assertThat(framing.done()).isFalse();
  }

  static Stream<Arguments> malformedChunkedBodies() {
    return Stream.of(
        Arguments.of("plus sign", "+5\r\nhello\r\n0\r\n\r\n", "not a hexadecimal number"),
        Arguments.of("minus sign", "-1\r\nx\r\n0\r\n\r\n", "not a hexadecimal number"),
        Arguments.of("leading space", " 5\r\nhello\r\n0\r\n\r\n", "not a hexadecimal number"),
        Arguments.of("trailing space", "5 \r\nhello\r\n0\r\n\r\n", "unexpected character"),
        Arguments.of("space before extension", "5 ;a\r\nhello\r\n0\r\n\r\n", "unexpected character"),
        Arguments.of("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", "unexpected character"),
        Arguments.of("not hex", "g\r\nx\r\n0\r\n\r\n", "not a hexadecimal number"),
        Arguments.of("empty size line", "\r\nhello\r\n0\r\n\r\n", "not a hexadecimal number"),
        // Past 2^31-1: a next hop that keeps the size in an int refuses it or, like Netty
        // 4.2.9's decoder for 100000000, wraps it to 0 and ends the body there.
        Arguments.of("size past 2^31-1", "80000000\r\n", "overflows"),
        Arguments.of("size 2^32", "100000000\r\n\r\n", "overflows"),
        Arguments.of("size past 2^31-1 after leading zeros", "0000080000000\r\n", "overflows"),
        Arguments.of("overflowing size", "8000000000000000\r\n", "overflows"),
        Arguments.of("far overflowing size", "fffffffffffffffffff\r\n", "overflows"),
        Arguments.of("bare LF after size", "5\nhello\r\n0\r\n\r\n", "bare LF"),
        Arguments.of("bare CR in size line", "5\rx\r\nhello", "bare CR"),
        Arguments.of("data too long", "5\r\nhelloX\r\n0\r\n\r\n", "not followed by CRLF"),
        Arguments.of("data ends in bare LF", "5\r\nhello\n0\r\n\r\n", "not followed by CRLF"),
        Arguments.of("data ends in CR only", "5\r\nhello\r0\r\n\r\n", "not followed by CRLF"),
        Arguments.of("empty extension name", "5;\r\nhello\r\n0\r\n\r\n", "malformed chunk extension"),
        Arguments.of("empty extension value", "5;a=\r\nhello\r\n0\r\n\r\n", "malformed chunk extension"),
        Arguments.of("space in extension", "5;a = b\r\nhello\r\n0\r\n\r\n", "unexpected character"),
        Arguments.of("unterminated quote", "5;a=\"x\r\nhello\r\n0\r\n\r\n", "unterminated quoted string"),
        Arguments.of("NUL in quoted extension", "5;a=\"x\u0000\"\r\nhello", "control character"),
        Arguments.of("size line too long", "0".repeat(5000) + "5\r\nhello", "longer than 4096"),
        Arguments.of("bare LF ends the trailers", "0\r\n\n", "bare LF"),
        Arguments.of("obs-fold in trailers", "0\r\nX-A: 1\r\n 2\r\n\r\n", "obsolete line folding"),
        Arguments.of("trailer without colon", "0\r\nX-A\r\n\r\n", "without a colon"),
        Arguments.of("space before trailer colon", "0\r\nX-A : 1\r\n\r\n", "white space before"),
        Arguments.of("Content-Length trailer", "0\r\nContent-Length: 5\r\n\r\n", "not allowed"),
        Arguments.of("Transfer-Encoding trailer", "0\r\ntransfer-encoding: chunked\r\n\r\n",
            "not allowed"),
        Arguments.of("Host trailer", "0\r\nHost: b.example\r\n\r\n", "not allowed"),
        Arguments.of("NUL in trailer value", "0\r\nX-A: a\u0000\r\n\r\n", "control character"),
        Arguments.of("too many trailers", "0\r\n" + "X-T: v\r\n".repeat(101) + "\r\n",
            "trailer section is too large"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("malformedChunkedBodies")
  void refusesMalformedChunkedCoding(String name, String body, String details) {
    ByteBuf buf = bytes(body);
    BodyFraming framing = BodyFraming.of(RequestHead.Framing.CHUNKED);

    ProxyFailure failure = catchThrowableOfType(ProxyFailure.class,
        () -> framing.consume(buf, 0, buf.writerIndex()));

    assertThat(failure).isNotNull();
    assertThat(failure.status()).isEqualTo(400);
    assertThat(failure.details()).contains(details);
  }

  @Test
  void countsAContentLengthBodyAcrossBuffers() {
    BodyFraming framing = BodyFraming.of(RequestHead.Framing.contentLength(10));
    ByteBuf first = bytes("0123456");
    ByteBuf second = bytes("789" + NEXT);

    assertThat(framing.consume(first, 0, first.writerIndex())).isEqualTo(7);
    assertThat(framing.done()).isFalse();
    assertThat(framing.consume(second, 0, second.writerIndex())).isEqualTo(3);
    assertThat(framing.done()).isTrue();
  }

  @Test
  void honoursAbsoluteIndexes() {
    BodyFraming framing = BodyFraming.of(RequestHead.Framing.CHUNKED);
    ByteBuf buf = bytes("XXXX1\r\na\r\n0\r\n\r\nYY");

    assertThat(framing.consume(buf, 4, buf.writerIndex())).isEqualTo(11);
    assertThat(framing.done()).isTrue();
  }

  @Test
  void endsAtOnceWithoutABody() {
    assertThat(BodyFraming.of(RequestHead.Framing.NONE).done()).isTrue();
    assertThat(BodyFraming.of(RequestHead.Framing.contentLength(0)).done()).isTrue();
  }

  @Test
  void passesTheLargestChunkWithoutBufferingIt() {
    BodyFraming framing = BodyFraming.of(RequestHead.Framing.CHUNKED);
    ByteBuf size = bytes("007fffffff\r\n");
    ByteBuf data = Unpooled.wrappedBuffer(new byte[1 << 16]);

    assertThat(framing.consume(size, 0, size.writerIndex())).isEqualTo(size.writerIndex());
    for (int i = 0; i < 16; i++) {
      assertThat(framing.consume(data, 0, data.writerIndex())).isEqualTo(1 << 16);
    }
    assertThat(framing.done()).isFalse();
  }

  private static ByteBuf bytes(String s) {
    return Unpooled.wrappedBuffer(s.getBytes(StandardCharsets.ISO_8859_1));
  }
}
