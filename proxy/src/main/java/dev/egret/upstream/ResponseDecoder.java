package dev.egret.upstream;

import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpResponseDecoder;

/**
 * Netty's HTTP/1.1 response decoder, held stricter on what an upstream may send and told which
 * request it answers:
 * <ul>
 *   <li>Content-Length together with Transfer-Encoding: chunked is refused, not resolved in the
 *       chunked framing's favour as Netty does by default: a response framed two ways is a
 *       smuggling attempt or a broken server, and either way not something to relay (RFC 9112
 *       section 6.3 asks an intermediary to treat it as an error). Duplicate Content-Length values
 *       and bad chunk sizes are refused by Netty already; each arrives as a message whose decoder
 *       result failed, which the exchange answers with {@code http_protocol_error}.
 *   <li>The body of a response to HEAD is always empty, whatever its framing headers say. The
 *       exchange sets {@link #head} per request; Netty's own {@code HttpClientCodec} keeps a queue
 *       of methods instead, which a 1xx before the final answer puts out of step.
 * </ul>
 * One request at a time uses a connection, so one flag is enough.
 */
public final class ResponseDecoder extends HttpResponseDecoder {
  private boolean head;

  ResponseDecoder(int maxHeaderSize) {
    super(new HttpDecoderConfig()
        .setMaxInitialLineLength(8192)
        .setMaxHeaderSize(maxHeaderSize)
        .setMaxChunkSize(64 * 1024)
        .setAllowDuplicateContentLengths(false)
        .setStrictLineParsing(true));
  }

  /** The next response answers a HEAD request (true) or another method. */
  public void head(boolean head) {
    this.head = head;
  }

  @Override
  protected boolean isContentAlwaysEmpty(HttpMessage msg) {
    return head || super.isContentAlwaysEmpty(msg);
  }

  @Override
  protected void handleTransferEncodingChunkedWithContentLength(HttpMessage message) {
    // Netty turns this into a message whose decoder result failed, and discards what follows.
    throw new IllegalArgumentException("the response has both Content-Length and "
        + "Transfer-Encoding: chunked, so its length is ambiguous");
  }
}
