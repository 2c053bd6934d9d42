package dev.egret.config;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** Collects every problem in a config file, so the operator fixes them all in one pass. */
final class ConfigErrors {
  private final String file;
  private final List<ConfigError> errors = new ArrayList<>();

  ConfigErrors(String file) {
    this.file = file;
  }

  void add(int line, int column, String message) {
    errors.add(new ConfigError(file, line, column, message));
  }

  void add(YamlNode at, String message) {
    add(at.line(), at.column(), message);
  }

  boolean isEmpty() {
    return errors.isEmpty();
  }

  List<ConfigError> sorted() {
    List<ConfigError> out = new ArrayList<>(errors);
    out.sort(Comparator.comparingInt(ConfigError::line).thenComparingInt(ConfigError::column));
    return out;
  }
}
