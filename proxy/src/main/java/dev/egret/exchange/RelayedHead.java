package dev.egret.exchange;

import io.netty.buffer.ByteBuf;

/**
 * A final response head on its way to the downstream, already as bytes: the status line and the
 * header lines, each ending in CRLF, without {@code Connection} and without the empty line that
 * ends the head, which the downstream connection adds (it alone knows whether it closes after
 * this response). {@code framing} says how the body the downstream connection then writes is
 * delimited. The downstream connection owns {@code lines} once handed it.
 *
 * @param status the status code, for the hop's record
 */
public record RelayedHead(int status, ByteBuf lines, Framing framing) {
  /** How the downstream connection delimits the body it writes after this head. */
  public enum Framing {
    /** The head's Content-Length, or no body at all: the bytes are written as they come. */
    AS_DECLARED,
    /** Each data buffer becomes a chunk; the end writes the last chunk. */
    CHUNKED,
    /** The body ends when the connection closes (an HTTP/1.0 client and no Content-Length). */
    UNTIL_CLOSE
  }
}
