package dev.egret.telemetry;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The access log's JSON writer: every line is one valid UTF-8 JSON object that a standard
 * parser reads back to the values written, whatever the strings hold.
 */
class JsonLineTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static String line(String value) {
    JsonLine line = new JsonLine();
    line.begin();
    line.string("v", value);
    line.end();
    return line.text();
  }

  private static JsonNode parsed(JsonLine line) throws Exception {
    return JSON.readTree(rawBytes(line));
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "plain ascii /v1/items",
      "quote \" and backslash \\ and slash /",
      "newline\nreturn\rtab\tbackspace\bformfeed\f",
      "nul \u0000 bell \u0007 escape \u001b unit-separator \u001f del \u007f",
      "latin-1 é ü ß and 2-byte ѐ",
      "CJK 名前 and euro € (3 bytes)",
      "emoji 😀 and a G clef 𝄞 (surrogate pairs, 4 bytes)",
      "line separator \u2028 paragraph separator \u2029",
      "{\"outcome\":\"allowed\"}\n{\"forged\":true}",
      ""})
  void readsBackExactlyWhatWasWritten(String value) throws Exception {
    String text = line(value);
    assertThat(text).endsWith("}\n");
    assertThat(text.substring(0, text.length() - 1)).doesNotContain("\n", "\r", "\u2028",
        "\u2029");
    assertThat(JSON.readTree(text).get("v").asText()).isEqualTo(value);
  }

  @Test
  void escapesControlCharactersByNameOrAsUnicode() {
    assertThat(line("a\"b\\c\nd\re\tf\bg\fh\u0001i\u001fj"))
        .isEqualTo("{\"v\":\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i\\u001fj\"}\n");
    assertThat(line("\u2028")).isEqualTo("{\"v\":\"\\u2028\"}\n");
  }

  @Test
  void escapesDeleteAndC1ControlsThatATerminalMightActOn() {
    assertThat(line("a\u007fb\u0080c\u009bd\u009fe\u00a0f"))
        .isEqualTo("{\"v\":\"a\\u007fb\\u0080c\\u009bd\\u009fe\u00a0f\"}\n");
  }

  @Test
  void encodesNonAsciiAsUtf8() throws Exception {
    JsonLine line = new JsonLine();
    line.begin();
    line.string("v", "é名😀");
    line.end();
    byte[] bytes = rawBytes(line);
    assertThat(bytes).containsSequence(0xc3, 0xa9) // é
        .containsSequence(0xe5, 0x90, 0x8d)       // 名
        .containsSequence(0xf0, 0x9f, 0x98, 0x80); // 😀
  }

  @Test
  void writesLoneSurrogatesAsTheReplacementCharacterInValidUtf8() throws Exception {
    JsonLine line = new JsonLine();
    line.begin();
    line.string("high", "a\ud83dz");
    line.string("low", "a\ude00z");
    line.string("reversed", "\ude00\ud83d");
    line.string("trailing", "end\ud83d");
    line.end();
    byte[] raw = rawBytes(line);
    // Strict decoding: any malformed sequence would throw.
    StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(raw));
    JsonNode n = JSON.readTree(raw);
    assertThat(n.get("high").asText()).isEqualTo("a\ufffdz");
    assertThat(n.get("low").asText()).isEqualTo("a\ufffdz");
    assertThat(n.get("reversed").asText()).isEqualTo("\ufffd\ufffd");
    assertThat(n.get("trailing").asText()).isEqualTo("end\ufffd");
  }

  @Test
  void writesNullsNumbersAndMillisecondsWithMicrosecondPrecision() throws Exception {
    JsonLine line = new JsonLine();
    line.begin();
    line.string("none", null);
    line.number("zero", 0);
    line.number("big", Long.MAX_VALUE);
    line.number("negative", -42);
    line.millis("skipped", -1);
    line.millis("exact", 2_000_000);
    line.millis("rounded", 1_234_567);
    line.millis("sub", 150_000);
    line.millis("tiny", 400);
    line.millis("hours", 36_000_000_000_000L);
    line.end();
    assertThat(line.text()).contains("\"exact\":2.0,", "\"rounded\":1.235,", "\"sub\":0.15,",
        "\"tiny\":0.0,", "\"hours\":36000000.0}", "\"none\":null,", "\"skipped\":null,");
    JsonNode n = parsed(line);
    assertThat(n.get("none").isNull()).isTrue();
    assertThat(n.get("big").asLong()).isEqualTo(Long.MAX_VALUE);
    assertThat(n.get("negative").asLong()).isEqualTo(-42);
    assertThat(n.get("rounded").asDouble()).isEqualTo(1.235);
  }

  @Test
  void writesIsoUtcTimesWithMillisecondsAcrossSeconds() throws Exception {
    long[] times = {0, 999, 1_000, 1_764_637_457_123L, 1_764_637_457_000L, 1_764_637_458_007L,
        253_402_300_799_999L};
    JsonLine line = new JsonLine();
    for (long t : times) {
      line.reset();
      line.begin();
      line.time("time", t);
      line.end();
      String text = parsed(line).get("time").asText();
      assertThat(Instant.parse(text)).isEqualTo(Instant.ofEpochMilli(t));
      assertThat(text).matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z");
    }
  }

  @Test
  void growsForLongValuesAndShrinksAfterwards() throws Exception {
    String big = "x\"".repeat(200_000);
    JsonLine line = new JsonLine();
    line.begin();
    line.string("v", big);
    line.end();
    assertThat(parsed(line).get("v").asText()).isEqualTo(big);
    line.reset();
    line.begin();
    line.string("v", "small");
    line.end();
    assertThat(line.text()).isEqualTo("{\"v\":\"small\"}\n");
  }

  private static byte[] rawBytes(JsonLine line) throws Exception {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    line.writeTo(out);
    return out.toByteArray();
  }
}
