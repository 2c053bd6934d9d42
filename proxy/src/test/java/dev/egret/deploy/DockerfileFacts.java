package dev.egret.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The instructions of the repository's Dockerfile that other deploy files must agree with:
 * {@code DockerfileFacts.read()} then {@code entrypoint()}, {@code healthcheck()}, ...
 * Continuation lines are joined first, as Docker does.
 */
record DockerfileFacts(List<String> instructions) {

  static DockerfileFacts read() {
    return parse(DeployFiles.file("Dockerfile"));
  }

  static DockerfileFacts parse(Path path) {
    try {
      String text = Files.readString(path).replaceAll("\\\\\\r?\\n", " ");
      List<String> lines = new ArrayList<>();
      for (String line : text.split("\\r?\\n")) {
        String t = line.strip();
        if (!t.isEmpty() && !t.startsWith("#")) {
          lines.add(t.replaceAll("\\s+", " "));
        }
      }
      return new DockerfileFacts(List.copyOf(lines));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Every instruction with this keyword, without the keyword. */
  List<String> all(String keyword) {
    List<String> out = new ArrayList<>();
    for (String i : instructions) {
      if (i.regionMatches(true, 0, keyword + " ", 0, keyword.length() + 1)) {
        out.add(i.substring(keyword.length() + 1).strip());
      }
    }
    return out;
  }

  /** The instructions of the last stage (the image that ships). */
  DockerfileFacts runtimeStage() {
    int last = 0;
    for (int i = 0; i < instructions.size(); i++) {
      if (instructions.get(i).regionMatches(true, 0, "FROM ", 0, 5)) {
        last = i;
      }
    }
    return new DockerfileFacts(instructions.subList(last, instructions.size()));
  }

  List<String> entrypoint() {
    return execForm(only("ENTRYPOINT"));
  }

  List<String> cmd() {
    return execForm(only("CMD"));
  }

  /** The HEALTHCHECK command's argv (exec form), options skipped. */
  List<String> healthcheck() {
    String hc = only("HEALTHCHECK");
    int cmd = hc.indexOf("CMD ");
    if (cmd < 0) {
      throw new IllegalStateException("HEALTHCHECK without CMD: " + hc);
    }
    return execForm(hc.substring(cmd + 4));
  }

  /** ENV KEY=VALUE pairs, by key. */
  String env(String key) {
    Pattern p = Pattern.compile("(?:^|\\s)" + Pattern.quote(key) + "=(\\S+)");
    String found = null;
    for (String e : all("ENV")) {
      Matcher m = p.matcher(e);
      if (m.find()) {
        found = m.group(1);
      }
    }
    return found;
  }

  private String only(String keyword) {
    List<String> found = runtimeStage().all(keyword);
    if (found.size() != 1) {
      throw new IllegalStateException("expected one " + keyword + " in the runtime stage, got " + found);
    }
    return found.get(0);
  }

  private static List<String> execForm(String json) {
    try {
      JsonNode node = DeployFiles.JSON.readTree(json);
      if (!node.isArray()) {
        throw new IllegalStateException("not exec form (a JSON array): " + json);
      }
      return DeployFiles.strings(node);
    } catch (IOException e) {
      throw new IllegalStateException("not exec form (a JSON array): " + json, e);
    }
  }
}
