package dev.egret.tunnel;

import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufUtil;
import io.netty.handler.codec.ByteToMessageDecoder;

/**
 * One direction of a tunnel at the TLS record layer: offer it each chunk that direction's socket
 * read, and relay only what it hands back. Make the two with {@link #pair}:
 *
 * <pre>{@code
 * RecordChecker[] both = RecordChecker.pair(policy, alloc);
 * ByteBuf passed = both[0].offer(chunkFromDownstream);   // null while held, or after a refusal
 * if (both[0].failure() != null) cut(both[0].failure());
 * else if (passed != null) upstream.write(passed);
 * }</pre>
 *
 * <p>Nothing reaches the other side before it is judged. Until this direction's hello (the
 * ClientHello, or the ServerHello) is whole and judged by its inspector and the {@link
 * HelloPolicy}, every byte is held; after a HelloRetryRequest, the hello that answers it is held
 * and judged the same way. While the handshake is in the clear, each handshake or
 * change_cipher_spec record is held until it is whole and its message headers are checked. Once
 * the direction encrypts, only record headers are read: bodies are skipped and handed on as they
 * come, without a copy, so the cost does not grow with the data (a header cut by a read boundary
 * is the one thing held, at most four bytes).
 *
 * <p>What it refuses, for the tunnel's whole life: bytes that are not TLS records (types other
 * than change_cipher_spec, alert, handshake and application_data, heartbeat included; record
 * versions other than 0x0301 to 0x0303; lengths above 2^14 + 2048; empty records other than
 * application data); application data before the handshake allows it; a ClientHello or
 * ServerHello other than the ones judged; a record of another type inside a handshake message;
 * clear handshake records after a TLS 1.3 ServerHello; and a TLS 1.2 change_cipher_spec before
 * its side's keys can exist (the client's before its ClientKeyExchange, unless the server resumed
 * a session; the server's after a full flight, before the client's), since after it the checker
 * can no longer read the handshake and would pass a clear hello as if it were encrypted.
 *
 * <p>Not thread-safe: both directions run on the tunnel's one event loop.
 */
final class RecordChecker {
  /** Where a direction is in its handshake; decides what each new record may be. */
  enum State {
    /** Nothing judged yet: every byte is held until this side's hello is whole and judged. */
    AWAITING_HELLO,
    /** The hello passed and the handshake is still clear: records are held until whole. */
    HANDSHAKE,
    /** After a HelloRetryRequest: the next hello is held and judged like the first. */
    AWAITING_RETRY_HELLO,
    /** This side encrypts: headers are checked, bodies streamed. */
    ENCRYPTED,
    /** The server's fatal alert went through in place of its hello: nothing may follow. */
    ENDED,
    /** Refused for good: {@link #failure()} says why; everything offered is released. */
    REFUSED
  }

  static final int CHANGE_CIPHER_SPEC = 20;
  static final int ALERT = 21;
  static final int HANDSHAKE = 22;
  static final int APPLICATION_DATA = 23;
  /** RFC 5246's ciphertext bound, which also covers TLS 1.3's 2^14 + 256. */
  static final int MAX_RECORD = 16384 + 2048;
  private static final int HEADER = 5;
  private static final int TLS13 = 0x0304;
  private static final int CLIENT_HELLO = 1;
  private static final int SERVER_HELLO = 2;
  private static final int SERVER_HELLO_DONE = 14;
  private static final int CLIENT_KEY_EXCHANGE = 16;
  /** Held bytes past which a peer that never completes its hello is cut. */
  static final int MAX_HELD = HandshakeReassembler.LIMIT + HEADER + MAX_RECORD;

  /** What both directions have shown of the handshake: one per tunnel, shared by the pair. */
  private static final class Shared {
    /** The version the ServerHello (or HelloRetryRequest) chose, 0 until one passed. */
    int version;
    boolean earlyDataOffered;
    /** TLS 1.2: the client sent its ClientKeyExchange, so its change_cipher_spec may follow. */
    boolean clientKeyExchange;
    /** TLS 1.2: the server sent ServerHelloDone, a full handshake (no resumption). */
    boolean serverHelloDone;
  }

  private final boolean fromClient;
  private final String who;
  private final HelloPolicy policy;
  private final ByteBufAllocator alloc;
  private final Shared shared;
  private RecordChecker peer;
  private State state = State.AWAITING_HELLO;
  private ProxyFailure failure;

