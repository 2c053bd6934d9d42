package dev.egret.config;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.concurrent.TimeUnit;

/**
 * Reads the config file and the files it names (trust PEMs, client certificates and keys,
 * {@code ${file:}} values), and tells cheaply whether one changed. Usage:
 *
 * <pre>{@code
 * ConfigFiles.Read r = ConfigFiles.read(path, ConfigFiles.MAX_FILE_BYTES); // stamp, then bytes
 * ConfigFiles.stamp(path).equals(r.stamp())                              // unchanged, no read
 * }</pre>
 *
 * <p>Only regular files are read (symbolic links followed), each at most {@link #MAX_FILE_BYTES}
 * and the config itself at most {@link #MAX_CONFIG_BYTES}: a FIFO would block the reading
 * thread until a writer came, and {@code /dev/zero} would fill the heap. The size is checked
 * before the file is opened and again while reading (a file that grows is cut at the cap).
 *
 * <p>Blocking file I/O: called while compiling a config or checking for changes, on the config
 * thread, never on an event loop.
 */
public final class ConfigFiles {
  /** The documented cap for every file the config names. */
  public static final int MAX_FILE_BYTES = 1 << 20;
  /** The documented cap for the config file itself. */
  public static final int MAX_CONFIG_BYTES = 4 << 20;

  private ConfigFiles() {}

  /**
   * What a file looked like, from one {@code stat} (and the symbolic-link chain's target):
   * enough to see an edit, an editor's replace (new inode) and a Kubernetes {@code ..data}
   * symlink swap (new target) without reading the file.
   *
   * @param target the path with every symbolic link resolved, or the path itself
   * @param fileKey device and inode (Unix), null where the platform has none
   * @param problem why the file cannot be read (then the other fields are empty), else null
   */
  public record Stamp(String target, Object fileKey, long size, long modifiedNanos,
      boolean regular, String problem) {}

  /** A file as read: the stamp taken before reading, the bytes and their SHA-256. */
  public record Read(Path path, Stamp stamp, byte[] bytes, String sha256) {}

  /**
   * One file a compilation read or tried to read, as it was then.
   *
   * @param maxBytes the cap it was read with
   * @param sha256 hex SHA-256 of what was read, or null if it could not be read
   * @param problem why it could not be read, or null
   */
  public record Input(Path path, int maxBytes, Stamp stamp, String sha256, String problem) {}

  /** Stats {@code file}, following symbolic links; never throws. */
  public static Stamp stamp(Path file) {
    BasicFileAttributes a;
    try {
      a = Files.readAttributes(file, BasicFileAttributes.class);
    } catch (NoSuchFileException e) {
      return new Stamp(null, null, -1, -1, false, "does not exist");
    } catch (IOException | SecurityException e) {
      return new Stamp(null, null, -1, -1, false, "cannot be read: " + message(e));
    }
    String target;
    try {
      target = file.toRealPath().toString();
    } catch (IOException | SecurityException e) {
      target = file.toString(); // swapped away between the two calls: the next look sees it
    }
    return new Stamp(target, a.fileKey(), a.size(), a.lastModifiedTime().to(TimeUnit.NANOSECONDS),
        a.isRegularFile(), null);
  }

  /**
   * Reads a regular file of at most {@code maxBytes}.
   *
   * @throws IllegalArgumentException naming the file and the problem
   */
  public static Read read(Path file, int maxBytes) {
    Stamp stamp = stamp(file);
    if (stamp.problem() != null) {
      throw new IllegalArgumentException(file + " " + stamp.problem());
    }
    if (!stamp.regular()) {
      throw new IllegalArgumentException(file + " is not a regular file (a folder, FIFO, device "
          + "or socket); Egret reads only regular files, so that nothing can stall a reload");
    }
    if (stamp.size() > maxBytes) {
      throw tooLarge(file, maxBytes);
    }
    byte[] bytes;
    try (InputStream in = Files.newInputStream(file)) {
      bytes = in.readNBytes(maxBytes + 1);
    } catch (IOException | SecurityException e) {
      throw new IllegalArgumentException("cannot read " + file + ": " + message(e));
    }
    if (bytes.length > maxBytes) {
      throw tooLarge(file, maxBytes);
    }
    return new Read(file, stamp, bytes, sha256(bytes));
  }

  private static IllegalArgumentException tooLarge(Path file, int maxBytes) {
    return new IllegalArgumentException(file + " is larger than " + (maxBytes >> 20)
        + " MiB, the most Egret reads from " + (maxBytes == MAX_CONFIG_BYTES ? "a config file"
        : "a file the config names") + "; point at the file itself, not a bundle of everything");
  }

  /** Hex SHA-256. */
  public static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String message(Exception e) {
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }
}
