package dev.egret.config;

import java.util.List;
import java.util.stream.Collectors;

/** A config file that cannot be loaded, with every error found in it. */
public final class ConfigException extends Exception {
  private final List<ConfigError> errors;
  private final List<ConfigFiles.Input> inputs;

  public ConfigException(List<ConfigError> errors) {
    this(errors, List.of());
  }

  /** @param inputs the files the failed attempt read or tried to read, for the reload's watch */
  public ConfigException(List<ConfigError> errors, List<ConfigFiles.Input> inputs) {
    super(errors.stream().map(ConfigError::toString).collect(Collectors.joining("\n")));
    this.errors = List.copyOf(errors);
    this.inputs = List.copyOf(inputs);
  }

  /** The files the failed attempt read, the config file first; empty if not known. */
  public List<ConfigFiles.Input> inputs() {
    return inputs;
  }

  public List<ConfigError> errors() {
    return errors;
  }
}