  /** The inspector of the hello being judged, until its verdict; exactly one is non-null then. */
  private ClientHelloInspector clientInspector;
  private ServerHelloInspector serverInspector;
  /** The hello inspected for this direction has shown its handshake message header. */
  private boolean helloMessageSeen;
  /** The last ServerHello that passed (the server's direction), or null. */
  private HelloInspection.ServerHello serverHello;
  /** The server's fatal alert that went through in place of its hello ({@link State#ENDED}). */
  private HelloInspection.Alert endingAlert;
  /** Bytes this direction has offered so far, passed or held. */
  private long offered;

  // The record being read. A header can be cut by a read, so it is gathered here.
  private final byte[] header = new byte[HEADER];
  private int headerFill;
  private int type;
  private int recordLeft;
  /** The current record is held until it is whole (and judged). */
  private boolean holding;
  /** The current record's bytes go to the hello inspector. */
  private boolean feeding;
  /** Stream offset of the current record's first header byte. */
  private long recordStart;

  // Handshake messages inside clear handshake records; they may span records.
  private final byte[] message = new byte[4];
  private int messageFill;
  private int messageLeft;

  // The stream: bytes up to `passed` were handed on; `held` has the ones after, up to `scanned`.
  private ByteBuf held;
  private long passed;
  private long scanned;
  /**
   * Nothing at or after this stream offset passes until the hello is judged; -1: none. From the
   * first byte (0) until the first hello passes.
   */
  private long pinnedAt = 0;

  private RecordChecker(boolean fromClient, HelloPolicy policy, ByteBufAllocator alloc,
      Shared shared) {
    this.fromClient = fromClient;
    this.who = fromClient ? "the client" : "the server";
    this.policy = policy;
    this.alloc = alloc;
    this.shared = shared;
    if (fromClient) {
      clientInspector = new ClientHelloInspector();
    } else {
      serverInspector = new ServerHelloInspector();
    }
  }

  /** The client's checker at [0], the server's at [1], sharing what each shows of the handshake. */
  static RecordChecker[] pair(HelloPolicy policy, ByteBufAllocator alloc) {
    Shared shared = new Shared();
    RecordChecker client = new RecordChecker(true, policy, alloc, shared);
    RecordChecker server = new RecordChecker(false, policy, alloc, shared);
    client.peer = server;
    server.peer = client;
    return new RecordChecker[] {client, server};
  }

  State state() {
    return state;
  }

  /** Why this direction was refused, or null. */
  ProxyFailure failure() {
    return failure;
  }

  /** The last ServerHello that passed (server's checker only), or null. */
  HelloInspection.ServerHello serverHello() {
    return serverHello;
  }

  /** The server's fatal alert that ended the handshake before its hello, or null. */
  HelloInspection.Alert endingAlert() {
    return endingAlert;
  }

  /** Bytes this direction has sent so far, whether they passed or not. */
  long offered() {
    return offered;
  }

  /** This direction's hello (and the one that answered a HelloRetryRequest) has passed. */
  boolean helloPassed() {
    return state == State.HANDSHAKE || state == State.ENCRYPTED;
  }

  /**
   * Takes the next bytes this direction sent (the checker owns {@code chunk} from here) and
   * returns the bytes that may now go to the other side, the caller's to write or release; null
   * when nothing may go yet, and after a refusal ({@link #failure()}) or the end ({@link
   * State#ENDED}). The bytes of a chunk with a refused record never pass, not even the records
   * before it in that chunk.
   */
  ByteBuf offer(ByteBuf chunk) {
    if (state == State.REFUSED || state == State.ENDED) {
      chunk.release();
      return null;
    }
    offered += chunk.readableBytes();
    ByteBuf buf = held == null ? chunk : ByteToMessageDecoder.MERGE_CUMULATOR.cumulate(alloc, held,
        chunk);
    held = null;
    int from = buf.readerIndex() + (int) (scanned - passed);
    long end = scan(buf, from, buf.writerIndex());
    if (failure == null && scanned - end > MAX_HELD) {
      refuse(ErrorKind.TLS_PROTOCOL_ERROR, who + " sent more than " + MAX_HELD
          + " bytes without completing its hello");
    }
    if (failure != null) {
      buf.release();
      return null;
    }
    int n = (int) (end - passed);
    passed = end;
    if (state == State.ENDED) {
      // Nothing may follow the alert: what came after it in the chunk is dropped with the tunnel.
      ByteBuf out = n == 0 ? null : buf.retainedSlice(buf.readerIndex(), n);
      buf.release();
      return out;
    }
    if (n == buf.readableBytes()) {
      return n == 0 ? releaseEmpty(buf) : buf;
    }
    if (n == 0) {
      held = buf;
      return null;
    }
    // Part passes, the rest (a record not yet whole, at most one record plus a header) is kept
    // in a buffer of its own, so the passed slice is never moved under the writer.
    ByteBuf out = buf.readRetainedSlice(n);
    held = alloc.buffer(buf.readableBytes());
    held.writeBytes(buf);
    buf.release();
    return out;
  }

