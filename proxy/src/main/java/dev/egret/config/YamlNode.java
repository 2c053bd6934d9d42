package dev.egret.config;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The config file as plain data: YAML mappings, sequences and scalars, each with the line and
 * column it was written at, so every later error can point at the exact spot. This is the
 * "YAML object" layer; {@link ConfigCompiler} validates it into the domain.
 */
sealed interface YamlNode {
  int line();

  int column();

  /** What this node is, in words for error messages ("a list", "a number"). */
  String describe();

  record Mapping(Map<String, Entry> entries, int line, int column) implements YamlNode {
    public Mapping {
      entries = new LinkedHashMap<>(entries);
    }

    @Override
    public String describe() {
      return "a mapping";
    }
  }

  /** One key of a mapping, with the key's own position (where "unknown key" errors point). */
  record Entry(String key, int line, int column, YamlNode value) {}

  record Sequence(List<YamlNode> items, int line, int column) implements YamlNode {
    @Override
    public String describe() {
      return "a list";
    }
  }

  /**
   * A scalar as written. {@code type} says how YAML typed it, so a quoted {@code "443"} can be
   * told from the number 443.
   */
  record Scalar(String text, ScalarType type, int line, int column) implements YamlNode {
    @Override
    public String describe() {
      return switch (type) {
        case STRING -> "the text '" + text + "'";
        case INTEGER, FLOAT -> "the number " + text;
        case BOOLEAN -> "the boolean " + text;
        case NULL -> "an empty value";
      };
    }
  }

  enum ScalarType { STRING, INTEGER, FLOAT, BOOLEAN, NULL }
}
