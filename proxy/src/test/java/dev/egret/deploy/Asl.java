package dev.egret.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.regex.Pattern;

/**
 * The part of the Amazon States Language that the state machines' Choice states use, evaluated
 * as Step Functions does, so tests can feed a state an input and see where it goes:
 * {@code Asl.choose(choiceState, input)} returns the name of the next state.
 *
 * <p>Supported: And, Or, Not, IsPresent, StringEquals, StringMatches (with {@code *} and the
 * escapes {@code \*} and {@code \\}), NumericLessThan, NumericEquals, NumericGreaterThanEquals
 * and simple paths ({@code $.a.b}). Anything else throws, so a test never passes on a rule it
 * did not understand.
 */
final class Asl {
  private Asl() {}

  static String choose(JsonNode choice, JsonNode input) {
    for (JsonNode rule : choice.path("Choices")) {
      if (holds(rule, input)) {
        return rule.path("Next").asText();
      }
    }
    if (!choice.hasNonNull("Default")) {
      throw new AssertionError("no Choice rule matched and there is no Default (States.NoChoiceMatched)");
    }
    return choice.path("Default").asText();
  }

  static boolean holds(JsonNode rule, JsonNode input) {
    if (rule.has("And")) {
      for (JsonNode r : rule.path("And")) {
        if (!holds(r, input)) {
          return false;
        }
      }
      return true;
    }
    if (rule.has("Or")) {
      for (JsonNode r : rule.path("Or")) {
        if (holds(r, input)) {
          return true;
        }
      }
      return false;
    }
    if (rule.has("Not")) {
      return !holds(rule.path("Not"), input);
    }
    JsonNode value = path(input, rule.path("Variable").asText());
    if (rule.has("IsPresent")) {
      return !value.isMissingNode() == rule.path("IsPresent").asBoolean();
    }
    if (value.isMissingNode()) {
      // Step Functions fails the execution (States.Runtime) on a comparison with a missing path.
      throw new AssertionError("Choice rule reads " + rule.path("Variable").asText() + ", which the input lacks: " + rule);
    }
    if (rule.has("StringEquals")) {
      return value.isTextual() && value.asText().equals(rule.path("StringEquals").asText());
    }
    if (rule.has("StringMatches")) {
      return value.isTextual() && wildcard(rule.path("StringMatches").asText()).matcher(value.asText()).matches();
    }
    if (rule.has("NumericLessThan")) {
      return value.isNumber() && value.asDouble() < rule.path("NumericLessThan").asDouble();
    }
    if (rule.has("NumericEquals")) {
      return value.isNumber() && value.asDouble() == rule.path("NumericEquals").asDouble();
    }
    if (rule.has("NumericGreaterThanEquals")) {
      return value.isNumber() && value.asDouble() >= rule.path("NumericGreaterThanEquals").asDouble();
    }
    throw new AssertionError("Choice rule not understood by this test: " + rule);
  }

  private static JsonNode path(JsonNode input, String path) {
    if (!path.startsWith("$")) {
      throw new AssertionError("not a path: " + path);
    }
    JsonNode at = input;
    for (String part : path.substring(1).split("\\.")) {
      if (!part.isEmpty()) {
        at = at.path(part);
      }
    }
    return at;
  }

  private static Pattern wildcard(String pattern) {
    StringBuilder re = new StringBuilder();
    for (int i = 0; i < pattern.length(); i++) {
      char c = pattern.charAt(i);
      if (c == '\\' && i + 1 < pattern.length()) {
        re.append(Pattern.quote(String.valueOf(pattern.charAt(++i))));
      } else if (c == '*') {
        re.append(".*");
      } else {
        re.append(Pattern.quote(String.valueOf(c)));
      }
    }
    return Pattern.compile(re.toString(), Pattern.DOTALL);
  }
}