  /** Releases what is held; the tunnel is over. */
  void release() {
    if (held != null) {
      held.release();
      held = null;
    }
  }

  private static ByteBuf releaseEmpty(ByteBuf buf) {
    buf.release();
    return null;
  }

  /**
   * Checks buf's bytes [from, to), the stream's next ones; returns the stream offset up to which
   * bytes may pass. {@code buf}'s reader index is at stream offset {@code passed}.
   */
  private long scan(ByteBuf buf, int from, int to) {
    long base = passed - buf.readerIndex();
    int i = from;
    while (i < to && failure == null && state != State.ENDED) {
      if (recordLeft == 0) {
        if (headerFill == 0) {
          recordStart = base + i;
        }
        header[headerFill++] = buf.getByte(i++);
        if (headerFill == HEADER) {
          headerFill = 0;
          openRecord();
        }
        continue;
      }
      int n = Math.min(recordLeft, to - i);
      if (holding && type == HANDSHAKE) {
        messages(buf, i, n);
      } else if (holding && type == CHANGE_CIPHER_SPEC && buf.getByte(i) != 1) {
        refuse(ErrorKind.TLS_PROTOCOL_ERROR, notTls("change_cipher_spec record whose content is "
            + "not 1"));
      }
      if (failure == null && feeding) {
        feed(ByteBufUtil.getBytes(buf, i, n), 0, n);
      }
      i += n;
      recordLeft -= n;
      if (recordLeft == 0 && failure == null) {
        closeRecord();
      }
    }
    scanned = base + i;
    long limit = scanned;
    if (headerFill > 0 || (recordLeft > 0 && holding)) {
      limit = recordStart;
    }
    if (pinnedAt >= 0) {
      limit = Math.min(limit, pinnedAt);
    }
    return limit;
  }

  /** A whole header is in {@link #header}: judge it and set up the record's body. */
  private void openRecord() {
    type = header[0] & 0xff;
    int version = ((header[1] & 0xff) << 8) | (header[2] & 0xff);
    recordLeft = ((header[3] & 0xff) << 8) | (header[4] & 0xff);
    holding = state == State.AWAITING_HELLO;
    feeding = state == State.AWAITING_HELLO
        || (state == State.AWAITING_RETRY_HELLO && type == HANDSHAKE && inspecting());
    if (feeding) {
      if (state == State.AWAITING_RETRY_HELLO && pinnedAt < 0) {
        pinnedAt = recordStart;
      }
      // The inspector reads the header first, so its reason (plaintext, SSLv2, not a hello)
      // names the problem better than the record rules below would.
      feed(header, 0, HEADER);
      if (failure != null) {
        return;
      }
    }
    String refused = recordRule(version);
    if (refused != null) {
      refuse(ErrorKind.TLS_PROTOCOL_ERROR, notTls(refused));
      return;
    }
    if (recordLeft == 0) {
      closeRecord();
    }
  }

