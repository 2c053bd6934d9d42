package dev.egret.lambda;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The layer zip {@code mvn package} wrote, unpacked the way Lambda unpacks it into {@code /opt}:
 * file modes and times from the zip's entries, so a launcher the zip lost the exec bit of, or a
 * jar whose time no longer matches the class-data archive, shows up here.
 */
final class Layer {
  static final Path ZIP = Path.of("target", "egret-lambda-layer.zip");

  private Layer() {}

  static Path unpack(Path into) throws IOException {
    if (!Files.isRegularFile(ZIP)) {
      throw new AssertionError(ZIP.toAbsolutePath() + " is missing: the layer tests run after "
          + "`package`, which builds it (mvn -pl proxy verify)");
    }
    URI uri = URI.create("jar:" + ZIP.toAbsolutePath().toUri());
    try (FileSystem zip = FileSystems.newFileSystem(uri, Map.of("enablePosixFileAttributes", "true"));
         Stream<Path> entries = Files.walk(zip.getPath("/"))) {
      for (Path entry : (Iterable<Path>) entries::iterator) {
        Path target = into.resolve(entry.toString().substring(1));
        if (Files.isDirectory(entry)) {
          Files.createDirectories(target);
          continue;
        }
        Files.createDirectories(target.getParent());
        Files.copy(entry, target, StandardCopyOption.REPLACE_EXISTING);
        // The unix mode Lambda applies: an entry without one gets Java's default, which lacks x.
        Set<PosixFilePermission> mode = Files.getPosixFilePermissions(entry);
        Files.setPosixFilePermissions(target, mode);
        FileTime time = Files.getLastModifiedTime(entry);
        Files.setLastModifiedTime(target, time);
      }
    }
    return into;
  }

  /** A child process with its stdout and stderr kept line by line. */
  /**
   * {@code egret lambda} from the test classpath (not the layer), in {@code dir}, registering
   * with {@code api} and reading {@code config}: how the extension tests start it.
   */
  static Child extension(FakeExtensionsApi api, Path dir, Path config) throws IOException {
    java.util.List<String> command = new java.util.ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(java.util.List.of("-XX:TieredStopAtLevel=1", "-Xmx96m"));
    String security = System.getProperty("java.security.properties");
    if (security != null) {
      command.add("-Djava.security.properties=" + security);
    }
    String cp = System.getProperty("surefire.test.class.path");
    command.addAll(java.util.List.of("-cp",
        cp != null && !cp.isBlank() ? cp : System.getProperty("java.class.path"),
        "dev.egret.cli.Egret", "lambda"));
    ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile());
    pb.environment().put("AWS_LAMBDA_RUNTIME_API", api.address());
    pb.environment().put("EGRET_CONFIG", config.toString());
    return new Child(pb);
  }

  static final class Child implements AutoCloseable {
    final Process process;
    final long startNanos;
    final List<String> stdout = new CopyOnWriteArrayList<>();
    final List<String> stderr = new CopyOnWriteArrayList<>();
    private final List<Map.Entry<Predicate<String>, CompletableFuture<String>>> waits =
        new CopyOnWriteArrayList<>();

    Child(ProcessBuilder builder) throws IOException {
      this.startNanos = System.nanoTime();
      this.process = builder.start();
      read(process.getInputStream(), stdout, "stdout");
      read(process.getErrorStream(), stderr, "stderr");
    }

    /** Completes with the first stderr line matching {@code p} (earlier lines included). */
    synchronized CompletableFuture<String> stderrLine(Predicate<String> p) {
      CompletableFuture<String> f = new CompletableFuture<>();
      for (String line : stderr) {
        if (p.test(line)) {
          f.complete(line);
          return f;
        }
      }
      waits.add(Map.entry(p, f));
      return f;
    }

    private void read(InputStream in, List<String> into, String name) {
      Thread t = new Thread(() -> {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
          String line;
          while ((line = r.readLine()) != null) {
            synchronized (this) {
              into.add(line);
              if (into == stderr) {
                for (var w : new ArrayList<>(waits)) {
                  if (w.getKey().test(line)) {
                    w.getValue().complete(line);
                    waits.remove(w);
                  }
                }
              }
            }
          }
        } catch (IOException e) {
          // the child went away
        }
      }, "layer-child-" + name);
      t.setDaemon(true);
      t.start();
    }

    @Override
    public void close() {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
    }
  }
}
