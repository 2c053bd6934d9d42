package dev.egret.testing;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Runs an {@code openssl} pipeline through {@code sh -c}, as an independent opinion on what the
 * test support produced: {@code OpenSsl.run("openssl x509 -noout -subject -in cert.pem")}.
 * Tests that use it skip themselves when {@link #available()} is false.
 */
final class OpenSsl {
  private static final Duration TIMEOUT = Duration.ofSeconds(20);

  private OpenSsl() {}

  static boolean available() {
    try {
      run("openssl version");
      return true;
    } catch (IllegalStateException e) {
      return false;
    }
  }

  /** Stdout and stderr together; the command's stdin is empty. */
  static String run(String shellCommand) {
    try {
      // Output goes to a file, not a pipe, so a hung child cannot outlive the timeout.
      Path output = Files.createTempFile("openssl", ".out");
      try {
        Process process = new ProcessBuilder("sh", "-c", shellCommand)
            .redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(output.toFile())
            .start();
        if (!process.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
          process.descendants().forEach(ProcessHandle::destroyForcibly);
          process.destroyForcibly();
          throw new IllegalStateException("'" + shellCommand + "' took longer than " + TIMEOUT);
        }
        String text = Files.readString(output, StandardCharsets.UTF_8);
        if (process.exitValue() != 0) {
          throw new IllegalStateException("'" + shellCommand + "' exited "
              + process.exitValue() + ": " + text);
        }
        return text;
      } finally {
        Files.deleteIfExists(output);
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot run '" + shellCommand + "'", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted running '" + shellCommand + "'", e);
    }
  }
}
