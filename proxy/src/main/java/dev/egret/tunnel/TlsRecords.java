package dev.egret.tunnel;

import io.netty.buffer.ByteBuf;

/**
 * Checks one direction of a tunnel at the TLS record layer, for the tunnel's whole life: every
 * byte must belong to a well-formed record (RFC 8446 section 5.1, RFC 5246 section 6.2), so no
 * plaintext can ride behind a valid hello. It reads five header bytes per record and, while the
 * handshake is still in the clear, the four-byte handshake message headers; record bodies are
 * skipped, so the cost does not grow with the data.
 *
 * <p>What it refuses: record types other than change_cipher_spec, alert, handshake and
 * application_data (heartbeat included); record versions other than 0x0301 to 0x0303; lengths
 * above 2^14 + 2048 or empty records other than application data; application data before the
 * handshake allows it; a second ClientHello (one more is allowed after a HelloRetryRequest);
 * clear handshake messages after a TLS 1.3 ServerHello, where every later message is encrypted.
 *
 * <p>Both directions share one {@link Handshake} so each knows what the other negotiated. Not
 * thread-safe: one tunnel's event loop.
 */
final class TlsRecords {
  static final int CHANGE_CIPHER_SPEC = 20;
  static final int ALERT = 21;
  static final int HANDSHAKE = 22;
  static final int APPLICATION_DATA = 23;
  /** RFC 5246's ciphertext bound, which also covers TLS 1.3's 2^14 + 256. */
  static final int MAX_RECORD = 16384 + 2048;
  private static final int CLIENT_HELLO = 1;
  private static final int SERVER_HELLO = 2;
  private static final int TLS13 = 0x0304;

  /** What the two directions have shown of the handshake so far. */
  static final class Handshake {
    /** The version the ServerHello chose, 0 until it is seen. */
    int version;
    boolean helloRetryRequest;
    /** The ServerHello that follows a HelloRetryRequest has been seen. */
    boolean secondServerHello;
    boolean clientEncrypting;
    boolean serverEncrypting;
    boolean earlyDataOffered;
    int clientHellos;
  }

  /** Where the clear handshake records of this direction go (a hello inspector), or null. */
  interface HandshakeBytes {
    void offer(ByteBuf buf, int index, int length);
  }

  private final boolean fromClient;
  private final Handshake hs;
  private final byte[] header = new byte[5];
  private int headerFill;
  private int type;
  private int remaining;
  /** The current record is a clear handshake record whose messages are followed. */
  private boolean clearHandshake;
  private final byte[] message = new byte[4];
  private int messageFill;
  private int messageRemaining;
  private HandshakeBytes listener;
  /** This direction (the server's) has shown its ServerHello's message header. */
  private boolean serverHelloSeen;
  private String refusal;

  TlsRecords(boolean fromClient, Handshake hs) {
    this.fromClient = fromClient;
    this.hs = hs;
  }

  /** Sends the bytes of this direction's clear handshake records to {@code l} (or stops). */
  void listen(HandshakeBytes l) {
    this.listener = l;
  }

  /**
   * Checks {@code buf}'s readable bytes (indexes untouched); returns null while the stream is
   * well formed, else the reason to cut, for good.
   */
  String check(ByteBuf buf) {
    int i = buf.readerIndex();
    int end = buf.writerIndex();
    while (i < end && refusal == null) {
      if (remaining == 0 && headerFill < 5) {
        header[headerFill++] = buf.getByte(i++);
        if (headerFill == 5) {
          refusal = startRecord();
          if (refusal == null && clearHandshake && listener != null) {
            ByteBuf h = io.netty.buffer.Unpooled.wrappedBuffer(header);
            listener.offer(h, 0, 5);
          }
          if (remaining == 0) {
            headerFill = 0;
          }
        }
        continue;
      }
      int n = Math.min(remaining, end - i);
      if (clearHandshake) {
        if (listener != null) {
          listener.offer(buf, i, n);
        }
        refusal = messages(buf, i, n);
      } else if (type == CHANGE_CIPHER_SPEC && n > 0 && !encrypting()
          && buf.getByte(i) != 1) {
        refusal = "change_cipher_spec record whose content is not 1";
      }
      i += n;
      remaining -= n;
      if (remaining == 0) {
        headerFill = 0;
      }
    }
    return refusal;
  }

  private boolean encrypting() {
    return fromClient ? hs.clientEncrypting : hs.serverEncrypting;
  }

