package dev.egret.config;

import java.util.List;
import java.util.Objects;

/**
 * Tells whether any file one config attempt read (the config first, then every file it names)
 * has changed since, cheaply: one {@code stat} per file per look, and a read and hash only of a
 * file whose stamp moved. A moved stamp with the same content (a {@code touch}, a ConfigMap
 * swap to identical bytes) is remembered, not reported. Usage, on the config thread:
 *
 * <pre>{@code
 * ConfigWatch watch = new ConfigWatch(config.inputs());
 * if (watch.changed()) { ... compile again, then watch the new attempt's inputs ... }
 * }</pre>
 *
 * <p>Not thread-safe: one caller at a time (the reload's single flight guarantees it).
 */
public final class ConfigWatch {
  private final List<ConfigFiles.Input> inputs;
  /** The last stamp seen per input, moved on when a stamp changed but the content did not. */
  private final ConfigFiles.Stamp[] seen;

  public ConfigWatch(List<ConfigFiles.Input> inputs) {
    this.inputs = List.copyOf(inputs);
    this.seen = new ConfigFiles.Stamp[this.inputs.size()];
    for (int i = 0; i < seen.length; i++) {
      seen[i] = this.inputs.get(i).stamp();
    }
  }

  /** A new watch of the same files: a thread given up at its deadline may still use this one. */
  public ConfigWatch fresh() {
    return new ConfigWatch(inputs);
  }

  /** True if some watched file's content (or readability) differs from what was read. */
  public boolean changed() {
    for (int i = 0; i < seen.length; i++) {
      ConfigFiles.Input in = inputs.get(i);
      ConfigFiles.Stamp now = ConfigFiles.stamp(in.path());
      if (now.equals(seen[i])) {
        continue;
      }
      String sha = null;
      String problem = null;
      try {
        sha = ConfigFiles.read(in.path(), in.maxBytes()).sha256();
      } catch (IllegalArgumentException e) {
        problem = e.getMessage();
      }
      if (Objects.equals(sha, in.sha256()) && Objects.equals(problem, in.problem())) {
        seen[i] = now;
        continue;
      }
      return true;
    }
    return false;
  }

  /**
   * True if every file still has the stamp it had when it was read: a failed attempt on files
   * that moved meanwhile read a half-written version, which is retried rather than counted.
   */
  public boolean settled() {
    for (ConfigFiles.Input in : inputs) {
      if (!ConfigFiles.stamp(in.path()).equals(in.stamp())) {
        return false;
      }
    }
    return true;
  }
}
