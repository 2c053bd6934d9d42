package dev.egret.tunnel;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs a client program (curl, openssl, python3) with empty stdin and a deadline. */
record Proc(int exit, String output) {

  static Proc run(Duration timeout, String... command) throws Exception {
    // Output to a file, not a pipe, so a hung child cannot block the test past its deadline.
    Path out = Files.createTempFile("proc", ".out");
    try {
      Process p = new ProcessBuilder(List.of(command)).redirectErrorStream(true)
          .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
          .redirectOutput(out.toFile()).start();
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        p.destroyForcibly();
        throw new AssertionError(String.join(" ", command) + " took longer than " + timeout);
      }
      return new Proc(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
    } finally {
      Files.deleteIfExists(out);
    }
  }

  static boolean available(String... command) {
    try {
      return run(Duration.ofSeconds(20), command).exit() == 0;
    } catch (Exception e) {
      return false;
    }
  }
}
