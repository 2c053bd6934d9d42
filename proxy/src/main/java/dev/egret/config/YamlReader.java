package dev.egret.config;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads YAML text into {@link YamlNode}s with positions, using Jackson's streaming YAML parser
 * (Jackson's tree model drops locations, which every config error needs).
 */
final class YamlReader {
  /**
   * SnakeYAML stops at 3 Mi code points by default ({@code LoaderOptions.codePointLimit}), below
   * the 4 MiB a config file may have: a file between the two was read and then refused as a
   * YAML syntax error. In UTF-8 a code point takes at least one byte, so the byte cap bounds the
   * code points, and the limit here only has to let the whole file through.
   */
  private static final YAMLFactory FACTORY = YAMLFactory.builder()
      .loaderOptions(loaderOptions()).build();

  private static org.yaml.snakeyaml.LoaderOptions loaderOptions() {
    org.yaml.snakeyaml.LoaderOptions o = new org.yaml.snakeyaml.LoaderOptions();
    o.setCodePointLimit(ConfigFiles.MAX_CONFIG_BYTES);
    return o;
  }

  private YamlReader() {}

  /** Parses a document; syntax errors and duplicate keys go to {@code errors}. */
  static YamlNode read(String text, ConfigErrors errors) {
    try (JsonParser p = FACTORY.createParser(text)) {
      JsonToken t = p.nextToken();
      if (t == null) {
        errors.add(1, 1, "the file is empty; start from config/egret.yaml");
        return null;
      }
      YamlNode root = node(p, errors);
      return root;
    } catch (JsonProcessingException e) {
      JsonLocation at = e.getLocation();
      String msg = e.getOriginalMessage().replaceAll("\\s+", " ").trim();
      errors.add(at == null ? 1 : Math.max(1, at.getLineNr()),
          at == null ? 1 : Math.max(1, at.getColumnNr()), "YAML syntax error: " + msg);
      return null;
    } catch (IOException e) {
      errors.add(1, 1, "cannot read YAML: " + e.getMessage());
      return null;
    }
  }

  private static YamlNode node(JsonParser p, ConfigErrors errors) throws IOException {
    JsonLocation at = p.currentTokenLocation();
    int line = at.getLineNr();
    int col = at.getColumnNr();
    JsonToken t = p.currentToken();
    switch (t) {
      case START_OBJECT -> {
        Map<String, YamlNode.Entry> entries = new LinkedHashMap<>();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
          JsonLocation keyAt = p.currentTokenLocation();
          String key = p.currentName();
          p.nextToken();
          YamlNode value = node(p, errors);
          if (entries.containsKey(key)) {
            errors.add(keyAt.getLineNr(), keyAt.getColumnNr(),
                "key '" + key + "' appears twice in this mapping; keep one");
          } else {
            entries.put(key, new YamlNode.Entry(key, keyAt.getLineNr(), keyAt.getColumnNr(), value));
          }
        }
        return new YamlNode.Mapping(entries, line, col);
      }
      case START_ARRAY -> {
        List<YamlNode> items = new ArrayList<>();
        while (p.nextToken() != JsonToken.END_ARRAY) {
          items.add(node(p, errors));
        }
        return new YamlNode.Sequence(items, line, col);
      }
      case VALUE_STRING -> {
        return new YamlNode.Scalar(p.getText(), YamlNode.ScalarType.STRING, line, col);
      }
      case VALUE_NUMBER_INT -> {
        return new YamlNode.Scalar(p.getText(), YamlNode.ScalarType.INTEGER, line, col);
      }
      case VALUE_NUMBER_FLOAT -> {
        return new YamlNode.Scalar(p.getText(), YamlNode.ScalarType.FLOAT, line, col);
      }
      case VALUE_TRUE, VALUE_FALSE -> {
        return new YamlNode.Scalar(p.getText(), YamlNode.ScalarType.BOOLEAN, line, col);
      }
      case VALUE_NULL -> {
        return new YamlNode.Scalar("", YamlNode.ScalarType.NULL, line, col);
      }
      default -> {
        errors.add(line, col, "unsupported YAML construct " + t);
        return new YamlNode.Scalar("", YamlNode.ScalarType.NULL, line, col);
      }
    }
  }
}
