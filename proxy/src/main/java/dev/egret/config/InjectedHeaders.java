package dev.egret.config;

import dev.egret.policy.HeaderRules;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * Compiles a rule's {@code headers:} and {@code tunnel:} keys into {@link HeaderRules}, resolving
 * {@code ${env:NAME}} and {@code ${file:PATH}} in the values. Kept apart from {@link
 * ConfigCompiler} because every message here must be written with care: the resolved values are
 * secrets, so errors name the header, the reference and the position in the file, never what a
 * variable or file holds.
 */
final class InjectedHeaders {
  /** RFC 9110 token: a field name. */
  private static final Pattern TOKEN = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+");
  private static final Pattern ENV_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");
  /** The documented cap on any file the config names. */
  static final int MAX_FILE_BYTES = 1 << 20;
  /**
   * Headers Egret writes itself or drops as hop-by-hop: setting one would change framing or
   * routing, and removing one is already done.
   */
  private static final Set<String> EGRET_OWN = Set.of("host", "content-length",
      "transfer-encoding", "connection", "proxy-connection", "keep-alive", "te", "trailer",
      "upgrade", "expect", "via", "proxy-authorization", "proxy-authenticate");

  private final ConfigErrors errors;
  private final Path base;
  private final Function<String, String> env;
  /** The compiler's reader of named files: regular, at most 1 MiB, recorded for the watcher. */
  private final Function<String, byte[]> files;

  InjectedHeaders(ConfigErrors errors, Path base, Function<String, String> env,
      Function<String, byte[]> files) {
    this.errors = errors;
    this.base = base;
    this.env = env;
    this.files = files;
  }

  /** The rule's headers, {@link HeaderRules#NONE} when it has none; errors go to the list. */
  HeaderRules compile(Fields rule, String where) {
    boolean tunnelAllowed = rule.choice("tunnel", List.of("allow"), null) != null;
    YamlNode node = rule.get("headers");
    if (node == null) {
      return tunnelAllowed ? new HeaderRules(List.of(), List.of(), true) : HeaderRules.NONE;
    }
    String at = where + ".headers";
    Fields f = Fields.of(node, at, new LinkedHashSet<>(List.of("set", "remove")), errors);
    if (f == null) {
      return HeaderRules.NONE;
    }
    Set<String> seen = new HashSet<>();
    List<HeaderRules.SetHeader> set = new ArrayList<>();
    YamlNode setNode = f.get("set");
    if (setNode != null) {
      if (setNode instanceof YamlNode.Mapping m) {
        for (YamlNode.Entry e : m.entries().values()) {
          String what = at + ".set." + e.key();
          if (!name(e.key(), e.line(), e.column(), what, seen)) {
            continue;
          }
          String template = f.string(e.value(), what);
          if (template != null) {
            HeaderRules.SetHeader h = value(e.key(), template, e.value(), what);
            if (h != null) {
              set.add(h);
            }
          }
        }
      } else {
        errors.add(setNode, at + ".set must be a mapping of header names to values, such as "
            + "{Authorization: \"Bearer ${env:API_TOKEN}\"}, not " + setNode.describe());
      }
    }
    List<String> remove = new ArrayList<>();
    List<YamlNode> removeItems = f.list("remove");
    if (removeItems != null) {
      for (int i = 0; i < removeItems.size(); i++) {
        YamlNode item = removeItems.get(i);
        String what = at + ".remove[" + i + "]";
        String n = f.string(item, what);
        if (n != null && name(n, item.line(), item.column(), what, seen)) {
          remove.add(n);
        }
      }
    }
    if (setNode == null && removeItems == null) {
      errors.add(node, at + " has neither 'set' nor 'remove'; leave it out, or add "
          + "set: {NAME: VALUE} and/or remove: [NAME]");
    }
    return new HeaderRules(set, remove, tunnelAllowed);
  }

  private boolean name(String name, int line, int column, String what, Set<String> seen) {
    if (!TOKEN.matcher(name).matches()) {
      errors.add(line, column, what + ": '" + name + "' is not a header name (letters, digits "
          + "and !#$%&'*+.^_`|~- only)");
      return false;
    }
    String lower = name.toLowerCase(Locale.ROOT);
    if (EGRET_OWN.contains(lower)) {
      errors.add(line, column, what + ": Egret writes or drops '" + name + "' itself (routing, "
          + "framing or hop-by-hop), so a rule can neither set nor remove it");
      return false;
    }
    if (!seen.add(lower)) {
      errors.add(line, column, what + ": header '" + name + "' is named twice in this rule's "
          + "headers (names are case-insensitive, and one header cannot be both set and removed)");
      return false;
    }
    return true;
  }

  /** Resolves a value template; reports and returns null on any problem. */
  private HeaderRules.SetHeader value(String name, String template, YamlNode at, String what) {
    Resolved r = resolve(template, at, what);
    if (r == null) {
      return null;
    }
    String source = r.source();
    String value = r.value();
    if (value.isEmpty()) {
      errors.add(at, what + ": the value" + (r.referenced() ? " from " + source : "")
          + " is empty; a blank credential is surely a mistake");
      return null;
    }
    for (int c = 0; c < value.length(); c++) {
      char ch = value.charAt(c);
      if ((ch < 0x20 && ch != '\t') || ch >= 0x7f) {
        // The position and kind only: the value itself is a secret.
        errors.add(at, what + ": the value" + (r.referenced() ? " from " + source : "")
            + " has " + (ch == '\n' || ch == '\r' ? "a line break" : ch >= 0x7f
                ? "a character outside printable ASCII" : "a control character")
            + " at character " + (c + 1) + " of " + value.length()
            + "; a header value is one line of printable ASCII (only one trailing newline of a "
            + "file is dropped)");
        return null;
      }
    }
    return new HeaderRules.SetHeader(name, value, source);
  }

