package dev.egret.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code egret <command> --help} (and {@code -h}, and {@code egret help <command>}) prints that
 * command's usage on stdout and exits 0, for every command {@code egret --help} lists: run in a
 * JVM of its own, so the exit code is the process's and nothing starts serving or reads a config.
 */
class EgretHelpTest {
  private static final String JAVA =
      Path.of(System.getProperty("java.home"), "bin", "java").toString();

  @TempDir Path dir;

  record Exit(int code, String out, String err) {}

  private Exit egret(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(JAVA, "-Xmx64m", "-XX:TieredStopAtLevel=1",
        "-cp", System.getProperty("java.class.path"), "dev.egret.cli.Egret"));
    command.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile());
    // Under Lambda a bare `egret` is the extension; here it must stay the command line.
    pb.environment().remove("AWS_LAMBDA_RUNTIME_API");
    // No config anywhere: a command that went on to load one would fail, not print its usage.
    pb.environment().put("EGRET_CONFIG", dir.resolve("missing.yaml").toString());
    Process p = pb.start();
    CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
    String out = read(p.getInputStream());
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("egret " + String.join(" ", args) + " still running after 60 s: "
          + out);
    }
    return new Exit(p.exitValue(), out, err.join());
  }

  private static String read(java.io.InputStream in) {
    try (in) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** The commands `egret --help` lists: "egret check FILE" and "egret [run]" name check and run. */
  private static Set<String> listed(String usage) {
    Set<String> commands = new LinkedHashSet<>();
    Matcher m = Pattern.compile("(?m)^(?:usage: |\\s{7})egret \\[?([a-z]+)").matcher(usage);
    while (m.find()) {
      commands.add(m.group(1));
    }
    return commands;
  }

  @Test
  void everyCommandsHelpPrintsItsUsageAndExitsZero() throws Exception {
    Exit all = egret("--help");
    assertThat(all.code()).isZero();
    Set<String> commands = listed(all.out());
    assertThat(commands).contains("run", "check", "explain", "propose", "ready", "iptables", "lambda");

    List<List<String>> runs = new ArrayList<>();
    for (String command : commands) {
      runs.add(List.of(command, "--help"));
    }
    // The other two spellings once each: one JVM per run, so the test stays quick.
    runs.add(List.of("iptables", "-h"));
    runs.add(List.of("help", "propose"));
    for (List<String> args : runs) {
      String command = args.get(0).equals("help") ? args.get(1) : args.get(0);
      Exit e = egret(args.toArray(String[]::new));
      String what = "egret " + String.join(" ", args);
      assertThat(e.code()).as("%s exit code; stderr: %s", what, e.err()).isZero();
      assertThat(e.err()).as("%s stderr", what).isEmpty();
      assertThat(e.out()).as("%s", what)
          .startsWith(command.equals("run") ? "usage: egret [run]" : "usage: egret " + command);
      // The command's own usage, not the whole list.
      assertThat(listed(e.out())).as("%s lists only its command", what).containsExactly(command);
    }
  }

  @Test
  void helpAfterRunsOptionsIsRunsHelpNotAStart() throws Exception {
    Exit e = egret("--config", dir.resolve("missing.yaml").toString(), "--help");
    assertThat(e.code()).isZero();
    assertThat(e.out()).startsWith("usage: egret [run] [--config FILE]");
  }

  @Test
  void helpForAnUnknownCommandIsAUsageError() throws Exception {
    Exit e = egret("help", "serve");
    assertThat(e.code()).isEqualTo(2);
    assertThat(e.err()).contains("unknown command 'serve'");
  }
}
