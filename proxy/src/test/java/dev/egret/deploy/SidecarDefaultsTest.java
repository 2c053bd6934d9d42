package dev.egret.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The egret-sidecar library's defaults ("egret.defaults" in helm/egret-sidecar/templates/_egret.tpl)
 * are the egret chart's values.yaml, so that a team's chart that includes the library gets the
 * Egret (and, with tracing, the collector) the chart renders. No helm needed: both are YAML.
 */
class SidecarDefaultsTest {

  private static JsonNode libraryDefaults() throws IOException {
    String tpl = Files.readString(DeployFiles.file("helm/egret-sidecar/templates/_egret.tpl"));
    Matcher m = Pattern.compile("\\{\\{- define \"egret\\.defaults\" -}}\\n(.*?)\\{\\{- end }}", Pattern.DOTALL).matcher(tpl);
    assertThat(m.find()).as("egret.defaults in _egret.tpl").isTrue();
    assertThat(m.group(1)).as("plain YAML, no template actions").doesNotContain("{{");
    return DeployFiles.yaml(m.group(1));
  }

  @Test
  void theLibraryDefaultsAreTheChartValues() throws IOException {
    JsonNode library = libraryDefaults();
    JsonNode values = DeployFiles.yaml(DeployFiles.file("helm/egret/values.yaml"));
    JsonNode chart = DeployFiles.yaml(DeployFiles.file("helm/egret/Chart.yaml"));
    List<String> compared = new ArrayList<>();
    for (var field : library.properties()) {
      String key = field.getKey();
      JsonNode expected = switch (key) {
        // The chart passes these from other blocks of its values (egret.chartValues).
        case "noProxy", "lowerCaseProxyEnv" -> values.path("app").path(key);
        case "tracing" -> values.path("tracing");
        // Set by the chart itself (its ConfigMap's name, egret.enforce's listeners, its allowlist).
        case "configMapName", "transparent", "config" -> null;
        default -> values.path("egret").path(key);
      };
      if (expected == null) {
        continue;
      }
      JsonNode actual = field.getValue();
      if (key.equals("image")) {
        // The chart's empty tag means its appVersion, which the library spells out.
        assertThat(actual.path("tag").asText()).isEqualTo(chart.path("appVersion").asText());
        com.fasterxml.jackson.databind.node.ObjectNode a = actual.deepCopy();
        com.fasterxml.jackson.databind.node.ObjectNode e = expected.deepCopy();
        a.remove("tag");
        e.remove("tag");
        actual = a;
        expected = e;
      }
      assertThat(actual).as("library default %s", key).isEqualTo(expected);
      compared.add(key);
    }
    assertThat(compared).contains("image", "resources", "securityContext", "probes", "noProxy", "tracing");
  }
}
