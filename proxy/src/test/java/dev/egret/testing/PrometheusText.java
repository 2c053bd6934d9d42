package dev.egret.testing;

import dev.egret.deploy.MetricNames;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * A scrape of {@code /metrics} parsed into samples, so tests can ask for one series by its exact
 * label set: {@code PrometheusText.parse(body).value("egret_tunnels_active", Map.of())}. Reads
 * the text format 0.0.4 as the Prometheus registry writes it: comments, then one {@code
 * name{label="value",...} number} per line.
 */
public record PrometheusText(List<Sample> samples) {

  /** One line of the exposition. */
  public record Sample(String name, Map<String, String> labels, double value) {}

  public static PrometheusText parse(String body) {
    List<Sample> samples = new ArrayList<>();
    for (String line : body.split("\n")) {
      if (line.isBlank() || line.startsWith("#")) {
        continue;
      }
      samples.add(sample(line));
    }
    return new PrometheusText(List.copyOf(samples));
  }

  private static Sample sample(String line) {
    int brace = line.indexOf('{');
    int space = line.lastIndexOf(' ');
    if (brace < 0 || brace > space) {
      return new Sample(line.substring(0, space), Map.of(),
          Double.parseDouble(line.substring(space + 1)));
    }
    Map<String, String> labels = new LinkedHashMap<>();
    int i = brace + 1;
    while (line.charAt(i) != '}') {
      int eq = line.indexOf('=', i);
      String key = line.substring(i, eq);
      StringBuilder value = new StringBuilder();
      int j = eq + 2; // past ="
      for (; line.charAt(j) != '"'; j++) {
        char c = line.charAt(j);
        if (c == '\\') {
          char next = line.charAt(++j);
          value.append(next == 'n' ? '\n' : next);
        } else {
          value.append(c);
        }
      }
      labels.put(key, value.toString());
      i = j + 1;
      if (line.charAt(i) == ',') {
        i++;
      }
    }
    String rest = line.substring(i + 1).trim();
    // A timestamp may follow the value; Micrometer writes none, but do not trip over one.
    String number = rest.split(" ")[0];
    return new Sample(line.substring(0, brace), Map.copyOf(labels), Double.parseDouble(number));
  }

  /** The samples named {@code name}, in scrape order. */
  public List<Sample> named(String name) {
    return samples.stream().filter(s -> s.name().equals(name)).toList();
  }

  /** The value of the series with exactly these labels, if it is exported. */
  public OptionalDouble value(String name, Map<String, String> labels) {
    return samples.stream()
        .filter(s -> s.name().equals(name) && s.labels().equals(labels))
        .mapToDouble(Sample::value)
        .findFirst();
  }

  /** The label sets of every series named {@code name}. */
  public List<Map<String, String>> labelSets(String name) {
    return named(name).stream().map(Sample::labels).collect(Collectors.toList());
  }

  /** Every metric family with at least one sample, histogram samples folded into the family. */
  public SortedSet<String> families() {
    return samples.stream().map(s -> MetricNames.family(s.name()))
        .collect(Collectors.toCollection(TreeSet::new));
  }

  /** Every label value of every sample, for checks that no raw value leaked into a label. */
  public List<String> allLabelValues() {
    return samples.stream().flatMap(s -> s.labels().values().stream()).toList();
  }
}
