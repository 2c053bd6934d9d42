package dev.egret.testing;

import dev.egret.cli.Egret;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** Runs the {@code egret} command line in this JVM and keeps its exit code and output. */
public final class EgretCommand {
  private EgretCommand() {}

  /** What one command did: its exit code, standard output and standard error. */
  public record Result(int code, String out, String err) {}

  /** {@code egret ARGS...}, as the launcher runs it, with the two streams captured. */
  public static Result egret(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Egret.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(code, out.toString(StandardCharsets.UTF_8),
        err.toString(StandardCharsets.UTF_8));
  }
}
