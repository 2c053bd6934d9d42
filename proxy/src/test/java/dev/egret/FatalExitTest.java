package dev.egret;

import static org.assertj.core.api.Assertions.assertThat;

import dev.egret.testing.EgretFixture;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * An Egret that runs out of memory ends with exit code 1 and a line naming the cause, so its
 * orchestrator restarts it; it never stays alive answering nothing (a full descriptor table only
 * pauses accepting: AcceptPauseTest). A real {@code egret run} in a child JVM, pushed there
 * through its sockets.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class FatalExitTest {
  private static final Duration EXIT_DEADLINE = Duration.ofSeconds(60);

  @TempDir Path dir;

  @Test
  void exitsWithOneOnAnOutOfMemoryErrorInAnEventLoop() throws Exception {
    // No -XX:+ExitOnOutOfMemoryError here (the image sets it): Egret's own path is under test.
    try (EgretFixture egret = EgretFixture.builder().childJvm("-Xmx32m").start(dir, """
        version: 1
        listen: {proxy: 127.0.0.1:0, admin: 127.0.0.1:0}
        limits: {maxHeaderBytes: 1048576}
        allow:
          - host: api.partner.test
        """)) {
      // Heads just under the 1 MiB header limit, never finished: each one is held on the heap
      // by its connection, and 48 of them do not fit in 32 MiB.
      byte[] line = ("X-Filler: " + "a".repeat(1000) + "\r\n").getBytes(StandardCharsets.US_ASCII);
      List<Socket> heads = new ArrayList<>();
      try {
        for (int i = 0; i < 48 && egret.alive(); i++) {
          Socket s = new Socket("127.0.0.1", egret.proxyPort());
          heads.add(s);
          try {
            OutputStream out = s.getOutputStream();
            out.write("GET http://api.partner.test/ HTTP/1.1\r\n"
                .getBytes(StandardCharsets.US_ASCII));
            for (int j = 0; j < 1000; j++) {
              out.write(line);
            }
            out.flush();
          } catch (IOException e) {
            break; // Egret closed it, or is gone
          }
        }
        assertThat(egret.awaitExit(EXIT_DEADLINE)).as("exit code; egret said %s", egret.messages())
            .isEqualTo(1);
      } finally {
        for (Socket s : heads) {
          s.close();
        }
      }
      assertThat(egret.messages()).anySatisfy(m -> assertThat(m)
          .startsWith("egret: fatal: java.lang.OutOfMemoryError")
          .contains("exiting with code 1"));
    }
  }
}