  private String startRecord() {
    type = header[0] & 0xff;
    int version = ((header[1] & 0xff) << 8) | (header[2] & 0xff);
    remaining = ((header[3] & 0xff) << 8) | (header[4] & 0xff);
    clearHandshake = false;
    String who = fromClient ? "the client" : "the server";
    if (type < CHANGE_CIPHER_SPEC || type > APPLICATION_DATA) {
      return who + " sent a record of type " + type + ", which is not a TLS record type"
          + (type == 24 ? " Egret relays (heartbeat)" : " (plaintext?)");
    }
    if (version < 0x0301 || version > 0x0303) {
      return String.format("%s sent a record with version 0x%04x, not a TLS 1.0-1.3 record",
          who, version);
    }
    if (remaining > MAX_RECORD) {
      return who + " sent a record of " + remaining + " bytes, over TLS's " + MAX_RECORD;
    }
    if (remaining == 0 && type != APPLICATION_DATA) {
      return who + " sent an empty " + typeName(type) + " record";
    }
    boolean tls13 = hs.version == TLS13;
    switch (type) {
      case CHANGE_CIPHER_SPEC -> {
        if (!encrypting() && remaining != 1) {
          return who + " sent a change_cipher_spec record of " + remaining + " bytes, not 1";
        }
        if (!tls13 && hs.version != 0) {
          // TLS 1.2: what follows this side's change_cipher_spec is encrypted. In TLS 1.3 it is
          // only the middlebox-compatibility record and changes nothing.
          if (fromClient) {
            hs.clientEncrypting = true;
          } else {
            hs.serverEncrypting = true;
          }
        }
      }
      case APPLICATION_DATA -> {
        boolean allowed = tls13 || encrypting()
            || (fromClient && hs.version == 0 && hs.earlyDataOffered);
        if (!allowed) {
          return who + " sent application data before the TLS handshake allowed it";
        }
      }
      case HANDSHAKE -> {
        if (!encrypting()) {
          // After a TLS 1.3 ServerHello every handshake message is encrypted; only the real
          // ServerHello that answers a HelloRetryRequest may still come in the clear.
          boolean secondHelloDue = hs.helloRetryRequest && !hs.secondServerHello;
          if (tls13 && !fromClient && serverHelloSeen && !secondHelloDue) {
            return "the server sent a clear handshake record after its TLS 1.3 ServerHello";
          }
          clearHandshake = true;
        }
      }
      default -> {
        // alerts may come at any time
      }
    }
    return null;
  }

  /** Follows handshake message headers through a clear handshake record's bytes. */
  private String messages(ByteBuf buf, int from, int n) {
    int i = from;
    int end = from + n;
    while (i < end) {
      if (messageRemaining > 0) {
        int k = Math.min(messageRemaining, end - i);
        messageRemaining -= k;
        i += k;
        continue;
      }
      message[messageFill++] = buf.getByte(i++);
      if (messageFill < 4) {
        continue;
      }
      messageFill = 0;
      int msgType = message[0] & 0xff;
      messageRemaining = ((message[1] & 0xff) << 16) | ((message[2] & 0xff) << 8)
          | (message[3] & 0xff);
      String refused = message(msgType);
      if (refused != null) {
        return refused;
      }
    }
    return null;
  }

  private String message(int msgType) {
    boolean tls13 = hs.version == TLS13;
    if (fromClient) {
      if (msgType == CLIENT_HELLO) {
        hs.clientHellos++;
        int allowed = hs.helloRetryRequest ? 2 : 1;
        if (hs.clientHellos > allowed) {
          return "the client sent another ClientHello in the tunnel; only one is allowed "
              + "(two after a HelloRetryRequest)";
        }
      } else if (tls13) {
        return "the client sent a clear handshake message (type " + msgType
            + ") after the TLS 1.3 ServerHello, where every later message is encrypted";
      }
    } else if (msgType == SERVER_HELLO) {
      if (serverHelloSeen && hs.helloRetryRequest) {
        hs.secondServerHello = true;
      }
      serverHelloSeen = true;
    }
    return null;
  }

  private static String typeName(int type) {
    return switch (type) {
      case CHANGE_CIPHER_SPEC -> "change_cipher_spec";
      case ALERT -> "alert";
      case HANDSHAKE -> "handshake";
      default -> "application_data";
    };
  }
}