  /** Null if a record of {@link #type} with this version and length may come now, else why not. */
  private String recordRule(int version) {
    if (type < CHANGE_CIPHER_SPEC || type > APPLICATION_DATA) {
      return who + " sent a record of type " + type + ", which is not a TLS record type"
          + (type == 24 ? " Egret relays (heartbeat)" : " (plaintext?)");
    }
    if (version < 0x0301 || version > 0x0303) {
      return String.format("%s sent a record with version 0x%04x, not a TLS 1.0-1.3 record",
          who, version);
    }
    if (recordLeft > MAX_RECORD) {
      return who + " sent a record of " + recordLeft + " bytes, over TLS's " + MAX_RECORD;
    }
    if (recordLeft == 0 && type != APPLICATION_DATA) {
      return who + " sent an empty " + typeName(type) + " record";
    }
    if (type != HANDSHAKE && (messageFill > 0 || messageLeft > 0)) {
      // RFC 8446 5.1: handshake messages must not be interleaved with other record types.
      return who + " sent a " + typeName(type) + " record inside a handshake message";
    }
    boolean tls13 = shared.version == TLS13;
    boolean encrypted = state == State.ENCRYPTED;
    switch (type) {
      case CHANGE_CIPHER_SPEC -> {
        if (encrypted && !tls13) {
          return null; // TLS 1.2 renegotiation: encrypted like everything else now
        }
        if (recordLeft != 1) {
          return who + " sent a change_cipher_spec record of " + recordLeft + " bytes, not 1";
        }
        holding = true;
        return shared.version == 0 || tls13 ? null : changeCipherSpecRule();
      }
      case APPLICATION_DATA -> {
        boolean earlyData = fromClient && state == State.HANDSHAKE && shared.version == 0
            && shared.earlyDataOffered;
        return encrypted || earlyData ? null
            : who + " sent application data before the TLS handshake allowed it";
      }
      case HANDSHAKE -> {
        if (encrypted) {
          return tls13 ? who + " sent a clear handshake record after "
              + (fromClient ? "the" : "its") + " TLS 1.3 ServerHello, where every later message "
              + "is encrypted" : null;
        }
        holding = true;
        return null;
      }
      default -> {
        return null; // an alert may come at any time
      }
    }
  }

  /** TLS 1.2: may this side's change_cipher_spec, after which it encrypts, come now? */
  private String changeCipherSpecRule() {
    if (fromClient) {
      return shared.clientKeyExchange || peer.state == State.ENCRYPTED ? null
          : "the client sent change_cipher_spec before its ClientKeyExchange (and the server "
              + "resumed no session)";
    }
    return !shared.serverHelloDone || peer.state == State.ENCRYPTED ? null
        : "the server sent change_cipher_spec after a full handshake flight, before the client's";
  }

  /** The current record is whole. */
  private void closeRecord() {
    if (type == CHANGE_CIPHER_SPEC && holding && state == State.HANDSHAKE
        && shared.version != 0 && shared.version != TLS13) {
      state = State.ENCRYPTED;
      messageFill = 0;
      messageLeft = 0;
    }
    holding = false;
    feeding = false;
  }

  /** Follows handshake message headers through a clear handshake record's bytes. */
  private void messages(ByteBuf buf, int from, int n) {
    int i = from;
    int end = from + n;
    while (i < end && failure == null) {
      if (messageLeft > 0) {
        int k = Math.min(messageLeft, end - i);
        messageLeft -= k;
        i += k;
        continue;
      }
      message[messageFill++] = buf.getByte(i++);
      if (messageFill < message.length) {
        continue;
      }
      messageFill = 0;
      messageLeft = ((message[1] & 0xff) << 16) | ((message[2] & 0xff) << 8) | (message[3] & 0xff);
      message(message[0] & 0xff);
    }
  }

  private void message(int msgType) {
    if (feeding && inspecting() && !helloMessageSeen) {
      helloMessageSeen = true; // the hello under inspection; its inspector checks its type
      return;
    }
    if (fromClient && msgType == CLIENT_HELLO) {
      refuse(ErrorKind.TLS_PROTOCOL_ERROR, notTls("the client sent another ClientHello in the "
          + "tunnel; only one is allowed (two after a HelloRetryRequest)"));
    } else if (!fromClient && msgType == SERVER_HELLO) {
      refuse(ErrorKind.TLS_PROTOCOL_ERROR, notTls("the server sent another ServerHello"));
    } else if (fromClient && msgType == CLIENT_KEY_EXCHANGE) {
      shared.clientKeyExchange = true;
    } else if (!fromClient && msgType == SERVER_HELLO_DONE) {
      shared.serverHelloDone = true;
    }
  }

  private boolean inspecting() {
    return clientInspector != null || serverInspector != null;
  }

  /** Gives the hello's inspector its next bytes, and acts on its verdict when there is one. */
  private void feed(byte[] bytes, int off, int len) {
    if (clientInspector != null) {
      HelloInspection.OfClient verdict = clientInspector.offer(bytes, off, len);
      if (verdict.done()) {
        clientInspector = null;
        judgeClient(verdict);
      }
    } else if (serverInspector != null) {
      HelloInspection.OfServer verdict = serverInspector.offer(bytes, off, len);
      if (verdict.done()) {
        serverInspector = null;
        judgeServer(verdict);
      }
    }
  }

