package dev.egret.listener;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.egret.exchange.DownstreamPeer;
import dev.egret.telemetry.IdentityFailures;
import dev.egret.telemetry.Telemetry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The PROXY header stage ({@link ProxyHeader}: Netty's decoder behind the signature check) under
 * fuzzed byte streams, in a Netty pipeline. For every input:
 *
 * <ul>
 *   <li>the connection ends one of three ways: one header read (the HTTP stage is built once,
 *       and gets exactly the bytes behind the header), refused (closed, exactly one failure
 *       counted, {@code missing} or {@code malformed}, and nothing passed on), or still waiting
 *       for the rest of a header, which the deadline then refuses as {@code timeout};
 *   <li>a header that names a client names an IP address and a port from 0 to 65535;
 *   <li>bytes behind the header that start a PROXY signature again are counted as {@code
 *       repeated} and still passed on (the request parser refuses them);
 *   <li>the outcome is the same whether the bytes come at once or in pieces of 1 to 16;
 *   <li>every input buffer is released.
 * </ul>
 *
 * <p>Regression inputs: {@code src/test/resources/dev/egret/listener/ProxyHeaderFuzzTestInputs};
 * fuzzing: {@code bench/fuzz.sh dev.egret.listener.ProxyHeaderFuzzTest}.
 */
class ProxyHeaderFuzzTest {
  private static final Duration DEADLINE = Duration.ofSeconds(10);

  @FuzzTest(maxDuration = "10m")
  void readsOneHeaderOrRefuses(byte[] input) {
    Run whole = Run.of(input, new int[0]);
    check(input, whole);
    Run split = Run.of(input, DecoderRun.piecesOf(input));
    assertThat(split.transcript()).as("the same in pieces").isEqualTo(whole.transcript());
  }

  private static void check(byte[] input, Run run) {
    run.released.forEach(b -> assertThat(b.refCnt()).as("input buffer released").isZero());
    for (String reason : run.failures) {
      assertThat(IdentityFailures.REASONS).contains(reason);
    }
    if (run.built == 0) {
      assertThat(run.passedOn.size()).as("nothing passed on without a header").isZero();
      assertThat(run.client).isNull();
      if (run.closedBeforeDeadline) {
        assertThat(run.failures).singleElement().isIn("missing", "malformed");
      } else {
        assertThat(run.failures).containsExactly("timeout");
      }
      return;
    }
    assertThat(run.built).as("the HTTP stage is built once").isOne();
    assertThat(run.closedBeforeDeadline).isFalse();
    byte[] rest = run.passedOn.toByteArray();
    assertThat(rest.length).isLessThan(input.length);
    assertThat(rest).as("the bytes behind the header, all of them, in order")
        .isEqualTo(Arrays.copyOfRange(input, input.length - rest.length, input.length));
    if (run.client != null) {
      assertThat(run.client.getAddress()).isNotNull();
      assertThat(run.client.getPort()).isBetween(0, 65535);
    }
    boolean again = startsLikeSignature(rest);
    assertThat(run.failures).isEqualTo(again ? List.of("repeated") : List.of());
  }

  private static boolean startsLikeSignature(byte[] rest) {
    byte[] v1 = {'P', 'R', 'O', 'X', 'Y', ' '};
    byte[] v2 = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    return startsWith(rest, v1) || startsWith(rest, v2);
  }

  private static boolean startsWith(byte[] b, byte[] prefix) {
    return b.length >= prefix.length
        && Arrays.equals(b, 0, prefix.length, prefix, 0, prefix.length);
  }

  /** One input through the stage, at once or in pieces, then the deadline. */
  private static final class Run {
    final List<ByteBuf> released = new ArrayList<>();
    final List<String> failures = new ArrayList<>();
    final ByteArrayOutputStream passedOn = new ByteArrayOutputStream();
    int built;
    InetSocketAddress client;
    boolean closedBeforeDeadline;

    static Run of(byte[] input, int[] pieces) {
      Run run = new Run();
      Telemetry telemetry = new Telemetry() {
        @Override
        public void identityFailure(String source, String reason) {
          assertThat(source).isEqualTo("proxy_protocol");
          run.failures.add(reason);
        }
      };
      Stages stages = new Stages(null, null, null, null, telemetry,
          new Connections(telemetry, () -> 100));
      EmbeddedChannel ch = new EmbeddedChannel();
      ch.freezeTime();
      ProxyHeader.install(ch.pipeline(), DEADLINE, stages, () -> {
        run.built++;
        SocketAddress named = DownstreamPeer.proxied(ch) ? DownstreamPeer.sourceAddress(ch) : null;
        run.client = (InetSocketAddress) named;
        ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
          @Override
          public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf b = (ByteBuf) msg;
            byte[] bytes = new byte[b.readableBytes()];
            b.readBytes(bytes);
            run.passedOn.writeBytes(bytes);
            b.release();
          }
        });
      });
      int at = 0;
      int piece = 0;
      while (at < input.length && ch.isOpen()) {
        int n = pieces.length == 0 ? input.length
            : Math.min(input.length - at, pieces[piece++ % pieces.length]);
        ByteBuf buf = Unpooled.wrappedBuffer(Arrays.copyOfRange(input, at, at + n));
        run.released.add(buf);
        ch.writeInbound(buf);
        at += n;
      }
      ch.runPendingTasks();
      run.closedBeforeDeadline = !ch.isOpen();
      ch.advanceTimeBy(DEADLINE.toMillis() + 1, TimeUnit.MILLISECONDS);
      ch.runScheduledPendingTasks();
      ch.finishAndReleaseAll();
      return run;
    }

    /** What a run did, for comparing runs of the same input. */
    String transcript() {
      return built + " " + client + " " + closedBeforeDeadline + " " + failures + " "
          + Arrays.toString(passedOn.toByteArray());
    }
  }
}
