package dev.egret.tunnel;

import static dev.egret.tunnel.HelloBytes.bytes;
import static dev.egret.tunnel.HelloBytes.clientHelloRecord;
import static dev.egret.tunnel.HelloBytes.clientSupportedVersions;
import static dev.egret.tunnel.HelloBytes.concat;
import static dev.egret.tunnel.HelloBytes.extension;
import static dev.egret.tunnel.HelloBytes.handshake;
import static dev.egret.tunnel.HelloBytes.record;
import static dev.egret.tunnel.HelloBytes.serverHelloBody;
import static dev.egret.tunnel.HelloBytes.serverName;
import static dev.egret.tunnel.HelloBytes.u16;
import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import dev.egret.testing.LeakRecorder;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Both directions of a tunnel fed any bytes, in any reads, in any order: the {@link
 * RecordChecker}s never throw, hand on only a prefix of what each side sent, and that prefix is
 * well-formed TLS that opens with a hello the policy accepts; nothing of a refused read passes;
 * and no buffer leaks (each one offered is released by the end, and Netty's paranoid leak detector
 * reports nothing). The fuzzer may start either side with a real hello, so it reaches the states
 * after the handshake too. Regression inputs in {@code RecordCheckerFuzzTestInputs/} run in every
 * {@code mvn test}.
 */
class RecordCheckerFuzzTest {
  private static final String HOST = "api.partner.test";
  private static final ByteBufAllocator ALLOC = PooledByteBufAllocator.DEFAULT;
  private static final byte[] HRR_RANDOM = bytes(
      0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8,
      0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8,
      0x33, 0x9c);

  /** What the leaks of this test's buffers and of the checkers' own mention in their records. */
  private static final String MARKER = RecordChecker.class.getName();
  private static ResourceLeakDetector.Level levelBefore;

  @BeforeAll
  static void trackEveryBuffer() {
    levelBefore = ResourceLeakDetector.getLevel();
    ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
  }

  /** A leak shows once its buffer is collected: collect, then allocate so Netty looks. */
  @AfterAll
  static void noBufferOfThisTestLeaked() {
    try {
      for (int i = 0; i < 3; i++) {
        System.gc();
        ALLOC.buffer(1).release();
      }
      assertThat(LeakRecorder.installed()).as("leak recorder installed").isTrue();
      assertThat(LeakRecorder.leaks(MARKER)).as("leaks Netty's detector reported").isEmpty();
    } finally {
      ResourceLeakDetector.setLevel(levelBefore);
    }
  }

  @FuzzTest
  void passesOnlyWellFormedRecordsAndLeaksNothing(FuzzedDataProvider data) {
    HelloPolicy policy = new HelloPolicy(HOST, 0x0303, data.consumeBoolean());
    RecordChecker[] pair = RecordChecker.pair(policy, ALLOC);
    ByteArrayOutputStream[] sent = {new ByteArrayOutputStream(), new ByteArrayOutputStream()};
    ByteArrayOutputStream[] passed = {new ByteArrayOutputStream(), new ByteArrayOutputStream()};
    List<ByteBuf> offered = new ArrayList<>();

    List<byte[]> script = new ArrayList<>();
    List<Integer> sides = new ArrayList<>();
    switch (data.consumeInt(0, 3)) {
      case 1 -> start(script, sides, 0, clientHelloRecord(serverName(HOST),
          clientSupportedVersions(0x0304, 0x0303), extension(42, new byte[0])));
      case 2 -> {
        start(script, sides, 0, clientHelloRecord(serverName(HOST),
            clientSupportedVersions(0x0304, 0x0303)));
        start(script, sides, 1, serverFlight(data.consumeInt(0, 2)));
      }
      case 3 -> {
        start(script, sides, 0, clientHelloRecord(serverName(HOST)));
        start(script, sides, 1, record(22, 0x0303, concat(
            handshake(2, serverHelloBody(0x0303, new byte[32], 0xc02f)),
            handshake(14, new byte[0]))));
      }
      default -> { }
    }
    int steps = data.consumeInt(0, 24);
    for (int i = 0; i < steps; i++) {
      sides.add(data.consumeBoolean() ? 0 : 1);
      script.add(data.consumeBytes(data.consumeInt(1, 4096)));
    }

    for (int i = 0; i < script.size(); i++) {
      int side = sides.get(i);
      byte[] chunk = script.get(i);
      if (chunk.length == 0) {
        continue;
      }
      RecordChecker checker = pair[side];
      boolean refusedBefore = checker.failure() != null;
      sent[side].writeBytes(chunk);
      ByteBuf buf = ALLOC.buffer(chunk.length).writeBytes(chunk);
      offered.add(buf);
      ByteBuf out = checker.offer(buf);
      if (checker.failure() != null) {
        assertThat(out).as("nothing of a refused read passes").isNull();
        assertThat(checker.failure().kind()).isNotNull();
        assertThat(checker.failure().details()).isNotBlank();
        assertThat(checker.state()).isEqualTo(RecordChecker.State.REFUSED);
      }
      if (refusedBefore) {
        assertThat(out).isNull();
      }
      if (out != null) {
        assertThat(out.isReadable()).isTrue();
        passed[side].writeBytes(ByteBufUtil.getBytes(out));
        out.release();
      }
    }
    pair[0].release();
    pair[1].release();

    for (int side = 0; side < 2; side++) {
      byte[] all = sent[side].toByteArray();
      byte[] through = passed[side].toByteArray();
      assertThat(Arrays.copyOf(all, through.length)).as("what passed is what was sent, in order")
          .isEqualTo(through);
      assertWellFormed(through);
    }
    assertOpensWithAcceptedHellos(policy, passed[0].toByteArray(), passed[1].toByteArray());
    for (ByteBuf b : offered) {
      assertThat(b.refCnt()).as("every buffer offered was released").isZero();
    }
    assertThat(LeakRecorder.leaks(MARKER)).as("leaks Netty's detector reported").isEmpty();
  }