  /**
   * A template resolved: its value (a secret: never put it in a message) and where it came from
   * ("env:NAME and file:PATH", or "the config" when it references nothing).
   */
  record Resolved(String value, String source, boolean referenced) {}

  /**
   * Resolves {@code ${env:NAME}} and {@code ${file:PATH}} in a template, as header values and
   * upstream proxy credentials are written; reports and returns null on any problem. Messages
   * name the reference and the position, never what a variable or file holds.
   */
  Resolved resolve(String template, YamlNode at, String what) {
    StringBuilder value = new StringBuilder();
    List<String> sources = new ArrayList<>();
    int i = 0;
    while (i < template.length()) {
      int ref = template.indexOf("${", i);
      if (ref < 0) {
        value.append(template, i, template.length());
        break;
      }
      value.append(template, i, ref);
      int end = template.indexOf('}', ref);
      if (end < 0) {
        errors.add(at, what + ": '${' at character " + (ref + 1) + " is not closed with '}'; "
            + "write ${env:NAME} or ${file:PATH}");
        return null;
      }
      String reference = template.substring(ref + 2, end);
      String resolved;
      if (reference.startsWith("env:")) {
        resolved = envValue(reference.substring(4), at, what);
      } else if (reference.startsWith("file:")) {
        resolved = fileValue(reference.substring(5), at, what);
      } else {
        errors.add(at, what + ": '${" + reference + "}' is not a reference Egret knows; write "
            + "${env:NAME} or ${file:PATH}");
        return null;
      }
      if (resolved == null) {
        return null;
      }
      sources.add(reference);
      value.append(resolved);
      i = end + 1;
    }
    String source = sources.isEmpty() ? "the config" : String.join(" and ", sources);
    return new Resolved(value.toString(), source, !sources.isEmpty());
  }

  /**
   * A value written either as itself or, whole, as {@code ${env:NAME}} or {@code ${file:PATH}}
   * (a file's one trailing newline dropped); null after reporting a problem. Used for values
   * such as token hashes, which the messages here never quote.
   */
  String reference(String written, YamlNode at, String what) {
    if (!written.startsWith("${")) {
      return written;
    }
    if (!written.endsWith("}")) {
      errors.add(at, what + ": a reference must be the whole value, ${env:NAME} or ${file:PATH}");
      return null;
    }
    String reference = written.substring(2, written.length() - 1);
    if (reference.startsWith("env:")) {
      return envValue(reference.substring(4), at, what);
    }
    if (reference.startsWith("file:")) {
      return fileValue(reference.substring(5), at, what);
    }
    errors.add(at, what + ": '${" + reference + "}' is not a reference Egret knows; write "
        + "${env:NAME} or ${file:PATH}");
    return null;
  }

  private String envValue(String variable, YamlNode at, String what) {
    if (!ENV_NAME.matcher(variable).matches()) {
      errors.add(at, what + ": '" + variable + "' is not an environment variable name "
          + "(letters, digits and _, not starting with a digit)");
      return null;
    }
    String v = env.apply(variable);
    if (v == null) {
      errors.add(at, what + ": the environment variable " + variable + " is not set; hand it "
          + "to Egret's container (a Kubernetes Secret, ECS secrets) or use ${file:PATH}");
      return null;
    }
    return v;
  }

  private String fileValue(String path, YamlNode at, String what) {
    if (path.isEmpty()) {
      errors.add(at, what + ": ${file:} names no file; write ${file:PATH}, relative to the "
          + "config file's folder");
      return null;
    }
    Path file;
    try {
      file = base.resolve(path);
    } catch (RuntimeException e) {
      errors.add(at, what + ": '" + path + "' is not a file path");
      return null;
    }
    byte[] bytes;
    try {
      // Regular files only, at most 1 MiB, links followed (a Kubernetes Secret volume is links
      // to a timestamped folder); recorded so a rotated secret reloads the config.
      bytes = files.apply(path);
    } catch (IllegalArgumentException e) {
      errors.add(at, what + ": cannot read " + file + " (from ${file:" + path + "}): "
          + e.getMessage() + " (relative paths resolve against the config file's folder)");
      return null;
    }
    String text = new String(bytes, StandardCharsets.UTF_8);
    if (text.endsWith("\r\n")) {
      return text.substring(0, text.length() - 2);
    }
    return text.endsWith("\n") ? text.substring(0, text.length() - 1) : text;
  }

  /** The kind of failure, without the exception's message beyond the path it names. */
  private static String why(Exception e) {
    if (e instanceof java.nio.file.NoSuchFileException) {
      return "no such file";
    }
    if (e instanceof java.nio.file.AccessDeniedException) {
      return "permission denied";
    }
    return e.getClass().getSimpleName();
  }
}
