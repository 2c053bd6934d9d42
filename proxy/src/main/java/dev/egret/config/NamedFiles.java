package dev.egret.config;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The files a config names besides itself (trust PEMs, client certificates and keys, {@code
 * ${file:...}} secrets), each with a digest of the content the compiler read. The watcher asks
 * {@link #changedOnDisk()} each period, so a rotated Kubernetes or ECS secret, or a renewed CA
 * file, triggers a reload although the config file itself did not change.
 *
 * <p>Immutable. The digests are SHA-256 of the bytes read (or a note that the file could not be
 * read); never the bytes, which may be secrets.
 */
public final class NamedFiles {
  static final NamedFiles NONE = new NamedFiles(Map.of());
  /** One byte over the SPEC's 1 MiB cap, so a file that grew past it still differs. */
  private static final int DIGEST_LIMIT = (1 << 20) + 1;

  private final Map<Path, String> digests;

  private NamedFiles(Map<Path, String> digests) {
    this.digests = Map.copyOf(digests);
  }

  /** The files, as absolute paths. */
  public Set<Path> paths() {
    return digests.keySet();
  }

  /**
   * True if any file's content now differs from what the compiler read, or it can no longer be
   * read (or can again). Blocking: reads each file (at most 1 MiB each); call it off the event
   * loop.
   */
  public boolean changedOnDisk() {
    for (Map.Entry<Path, String> e : digests.entrySet()) {
      if (!digest(e.getKey()).equals(e.getValue())) {
        return true;
      }
    }
    return false;
  }

  /**
   * One digest over every file's current content (blocking, as {@link #changedOnDisk()}), so a
   * watcher can tell one change from the next and try each only once.
   */
  public String fingerprintOnDisk() {
    StringBuilder b = new StringBuilder();
    digests.keySet().stream().sorted().forEach(p -> b.append(p).append('=').append(digest(p)).append('\n'));
    return digest(b.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
  }

  /** {@link #fingerprintOnDisk()} as it was when the config was compiled. */
  public String fingerprint() {
    StringBuilder b = new StringBuilder();
    digests.keySet().stream().sorted().forEach(p -> b.append(p).append('=').append(digests.get(p)).append('\n'));
    return digest(b.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
  }

  /** Same files with the same content digests. */
  boolean sameAs(NamedFiles other) {
    return digests.equals(other.digests);
  }

  @Override
  public String toString() {
    return "NamedFiles" + digests.keySet();
  }

  static String digest(Path file) {
    try (InputStream in = Files.newInputStream(file)) {
      return digest(in.readNBytes(DIGEST_LIMIT));
    } catch (IOException | RuntimeException e) {
      return "unreadable: " + e.getClass().getSimpleName();
    }
  }

  static String digest(byte[] bytes) {
    return ConfigCompiler.sha256(bytes);
  }

  /** Collects the files one compilation reads. */
  static final class Builder {
    private final Map<Path, String> digests = new LinkedHashMap<>();

    /** Records a file the compiler is about to read itself (a PEM); returns it. */
    Path note(Path file) {
      Path p = file.toAbsolutePath().normalize();
      // Digest before the real read: a change in between shows up as a change later (one more
      // reload), never as a change missed.
      digests.putIfAbsent(p, digest(p));
      return file;
    }

    /** Records a file whose bytes the compiler read (a secret), or failed to read (null). */
    void read(Path file, byte[] bytes) {
      Path p = file.toAbsolutePath().normalize();
      digests.put(p, bytes == null ? digest(p) : digest(bytes));
    }

    NamedFiles build() {
      return digests.isEmpty() ? NONE : new NamedFiles(digests);
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof NamedFiles n && n.digests.equals(digests);
  }

  @Override
  public int hashCode() {
    return Objects.hash(digests);
  }
}