  private static void start(List<byte[]> script, List<Integer> sides, int side, byte[] bytes) {
    script.add(bytes);
    sides.add(side);
  }

  /** A server's first flight: TLS 1.3 ServerHello with its compatibility CCS, TLS 1.2, or HRR. */
  private static byte[] serverFlight(int kind) {
    byte[] versions = extension(43, u16(0x0304));
    return switch (kind) {
      case 0 -> concat(record(22, 0x0303, handshake(2,
          serverHelloBody(0x0303, new byte[32], 0x1301, versions))), bytes(20, 3, 3, 0, 1, 1));
      case 1 -> record(22, 0x0303, concat(
          handshake(2, serverHelloBody(0x0303, new byte[32], 0xc02f)), handshake(11, bytes(0, 0, 0)),
          handshake(14, new byte[0])));
      default -> record(22, 0x0303, handshake(2,
          serverHelloBody(0x0303, HRR_RANDOM, 0x1301, versions)));
    };
  }

  /**
   * Every record that passed has a TLS type, version and length; a record still open at the end
   * has at least its whole header through (a header is never passed in part).
   */
  private static void assertWellFormed(byte[] through) {
    int at = 0;
    while (at < through.length) {
      assertThat(through.length - at).as("a record header passed in part at %d", at)
          .isGreaterThanOrEqualTo(5);
      int type = through[at] & 0xff;
      int version = ((through[at + 1] & 0xff) << 8) | (through[at + 2] & 0xff);
      int length = ((through[at + 3] & 0xff) << 8) | (through[at + 4] & 0xff);
      assertThat(type).isBetween(20, 23);
      assertThat(version).isBetween(0x0301, 0x0303);
      assertThat(length).isLessThanOrEqualTo(RecordChecker.MAX_RECORD);
      if (type != 23) {
        assertThat(length).isPositive();
      }
      if (at + 5 + length > through.length) {
        // Only records after the hello stream in parts: the hello's pass whole, after judgement.
        assertThat(at).as("the hello's record passed in part").isPositive();
      }
      at += 5 + length;
    }
  }

  private static void assertOpensWithAcceptedHellos(HelloPolicy policy, byte[] fromClient,
      byte[] fromServer) {
    if (fromClient.length > 0) {
      HelloInspection.OfClient first = new ClientHelloInspector().offer(fromClient);
      assertThat(first).as("the client's first bytes that passed").isInstanceOf(
          HelloInspection.ClientHello.class);
      assertThat(policy.judge((HelloInspection.ClientHello) first)).isNull();
    }
    if (fromServer.length > 0) {
      assertThat(fromClient).as("the server passes only after the client's hello").isNotEmpty();
      HelloInspection.OfServer first = new ServerHelloInspector().offer(fromServer);
      if (first instanceof HelloInspection.Alert alert) {
        assertThat(alert.fatal()).isTrue();
        assertThat(fromServer).hasSize(7);
      } else {
        assertThat(first).isInstanceOf(HelloInspection.ServerHello.class);
        assertThat(policy.judge((HelloInspection.ServerHello) first)).isNull();
      }
    }
  }
}
