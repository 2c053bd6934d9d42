package dev.egret.config;

/** One problem in a config file; {@link #toString()} is the {@code FILE:LINE:COLUMN: message} form. */
public record ConfigError(String file, int line, int column, String message) {
  @Override
  public String toString() {
    return file + ":" + line + ":" + column + ": " + message;
  }
}
