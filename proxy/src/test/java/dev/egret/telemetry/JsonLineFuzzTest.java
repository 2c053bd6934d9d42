package dev.egret.telemetry;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The access log's JSON writer under fuzzed values: whatever strings, numbers, durations and
 * times go in, and however many lines share the buffer, every line is one strict UTF-8 JSON
 * object on one line, with no raw control character, that Jackson reads back to exactly the
 * values written (a lone surrogate, which has no UTF-8 form, as U+FFFD).
 *
 * <p>Regression inputs: {@code src/test/resources/dev/egret/telemetry/JsonLineFuzzTestInputs};
 * fuzzing: {@code bench/fuzz.sh dev.egret.telemetry.JsonLineFuzzTest}.
 */
class JsonLineFuzzTest {
  private static final ObjectReader STRICT = new ObjectMapper()
      .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
      .readerFor(JsonNode.class)
      .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
      .with(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS);
  /** 9999-12-31T23:59:59.999Z: the last instant a four-digit year can spell. */
  private static final long LAST_FOUR_DIGIT_YEAR = 253402300799999L;
  /** Past the 16 KiB the buffer starts with and the 256 KiB it keeps, now and then. */
  private static final int MAX_REPEAT = 20_000;

  private sealed interface Field {
    String name();
  }

  private record Text(String name, String value) implements Field {}

  private record Number(String name, long value) implements Field {}

  private record Millis(String name, long nanos) implements Field {}

  private record Time(String name, long epochMillis) implements Field {}

  /** One writer, several lines (a batch, as the access log writes them), reset now and then. */
  @FuzzTest(maxDuration = "10m")
  void everyLineReadsBackToTheValuesWritten(FuzzedDataProvider data) throws Exception {
    JsonLine line = new JsonLine();
    List<List<Field>> batch = new ArrayList<>();
    int lines = data.consumeInt(1, 4);
    for (int l = 0; l < lines && data.remainingBytes() > 0; l++) {
      if (data.consumeBoolean()) {
        check(line, batch);
        line.reset();
        batch.clear();
      }
      List<Field> fields = fields(data);
      line.begin();
      for (Field f : fields) {
        if (f instanceof Text t) {
          line.string(t.name(), t.value());
        } else if (f instanceof Number n) {
          line.number(n.name(), n.value());
        } else if (f instanceof Millis m) {
          line.millis(m.name(), m.nanos());
        } else if (f instanceof Time t) {
          line.time(t.name(), t.epochMillis());
        }
      }
      line.end();
      batch.add(fields);
    }
    check(line, batch);
  }

  private static List<Field> fields(FuzzedDataProvider data) {
    List<Field> fields = new ArrayList<>();
    int count = data.consumeInt(0, 6);
    for (int i = 0; i < count; i++) {
      String name = "f" + i; // names are the callers' ASCII constants, distinct in a line
      fields.add(switch (data.consumeInt(0, 4)) {
        case 0 -> new Number(name, data.consumeLong());
        case 1 -> new Millis(name, data.consumeLong());
        case 2 -> new Time(name, data.consumeLong(0, LAST_FOUR_DIGIT_YEAR));
        case 3 -> new Text(name, data.consumeBoolean() ? null : data.consumeString(64));
        default -> new Text(name, chars(data));
      });
    }
    return fields;
  }

  /** Any UTF-16 code units, lone surrogates included, sometimes repeated into a long string. */
  private static String chars(FuzzedDataProvider data) {
    char[] units = new char[data.consumeInt(0, 32)];
    for (int i = 0; i < units.length; i++) {
      units[i] = data.consumeChar();
    }
    String s = new String(units);
    int repeat = data.consumeInt(1, 8) == 8 ? data.consumeInt(1, MAX_REPEAT) : 1;
    return s.repeat(repeat);
  }

  private static void check(JsonLine line, List<List<Field>> batch) throws Exception {
    byte[] bytes = rawBytes(line);
    String text = strictUtf8(bytes);
    List<String> split = List.of(text.split("\n", -1));
    assertThat(split).as("one line per record, each ended by LF").hasSize(batch.size() + 1);
    assertThat(split.get(batch.size())).isEmpty();
    for (int i = 0; i < batch.size(); i++) {
      String one = split.get(i);
      for (int c = 0; c < one.length(); c++) {
        char ch = one.charAt(c);
        // Cc (C0, DEL and C1) and the two separators JavaScript reads as line ends.
        assertThat(Character.getType(ch) == Character.CONTROL || ch == '\u2028' || ch == '\u2029')
            .as("raw control or line-separator character U+%04X in %s", (int) ch, one)
            .isFalse();
      }
      JsonNode node = STRICT.readValue(one);
      assertThat(node.isObject()).isTrue();
      List<Field> fields = batch.get(i);
      assertThat(node.size()).isEqualTo(fields.size());
      for (Field f : fields) {
        JsonNode v = node.get(f.name());
        assertThat(v).as(f.name()).isNotNull();
        if (f instanceof Text t) {
          if (t.value() == null) {
            assertThat(v.isNull()).isTrue();
          } else {
            assertThat(v.isTextual()).isTrue();
            assertThat(v.textValue()).isEqualTo(withoutLoneSurrogates(t.value()));
          }
        } else if (f instanceof Number n) {
          assertThat(v.isIntegralNumber()).isTrue();
          assertThat(v.bigIntegerValue().longValueExact()).isEqualTo(n.value());
        } else if (f instanceof Millis m) {
          if (m.nanos() < 0) {
            assertThat(v.isNull()).isTrue();
          } else {
            assertThat(v.isNumber()).as("millis %s", v).isTrue();
            BigDecimal expected = BigDecimal.valueOf(Math.round(m.nanos() / 1_000.0), 3);
            assertThat(v.decimalValue().compareTo(expected)).as("%s for %d ns", v, m.nanos())
                .isZero();
          }
        } else if (f instanceof Time t) {
          assertThat(v.isTextual()).isTrue();
          assertThat(Instant.parse(v.textValue())).isEqualTo(Instant.ofEpochMilli(t.epochMillis()));
        }
      }
    }
  }

  private static byte[] rawBytes(JsonLine line) throws Exception {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    line.writeTo(out);
    return out.toByteArray();
  }

  private static String strictUtf8(byte[] bytes) throws CharacterCodingException {
    return StandardCharsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT)
        .decode(ByteBuffer.wrap(bytes)).toString();
  }

  /** What the writer promises for a string that is no valid UTF-16: each lone half as U+FFFD. */
  private static String withoutLoneSurrogates(String s) {
    StringBuilder sb = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c) && i + 1 < s.length()
          && Character.isLowSurrogate(s.charAt(i + 1))) {
        sb.append(c).append(s.charAt(++i));
      } else if (Character.isSurrogate(c)) {
        sb.append('\uFFFD');
      } else {
        sb.append(c);
      }
    }
    return sb.toString();
  }
}