  private void judgeClient(HelloInspection.OfClient verdict) {
    boolean retry = state == State.AWAITING_RETRY_HELLO;
    if (verdict instanceof HelloInspection.Refused r) {
      refuse(ErrorKind.TLS_PROTOCOL_ERROR, retry
          ? "the client's second ClientHello is malformed: " + r.reason()
          : "the client's first bytes in the tunnel to " + policy.host()
              + " are not a TLS ClientHello: " + r.reason());
      return;
    }
    HelloInspection.ClientHello hello = (HelloInspection.ClientHello) verdict;
    ProxyFailure refusal = policy.judge(hello);
    if (refusal != null) {
      fail(refusal);
      return;
    }
    if (!retry) {
      shared.earlyDataOffered = hello.earlyData();
    }
    pass(State.HANDSHAKE);
  }

  private void judgeServer(HelloInspection.OfServer verdict) {
    boolean retry = state == State.AWAITING_RETRY_HELLO;
    if (verdict instanceof HelloInspection.Refused r) {
      refuse(ErrorKind.TLS_PROTOCOL_ERROR, retry
          ? policy.host() + " sent a malformed ServerHello after its HelloRetryRequest: "
              + r.reason()
          : policy.host() + " did not answer with TLS: " + r.reason());
      return;
    }
    if (verdict instanceof HelloInspection.Alert alert) {
      if (!alert.fatal()) {
        // A warning alert does not end the handshake: what follows could be any ServerHello,
        // and the inspector's verdict is final, so the version check would be skipped.
        refuse(ErrorKind.TLS_PROTOCOL_ERROR, policy.host() + " sent a warning alert ("
            + alert.descriptionName() + ") before its ServerHello; the version cannot be checked");
        return;
      }
      // The server refused the handshake itself: its alert goes on so the client sees why, and
      // nothing may follow it. The alert record is whole here: its two bytes were the last fed.
      pinnedAt = -1;
      endingAlert = alert;
      state = State.ENDED;
      return;
    }
    HelloInspection.ServerHello hello = (HelloInspection.ServerHello) verdict;
    if (retry && hello.helloRetryRequest()) {
      refuse(ErrorKind.TLS_PROTOCOL_ERROR, policy.host() + " sent a second HelloRetryRequest");
      return;
    }
    if (retry && hello.version() != shared.version) {
      refuse(ErrorKind.TLS_PROTOCOL_ERROR, policy.host() + " chose " + hello.versionName()
          + " in its ServerHello but " + TlsVersions.name(shared.version)
          + " in its HelloRetryRequest");
      return;
    }
    ProxyFailure refusal = policy.judge(hello);
    if (refusal != null) {
      serverHello = hello; // the log still says what the server chose
      fail(refusal);
      return;
    }
    if (!peer.helloPassed()) {
      refuse(ErrorKind.TLS_PROTOCOL_ERROR, policy.host() + " sent a ServerHello before the "
          + "client's ClientHello had gone through");
      return;
    }
    serverHello = hello;
    shared.version = hello.version();
    if (hello.helloRetryRequest()) {
      // Both sides hello again: the client's second ClientHello is judged like the first, then
      // the server's real ServerHello.
      serverInspector = new ServerHelloInspector();
      helloMessageSeen = false;
      state = State.AWAITING_RETRY_HELLO;
      pinnedAt = -1; // the HelloRetryRequest goes on; the next hello is pinned when it starts
      peer.awaitRetryHello();
      return;
    }
    boolean tls13 = hello.version() == TLS13;
    pass(tls13 ? State.ENCRYPTED : State.HANDSHAKE);
    if (tls13) {
      peer.state = State.ENCRYPTED; // every later client handshake message is encrypted too
    }
  }

  private void awaitRetryHello() {
    clientInspector = new ClientHelloInspector();
    helloMessageSeen = false;
    state = State.AWAITING_RETRY_HELLO;
  }

  /** The hello passed: what was held for it may go, from the records it was in onwards. */
  private void pass(State next) {
    state = next;
    pinnedAt = -1;
    feeding = false;
  }

  private String notTls(String why) {
    return fromClient
        ? "the bytes from the client in the tunnel to " + policy.host() + " are not well-formed "
            + "TLS: " + why
        : policy.host() + " sent bytes in the tunnel that are not well-formed TLS: " + why;
  }

  private void refuse(ErrorKind kind, String why) {
    fail(new ProxyFailure(kind, why));
  }

  private void fail(ProxyFailure why) {
    if (failure == null) {
      failure = why;
    }
    state = State.REFUSED;
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
